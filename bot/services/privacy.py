"""A resident's data rights: a copy of everything the bot holds about them, its
erasure at their request, and its erasure after the retention period.

What is personal, and goes on erasure:

* On the tickets the person reported: the description, the address, the exact place
  (latitude and longitude), their name and phone, their Telegram id, the resolution note,
  the files residents added (their Telegram file ids), every text in the ticket's log
  (relayed messages both ways, reasons, notes, survey comments), and who the residents were
  (co-reporters' links, the ids on survey answers and on residents' log entries). What is
  left is anonymous statistics: number, category, kind, status, urgency, node and grid,
  timestamps, deadline, on-time flags, reopen count, close reason and scores. The ticket
  then carries ``erased_at``.
* On other residents' tickets the person joined: their link to it, their own messages and
  files, their survey answers' comments and id; the ticket stays its reporter's.
* Everywhere else: their survey comments and id, their drafts (unfinished forms), their
  enterprise contact records (name and phone; an owner's role passes to a colleague), their
  id on enterprises and bookings they made, on timers and on the messages remembered in
  their private chat, every outbox row to their chat (emptied; what waits fails), and their
  user row (language choice).

What happens to what is still running, which the resident is told before confirming: open
reports are withdrawn (their timers stop, their group is told), active check-up bookings are
cancelled whatever the cut-off (the place is freed), and resolved tickets waiting for the
follow-up are closed (reason "erased"). Staff data (workers' names and accounts, the desk's
check-up reports) is not the resident's and stays.

Each erased ticket gets an "erased" event with only the scope and the cause. Erasing is
idempotent: a ticket erased already is left alone, and erasing a person twice finds nothing
the second time. The group-facing side (the card shown again without the data, the
messages under it deleted, notices) is the caller's: ``TicketErasure`` says what to do.

Functions change rows; the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.config import Config
from bot.services import bookings, surveys, tickets
from bot.services.relay import co_reporter_of, co_reporter_purpose
from bot.services.tickets import TicketRefused
from storage.models import (
    OPEN_STATUSES,
    OutboxMessage,
    Ticket,
    TicketEvent,
    TicketStatus,
    is_web_user,
)
from storage.repositories.bookings import ACTIVE_BOOKING
from storage.repositories.web import resident_of
from storage.uow import UnitOfWork

ERASED_EVENT = "erased"
BY_REQUEST, BY_RETENTION = "request", "retention"
SCOPE_TICKET, SCOPE_CO_REPORTER = "ticket", "co_reporter"
WITHDRAWN, CANCELLED, CLOSED = "withdrawn", "cancelled", "closed"
CLOSE_REASON = "erased"
OUTBOX_NOTE = "personal data erased"

# Keys of a log entry's data that hold someone's words; "reason" is a code only for these
# kinds (a close reason, a survey's "not_solved"), for the others a person wrote it.
_WORDS = ("text", "note", "comment")
_CODED_REASONS = ("closed", "reopened")
# Keys of a ticket's details tied to the person (a consent that meant their phone number).
_PERSONAL_DETAILS = ("call_consent",)
# Messages the bot posted in a group for a ticket that show a resident's data: the photos
# and the place under the card, and relayed messages. The card itself is edited instead.
_GROUP_COPIES = ("card_media", "relay")
# Pending outbox rows of a ticket that may still go out: its card (rewritten by the caller)
# and its forum topic (named by the ticket's number and category only).
_KEPT_PENDING = ("card", "topic")
OVER_STATUSES = (TicketStatus.CLOSED, TicketStatus.WITHDRAWN)


@dataclass
class TicketErasure:
    """What became of one ticket, for the caller to show: with scope "ticket" the card must
    be shown again without the data (``other_cards`` are its earlier cards in other groups,
    ``pending_cards`` its card rows not sent yet); ``group_messages`` are the bot's messages
    in groups to delete (chat id → message ids); ``ended`` says how the erasure ended it,
    and ``residents`` are the co-reporters to tell about that."""

    ticket: Ticket
    scope: str
    by: str
    ended: str | None = None
    booking: bookings.Change | None = None
    residents: list[int] = field(default_factory=list)
    group_messages: dict[int, list[int]] = field(default_factory=dict)
    other_cards: list[tuple[int, int]] = field(default_factory=list)
    pending_cards: list[OutboxMessage] = field(default_factory=list)


@dataclass
class UserErasure:
    tickets: list[TicketErasure] = field(default_factory=list)
    surveys: int = 0
    drafts: int = 0
    enterprises: int = 0
    bookings: int = 0

    def count(self, scope: str, ended: str | None = None) -> int:
        return sum(1 for e in self.tickets
                   if e.scope == scope and (ended is None or e.ended == ended))


@dataclass(frozen=True)
class ErasurePlan:
    """What an erasure would do, told to the resident before they confirm."""

    reported: int
    to_withdraw: int      # open reports
    to_cancel: int        # check-up bookings still to come
    to_close: int         # resolved, waiting for the follow-up
    joined: int
    surveys: int
    enterprises: int
    last_contact: int     # enterprises that would have no contact left
    drafts: int


def _without_words(event: TicketEvent) -> dict:
    data = {k: v for k, v in (event.data or {}).items() if k not in _WORDS}
    if event.kind not in _CODED_REASONS:
        data.pop("reason", None)
    return data


def _log_erasure(uow: UnitOfWork, ticket: Ticket, now: datetime, scope: str, by: str) -> None:
    uow.tickets.log(TicketEvent(ticket_id=ticket.id, at=now, kind=ERASED_EVENT, actor_id=None,
                                actor_role="resident" if by == BY_REQUEST else "system",
                                data={"scope": scope, "by": by}))


async def _active_booking(uow: UnitOfWork, ticket: Ticket) -> bool:
    booking = await uow.bookings.of_ticket(ticket.id)
    return booking is not None and booking.status in ACTIVE_BOOKING


# -- the plan and the copy -------------------------------------------------------------------------

async def erasure_plan(uow: UnitOfWork, user_id: int) -> ErasurePlan:
    reported = await uow.privacy.reported(user_id)
    to_withdraw = to_cancel = to_close = 0
    for ticket in reported:
        if ticket.status in OPEN_STATUSES:
            if await _active_booking(uow, ticket):
                to_cancel += 1
            else:
                to_withdraw += 1
        elif ticket.status == TicketStatus.RESOLVED:
            to_close += 1
    enterprises = await uow.enterprises.of_user(user_id)
    counts = await uow.enterprises.contact_counts(e.id for e in enterprises)
    return ErasurePlan(
        reported=len(reported), to_withdraw=to_withdraw, to_cancel=to_cancel,
        to_close=to_close, joined=len(await uow.privacy.joined(user_id)),
        surveys=len(await uow.privacy.surveys_of(user_id)), enterprises=len(enterprises),
        last_contact=sum(1 for e in enterprises if counts.get(e.id, 0) <= 1),
        drafts=len(await uow.privacy.drafts_of(user_id)))


def _iso(config: Config, moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(config.timezone).isoformat()


async def collect(uow: UnitOfWork, config: Config, user_id: int, now: datetime,
                  language: str) -> dict[str, Any]:
    """Everything the bot holds about the person, as JSON-ready values (their /mydata)."""

    def iso(moment: datetime | None) -> str | None:
        return _iso(config, moment)

    def category(code: str) -> str:
        found = config.category(code)
        return found.names.get(language) if found else code

    async def code_of(node_id: int | None) -> str | None:
        node = await uow.nodes.get(node_id) if node_id else None
        return node.code if node else None

    async def own(ticket_id: int) -> list[dict]:
        return [{"at": iso(e.at), "kind": e.kind, **(e.data or {})}
                for e in await uow.privacy.events_by(user_id, ticket_id)]

    user = await uow.users.get(user_id)
    settings = None if user is None else {
        "language": user.language, "telegram_language_code": user.telegram_language_code,
        "unreachable": user.unreachable, "first_seen": iso(user.created_at),
        "updated_at": iso(user.updated_at)}
    numbers: dict[int, str] = {}
    reported = []
    for ticket in await uow.privacy.reported(user_id):
        numbers[ticket.id] = ticket.number
        reported.append({
            "number": ticket.number, "kind": ticket.kind, "category": ticket.category,
            "category_name": category(ticket.category), "status": ticket.status,
            "urgent": ticket.urgent, "created_at": iso(ticket.created_at),
            "resolved_at": iso(ticket.resolved_at), "closed_at": iso(ticket.closed_at),
            "close_reason": ticket.close_reason, "grid": await code_of(ticket.grid_id),
            "handled_by": await code_of(ticket.node_id), "anonymous": ticket.anonymous,
            "name": ticket.reporter_name, "phone": ticket.reporter_phone,
            "description": ticket.description, "address": ticket.address,
            "latitude": ticket.latitude, "longitude": ticket.longitude,
            "details": dict(ticket.details or {}), "resolution": ticket.resolution,
            "attachments": [{"kind": a.kind, "file_id": a.file_id, "added_by": a.added_by_role,
                             "added_at": iso(a.added_at)}
                            for a in await uow.tickets.attachments(ticket.id)],
            "your_messages": await own(ticket.id),
            "history": [{"at": iso(e.at), "kind": e.kind}
                        for e in await uow.tickets.events(ticket.id)],
        })
    joined = []
    for ticket, added_at in await uow.privacy.joined(user_id):
        numbers[ticket.id] = ticket.number
        joined.append({"number": ticket.number, "category": ticket.category,
                       "category_name": category(ticket.category), "status": ticket.status,
                       "created_at": iso(ticket.created_at), "joined_at": iso(added_at),
                       "your_messages": await own(ticket.id)})
    answers = []
    for survey in await uow.privacy.surveys_of(user_id):
        if survey.ticket_id not in numbers:
            found = await uow.tickets.get(survey.ticket_id)
            numbers[survey.ticket_id] = found.number if found else ""
        answers.append({"ticket": numbers[survey.ticket_id], "round": survey.round,
                        "status": survey.status, "solved": survey.solved,
                        "score": survey.score, "comment": survey.comment,
                        "asked_at": iso(survey.asked_at), "answered_at": iso(survey.answered_at)})
    contacts = []
    names: dict[int, str] = {}
    for enterprise in await uow.enterprises.of_user(user_id):
        names[enterprise.id] = enterprise.name
        contact = await uow.enterprises.contact(enterprise.id, user_id)
        contacts.append({"enterprise": enterprise.name, "credit_code": enterprise.credit_code,
                         "role": contact.role, "your_name": contact.name,
                         "your_phone": contact.phone, "added_at": iso(contact.added_at),
                         "registered_by_you": enterprise.created_by == user_id})
    booked = []
    for booking in await uow.privacy.bookings_by(user_id):
        slot = await uow.bookings.slot(booking.slot_id)
        if booking.enterprise_id not in names:
            enterprise = await uow.enterprises.get(booking.enterprise_id)
            names[booking.enterprise_id] = enterprise.name if enterprise else ""
        ticket = await uow.tickets.get(booking.ticket_id)
        booked.append({"enterprise": names[booking.enterprise_id],
                       "ticket": ticket.number if ticket else None,
                       "starts_at": iso(slot.starts_at if slot else None),
                       "ends_at": iso(slot.ends_at if slot else None),
                       "topics": list(booking.topics or []), "status": booking.status,
                       "booked_at": iso(booking.created_at)})
    forms = [{"form": d.flow, "step": d.step, "answers": dict(d.data or {}),
              "started_at": iso(d.created_at), "updated_at": iso(d.updated_at)}
             for d in await uow.privacy.drafts_of(user_id)]
    return {"generated_at": iso(now), "telegram_user_id": user_id, "settings": settings,
            "reported_tickets": reported, "joined_tickets": joined, "survey_answers": answers,
            "enterprises": contacts, "checkup_bookings": booked, "unfinished_forms": forms}


# -- erasure ---------------------------------------------------------------------------------------

async def erase_user(uow: UnitOfWork, clock: Clock, config: Config,
                     user_id: int) -> UserErasure:
    """Erase the person's personal data everywhere (module docstring); running tickets end
    first through the ticket and booking services, so their timers stop as they do when the
    resident withdraws or cancels."""
    result = UserErasure()
    for ticket in await uow.privacy.reported(user_id, lock=True):
        ended, change = None, None
        if ticket.status in OPEN_STATUSES:
            change = await bookings.cancel_for_erasure(uow, clock, ticket.id)
            if change is not None:
                ended, ticket = CANCELLED, change.ticket
            else:
                try:
                    ticket = await tickets.withdraw(uow, clock, ticket.id, user_id, "")
                    ended = WITHDRAWN
                except TicketRefused:
                    await uow.tickets.refresh(ticket)
        if ticket.status == TicketStatus.RESOLVED and await _close_resolved(uow, clock, ticket):
            ended = CLOSED
            await uow.tickets.refresh(ticket)
        residents = [u for u in await uow.tickets.residents(ticket) if u != user_id]
        erasure = await _scrub_ticket(uow, ticket, clock.now(), by=BY_REQUEST)
        erasure.ended, erasure.booking, erasure.residents = ended, change, residents
        result.tickets.append(erasure)
    for ticket, _ in await uow.privacy.joined(user_id):
        result.tickets.append(await _leave_ticket(uow, ticket, user_id, clock.now()))
    # What is left elsewhere: answers and messages on tickets the person is no longer on.
    for survey in await uow.privacy.surveys_of(user_id):
        _forget_survey(survey)
        result.surveys += 1
    for event in await uow.privacy.events_by(user_id):
        event.data, event.actor_id = _without_words(event), None
    result.drafts = len(await uow.drafts.discard_all(user_id))
    result.enterprises = await _leave_enterprises(uow, user_id)
    result.bookings = len(await uow.privacy.bookings_by(user_id))
    await uow.privacy.forget_bookings_by(user_id)
    await uow.privacy.forget_in_tasks(user_id)
    await uow.privacy.delete_messages_in_chat(user_id)
    await uow.privacy.clear_outbox_of_chat(user_id, OUTBOX_NOTE)
    await uow.privacy.delete_user(user_id)
    if is_web_user(user_id):
        # The web chat's copy of the conversation and the photos sent from it; the browser's
        # session stays, so the person's page goes on working (empty).
        await uow.web.forget_conversation(resident_of(user_id))
    return result


async def _close_resolved(uow: UnitOfWork, clock: Clock, ticket: Ticket) -> bool:
    """A resolved ticket waiting for its follow-up closes now: its questions are withdrawn."""
    for survey in await uow.surveys.of_round(ticket.id, ticket.reopen_count,
                                             ("waiting", "asked")):
        survey.status = "cancelled"
    closed = await tickets.close(uow, clock, ticket.id, CLOSE_REASON)
    await uow.tasks.cancel(surveys.SURVEY_TASKS, ticket_id=ticket.id)
    return closed is not None


def _forget_survey(survey) -> None:
    if survey.status in ("waiting", "asked"):
        survey.status = "cancelled"
    survey.user_id, survey.comment = None, None


async def _scrub_ticket(uow: UnitOfWork, ticket: Ticket, now: datetime, *,
                        by: str) -> TicketErasure:
    """The ticket becomes anonymous statistics (module docstring)."""
    ticket.description, ticket.address = "", None
    ticket.latitude = ticket.longitude = None
    ticket.reporter_id = ticket.reporter_name = ticket.reporter_phone = None
    ticket.resolution = None
    ticket.details = {k: v for k, v in (ticket.details or {}).items()
                      if k not in _PERSONAL_DETAILS}
    ticket.erased_at = ticket.erased_at or now
    ticket.updated_at = now
    for event in await uow.privacy.events(ticket.id):
        data = _without_words(event)
        if data != (event.data or {}):
            event.data = data
        if event.actor_role == "resident":
            event.actor_id = None
    await uow.privacy.delete_attachments(ticket.id, role="resident")
    for survey in await uow.privacy.surveys(ticket.id):
        _forget_survey(survey)
    await uow.privacy.delete_co_reporters(ticket.id)
    booking = await uow.bookings.of_ticket(ticket.id)
    if booking is not None:
        booking.booked_by = None
    erasure = TicketErasure(ticket, SCOPE_TICKET, by)
    card = (ticket.group_chat_id, ticket.card_message_id)
    gone = []
    for row in await uow.privacy.messages(ticket.id):
        if row.chat_id > 0:  # a resident's private chat
            gone.append(row)
        elif row.purpose in _GROUP_COPIES or co_reporter_of(row.purpose) is not None:
            erasure.group_messages.setdefault(row.chat_id, []).append(row.message_id)
            gone.append(row)
        elif row.purpose == "card" and (row.chat_id, row.message_id) != card:
            erasure.other_cards.append((row.chat_id, row.message_id))
    await uow.privacy.delete_messages(gone)
    retired = [row for chat_id, message_id in erasure.other_cards
               for row in await uow.privacy.untracked_edits(chat_id, message_id)]
    for row in [*await uow.privacy.outbox_of_ticket(ticket.id), *retired]:
        if row.status == "pending":
            if row.chat_id < 0 and row.purpose in _KEPT_PENDING:
                if row.purpose == "card":
                    erasure.pending_cards.append(row)
                continue
            row.status, row.last_error = "failed", OUTBOX_NOTE
        row.params = {}
    _log_erasure(uow, ticket, now, SCOPE_TICKET, by)
    return erasure


async def _leave_ticket(uow: UnitOfWork, ticket: Ticket, user_id: int,
                        now: datetime) -> TicketErasure:
    """The person's part in another resident's ticket goes; the ticket stays theirs."""
    await uow.privacy.delete_co_reporters(ticket.id, user_id)
    files = []
    for event in await uow.privacy.events_by(user_id, ticket.id):
        if (event.data or {}).get("file"):
            files.append(event.at)  # its file was attached in the same instant
        event.data, event.actor_id = _without_words(event), None
    await uow.privacy.delete_attachments(ticket.id, role="resident", added_at=files)
    for survey in await uow.privacy.surveys(ticket.id):
        if survey.user_id == user_id:
            _forget_survey(survey)
    erasure = TicketErasure(ticket, SCOPE_CO_REPORTER, BY_REQUEST)
    relayed = co_reporter_purpose(user_id)
    gone = []
    for row in await uow.privacy.messages(ticket.id):
        if row.chat_id == user_id:
            gone.append(row)
        elif row.purpose == relayed:
            erasure.group_messages.setdefault(row.chat_id, []).append(row.message_id)
            gone.append(row)
    await uow.privacy.delete_messages(gone)
    for row in await uow.privacy.outbox_of_ticket(ticket.id):
        if row.chat_id == user_id or row.purpose == relayed:
            if row.status == "pending":
                row.status, row.last_error = "failed", OUTBOX_NOTE
            row.params = {}
    _log_erasure(uow, ticket, now, SCOPE_CO_REPORTER, BY_REQUEST)
    return erasure


async def _leave_enterprises(uow: UnitOfWork, user_id: int) -> int:
    """The person stops being a contact of their enterprises; an owner's role passes to the
    longest-standing colleague. An enterprise left without contacts stays (its tickets and
    bookings point at it) and can be registered again (bot.services.enterprises)."""
    left = 0
    for enterprise in await uow.enterprises.of_user(user_id):
        locked = await uow.enterprises.get(enterprise.id, lock=True)
        contacts = await uow.enterprises.contacts(locked.id)
        mine = next(c for c in contacts if c.user_id == user_id)
        others = [c for c in contacts if c.user_id != user_id]
        if mine.role == "owner" and others and not any(c.role == "owner" for c in others):
            others[0].role = "owner"
        await uow.enterprises.remove_contact(locked.id, user_id)
        left += 1
    await uow.privacy.forget_enterprise_creator(user_id)
    return left


# -- retention -------------------------------------------------------------------------------------

async def erase_ticket(uow: UnitOfWork, clock: Clock, ticket_id: int, *, by: str,
                       over_before: datetime | None = None) -> TicketErasure | None:
    """Erase one ticket that is over (closed or withdrawn, before ``over_before`` if given),
    read under its row lock; None if it does not qualify, or was erased already."""
    ticket = await uow.privacy.lock_ticket(ticket_id)
    if ticket is None or ticket.erased_at is not None or ticket.status not in OVER_STATUSES:
        return None
    if over_before is not None and (ticket.closed_at is None or ticket.closed_at >= over_before):
        return None
    return await _scrub_ticket(uow, ticket, clock.now(), by=by)


def retention_cutoff(config: Config, now: datetime) -> datetime | None:
    """Tickets over before this moment are past the retention (None: kept for ever)."""
    retention = config.privacy.personal_data_retention
    return None if retention is None else now - retention


async def erase_expired(uow: UnitOfWork, clock: Clock, config: Config, *,
                        limit: int) -> Sequence[TicketErasure]:
    """Up to ``limit`` tickets past the retention, erased."""
    cutoff = retention_cutoff(config, clock.now())
    if cutoff is None:
        return []
    done = []
    for ticket_id in await uow.privacy.over_before(cutoff, limit):
        erasure = await erase_ticket(uow, clock, ticket_id, by=BY_RETENTION, over_before=cutoff)
        if erasure is not None:
            done.append(erasure)
    return done
