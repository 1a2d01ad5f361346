"""The lawyer desk acting on check-up cards: Confirm, Assign lawyer (the member who presses
becomes the lawyer), Propose another time (a picker of free slots; the enterprise accepts or
declines), and once the slot is over Done (a short report as a reply, optionally with a
document) or No-show; and the Close buttons of /slots (bot.actions.slots). The rules are in
bot.services.bookings, the words and buttons in bot.views.booking_desk.

Every press is checked before anything changes: well-formed data, a ticket handled in this
very group, and a member of the group (the door asks Telegram before calling, never inside a
unit of work). The report is asked with a forced-reply prompt that the door sends; who was
asked and which prompt it was are then kept in the ticket's details (``remember_prompt``), so
a restart between the press and the reply loses nothing and someone else's reply is not
taken.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from bot.actions import slots
from bot.actions.notifier import Notifier
from bot.actions.people import Who, translator
from bot.actions.updates import defer
from bot.delivery.render import markup_json
from bot.i18n import Translator
from bot.logs import bind_log_context
from bot.runtime import Runtime
from bot.services import bookings
from bot.services.bookings import BookingRefused, Change
from bot.views import Answer, View
from bot.views import booking_desk as views
from bot.views.cards import slot_label
from bot.views.worker import short, worker_name
from storage.models import CheckupSlot, Ticket
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# The purpose under which the report prompt is remembered: a reply to it is the report, not
# a message for the enterprise.
REPORT_PROMPT = "bk_report_prompt"
CARD_ACTIONS = ("cf", "as", "pp", "dn", "ns", "px")
# The buttons of the card itself (the others are on pickers): a press on one of them may be
# on a second copy of the card, which is then brought up to date.
ON_CARD = ("cf", "as", "pp", "dn", "ns")

_DATA = re.compile(r"bk:([a-z]{2}):(\d{1,18})(?::(\d{1,18}))?", re.ASCII)


@dataclass(frozen=True)
class Pressed:
    """A "bk:" button pressed in a group, as the door saw it."""

    data: str
    message_id: int          # the message pressed
    topic: int | None        # the forum topic it is in, if any
    full_name: str           # of the one who pressed
    member: bool | None      # a member of the group (None: Telegram could not say)


@dataclass
class DeskAnswer:
    """The press's answer: ``answer.say`` goes out as replies to the pressed message (or the
    report) in the forum topic ``thread``; then ``prompt``, the forced-reply question for the
    report, whose message id the door hands to ``remember_prompt`` once sent."""

    answer: Answer = field(default_factory=Answer)
    thread: int | None = None
    prompt: View | None = None
    ticket_id: int | None = None


@dataclass(frozen=True)
class Report:
    """A reply to the report prompt: its text (or a document's caption), whether it was a
    text message, and the document's file id."""

    text: str
    typed: bool
    document: str | None = None


def parse(data: str) -> re.Match | None:
    return _DATA.fullmatch(data or "")


def on_card(data: str) -> int | None:
    """The ticket of a press on a card's own button (a copy may need bringing up to date)."""
    match = parse(data)
    return int(match.group(2)) if match is not None and match.group(1) in ON_CARD else None


async def press(rt: Runtime, who: Who, pressed: Pressed) -> DeskAnswer:
    match = parse(pressed.data)
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        if match is None:
            return DeskAnswer(Answer(alert=views.no_longer_valid(t)))
        if not pressed.member:
            return DeskAnswer(Answer(alert=short(views.not_a_member(
                t, unknown=pressed.member is None))))
        action, first, second = match.group(1), int(match.group(2)), match.group(3)
        if action in slots.SLOT_ACTIONS:
            answer = await slots.press(rt, uow, t, who, action, first)
            return DeskAnswer(answer, thread=pressed.topic)
        result = await _card_action(rt, uow, t, who, pressed, action, first,
                                    int(second) if second else None)
        if result.prompt is not None:
            await defer(uow)  # the question's commit records the update (remember_prompt)
        return result


async def _card_action(rt: Runtime, uow: UnitOfWork, t: Translator, who: Who,
                       pressed: Pressed, action: str, ticket_id: int,
                       slot_id: int | None) -> DeskAnswer:
    user_id = who.user_id
    name = worker_name(pressed.full_name)
    ticket = await uow.tickets.get(ticket_id)

    def alert(text: str) -> DeskAnswer:
        return DeskAnswer(Answer(alert=short(text)))

    valid = (action in CARD_ACTIONS and slot_id is None) or (action == "ps" and slot_id)
    if not valid or ticket is None or ticket.kind != "checkup":
        return alert(views.no_longer_valid(t))
    if ticket.group_chat_id != who.chat_id:
        return alert(views.elsewhere(t, ticket.number))
    # The forum topic to answer in: the ticket's own, else the one the press came from.
    thread = ticket.topic_id if ticket.topic_id is not None else pressed.topic
    clock, config = rt.clock, rt.config
    try:
        if action == "cf":
            change = await bookings.confirm(uow, clock, ticket.id, user_id, name)
            when = slot_label(config, change.slot.starts_at, change.slot.ends_at)
            await Notifier(rt, uow).tell_residents_with(
                change.ticket, lambda t: views.confirmed_for_enterprise(t, when))
            note = views.confirmed(t, name, ticket.number)
        elif action == "as":
            change = await bookings.assign(uow, clock, ticket.id, user_id, name)
            desk = await uow.nodes.get(change.ticket.node_id)
            when = slot_label(config, change.slot.starts_at, change.slot.ends_at)
            await Notifier(rt, uow).tell_residents_with(
                change.ticket, lambda t: views.lawyer_for_enterprise(t, desk, name, when))
            note = views.lawyer(t, name, ticket.number)
        elif action == "pp":
            _, current, free = await bookings.proposable(uow, config, ticket.id, clock.now())
            if not free:
                return alert(views.nothing_to_propose(t))
            return DeskAnswer(Answer(say=[views.picker(t, config, ticket, current, free)]),
                              thread=thread)
        elif action == "px":
            return DeskAnswer(Answer(edit=views.nothing_proposed(t)), thread=thread)
        elif action == "ps":
            change = await bookings.propose(uow, clock, ticket.id, user_id, name, slot_id)
            proposed: CheckupSlot = change.extra["proposed"]
            await _propose_to_enterprise(rt, uow, change, proposed)
            await Notifier(rt, uow).refresh_card(change.ticket)
            await uow.commit()
            return DeskAnswer(Answer(edit=views.proposed(t, config, name, ticket.number,
                                                         proposed)), thread=thread)
        elif action == "dn":
            refused = await bookings.marking_refusal(uow, clock, ticket.id, user_id)
            if refused is not None:
                raise refused
            return DeskAnswer(thread=thread, ticket_id=ticket.id,
                              prompt=views.report_prompt(t, user_id, name, ticket.number))
        else:  # "ns"
            change = await bookings.no_show(uow, clock, ticket.id, user_id, name)
            when = slot_label(config, change.slot.starts_at, change.slot.ends_at)
            await Notifier(rt, uow).tell_residents_with(
                change.ticket, lambda t: views.no_show_for_enterprise(t, when))
            note = views.no_show(t, name, ticket.number)
    except BookingRefused as refused:
        return alert(views.refusal_text(t, config, refused))
    await Notifier(rt, uow).refresh_card(change.ticket)
    await uow.commit()
    bind_log_context(ticket=ticket.number)
    log.info("check-up ticket %s: %s", ticket.number, action)
    return DeskAnswer(Answer(say=[note]), thread=thread)


async def _propose_to_enterprise(rt: Runtime, uow: UnitOfWork, change: Change,
                                 proposed: CheckupSlot) -> None:
    notifier = Notifier(rt, uow)
    booking, ticket = change.booking, change.ticket
    for user_id in await uow.tickets.residents(ticket):
        t = rt.translator(await notifier.resident_language(user_id))
        view = views.proposal(t, rt.config, ticket, booking.id, change.slot, proposed)
        notifier.say(user_id, view.text, reply_markup=markup_json(view), ticket=ticket,
                     purpose="relay")


# -- the report after the check-up -------------------------------------------------------------

async def remember_prompt(rt: Runtime, ticket_id: int, user_id: int, chat_id: int,
                          message_id: int) -> None:
    """The report prompt just sent (``message_id``) is the one whose reply is the report, and
    only ``user_id``'s. Sent first, remembered after, as the group's other prompts: its id is
    known only once sent, and Telegram is never waited for inside a transaction."""
    async with rt.uow() as uow:
        current = await uow.tickets.get(ticket_id)
        current.details = {**(current.details or {}), "report_prompt": {
            "user_id": user_id, "message_id": message_id}}
        await uow.tickets.remember_message(chat_id, message_id, ticket_id, REPORT_PROMPT)
        await uow.commit()


async def take_report(rt: Runtime, who: Who, full_name: str, prompt_id: int,
                      topic: int | None, report: Report) -> DeskAnswer | None:
    """A reply in a group to the bot's message ``prompt_id``: the report if that message is
    a report prompt (None if it is not: the message is someone else's to take)."""
    async with rt.uow() as uow:
        known = await uow.tickets.message(who.chat_id, prompt_id)
        if known is None or known.purpose != REPORT_PROMPT:
            return None
        t = await translator(rt, uow, who)
        ticket = await uow.tickets.get(known.ticket_id)
        thread = (ticket.topic_id if ticket is not None and ticket.topic_id is not None
                  else topic)
        result = await _take_report(rt, uow, t, who, full_name, ticket, prompt_id, report)
        result.thread = thread
        if result.prompt is not None:
            await defer(uow)  # the question's commit records the update (remember_prompt)
        return result


async def _take_report(rt: Runtime, uow: UnitOfWork, t: Translator, who: Who, full_name: str,
                       ticket: Ticket | None, prompt_id: int, report: Report) -> DeskAnswer:
    prompt = ((ticket.details or {}).get("report_prompt") or {}) if ticket else {}
    if (ticket is None or prompt.get("user_id") != who.user_id
            or prompt.get("message_id") != prompt_id):
        return DeskAnswer(Answer(say=[views.report_not_yours(t)]))
    text = report.text.strip()
    name = worker_name(full_name)
    if report.typed and text.split("@", 1)[0].split(" ", 1)[0] == "/cancel":
        _forget_prompt(ticket)
        await uow.commit()
        return DeskAnswer(Answer(say=[views.report_cancelled(t, ticket.number)]))
    if not bookings.REPORT_MIN_CHARS <= len(text) <= bookings.REPORT_MAX_CHARS:
        return DeskAnswer(ticket_id=ticket.id, prompt=views.report_prompt(
            t, who.user_id, name, ticket.number, problem=views.report_length(t)))
    try:
        change = await bookings.done(uow, rt.clock, rt.config, ticket.id, who.user_id, name,
                                     text, report.document)
    except BookingRefused as refused:
        _forget_prompt(ticket)
        await uow.commit()
        return DeskAnswer(Answer(say=[views.report_refused(t, rt.config, refused)]))
    _forget_prompt(change.ticket)
    await _deliver_report(rt, uow, change, text, report.document)
    await Notifier(rt, uow).refresh_card(change.ticket)
    await uow.commit()
    bind_log_context(ticket=ticket.number)
    log.info("check-up ticket %s done", ticket.number)
    return DeskAnswer(Answer(say=[views.report_done(t, ticket.number)]))


def _forget_prompt(ticket: Ticket) -> None:
    ticket.details = {k: v for k, v in (ticket.details or {}).items() if k != "report_prompt"}


async def _deliver_report(rt: Runtime, uow: UnitOfWork, change: Change, report: str,
                          document: str | None) -> None:
    notifier = Notifier(rt, uow)
    desk = await uow.nodes.get(change.ticket.node_id)
    lawyer = change.booking.lawyer_name or ""
    await notifier.tell_residents_with(
        change.ticket, lambda t: views.report_for_enterprise(t, desk, lawyer, report))
    if document is not None:
        for user_id in await uow.tickets.residents(change.ticket):
            uow.outbox.add(chat_id=user_id, method="sendDocument",
                           params={"chat_id": user_id, "document": document},
                           now=rt.clock.now(), ticket_id=change.ticket.id, purpose="relay")
