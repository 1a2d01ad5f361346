"""Legal check-up (法治体检) booking: the lawyer desk publishes slots, an
enterprise contact books a place, the desk confirms, assigns a lawyer, proposes another time,
and after the slot marks it done (with a report) or no-show.

Rules kept here, not in handlers:

* A place is taken with one conditional UPDATE (storage.repositories.bookings.take_place), so
  two enterprises racing for the last place cannot both get it; the loser is offered the
  nearest free slots. Freeing a place is the reverse.
* An enterprise holds one place per slot, whichever of its contacts books: the places of a
  slot are for different enterprises. The slots it already holds are not offered to it, and
  a unique index catches two contacts booking the same slot at the same moment; the second
  is told the enterprise already has that time.
* Enterprises book at least ``min_notice`` ahead and at most ``horizon_days`` ahead; they may
  cancel or move until ``cancel_cutoff`` before the start. A time the desk proposes is taken
  without the notice (the desk offered it), but only before it starts.
* Every booking is a ticket of the checkup category at the legal desk: the card, the relay
  between the contact and the desk, the history and the follow-up survey all work as for
  reports. The ticket is "open" until a lawyer is assigned ("claimed", the lawyer holds it),
  "resolved" when the check-up is done (then the survey), "closed" with reason no_show, or
  "withdrawn" when the enterprise cancels. The ticket's ordinary claim and resolution timers
  do not apply (a booking may lie weeks ahead); its deadline is the end of the slot plus
  ``MARK_WITHIN``, and the booking has timers of its own (reminders, the nudge after it).
* Only the assigned lawyer marks a check-up done or no-show; with nobody assigned, whoever
  marks it becomes the lawyer. Another member takes over with "Assign lawyer".

The ticket's ``details`` mirror what its card shows (topics, slot, booking status, a pending
proposal, whether the slot is over): cards are rendered from the ticket alone.

Functions change rows and schedule tasks; the caller tells people and commits.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy.exc import IntegrityError

from bot.clock import Clock
from bot.config import Category, Config
from bot.services import surveys, tickets
from bot.services.states import Action
from storage.models import (
    Booking,
    CheckupSlot,
    CheckupWaiting,
    OrgNode,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketStatus,
)
from storage.repositories.bookings import ACTIVE_BOOKING
from storage.uow import UnitOfWork

REMIND, AFTER = "booking_remind", "booking_after"
BOOKING_TIMERS = (REMIND, AFTER)
# The desk should mark a check-up done or no-show within this time after its end: the
# ticket's deadline, for the on-time and overdue figures.
MARK_WITHIN = timedelta(days=1)
# A reminder that would fall in quiet hours goes out when they end if that leaves at least
# this long before the start; otherwise it goes out just before they began.
MIN_REMINDER_LEAD = timedelta(minutes=30)
ALTERNATIVES = 3
REPORT_MIN_CHARS, REPORT_MAX_CHARS = 2, 2000
MAX_SLOTS_PER_COMMAND = 200
MAX_RANGE_DAYS = 92
# An enterprise that finds no free place is announced to the desk at most this often, however
# often its contacts try.
WAITING_NOTICE_EVERY = timedelta(days=1)


class Problem(enum.Enum):
    NOT_FOUND = "not_found"      # no such booking or slot, or forged data
    NOT_YOURS = "not_yours"      # the person may not act for that enterprise
    NO_TOPICS = "no_topics"
    FULL = "full"                # the slot has no free place (any more)
    TOO_SOON = "too_soon"        # inside the minimum notice, or already started
    GONE = "gone"                # the slot was closed
    TOO_LATE = "too_late"        # past the cut-off for cancelling or moving
    NOT_ACTIVE = "not_active"    # cancelled, done or no-show already
    SAME_SLOT = "same_slot"
    ALREADY = "already"          # confirmed already, or already the lawyer
    NOT_STARTED = "not_started"  # done or no-show before the slot began
    NOT_LAWYER = "not_lawyer"    # another lawyer is assigned
    STALE = "stale"              # a proposal that is no longer the current one
    NO_DESK = "no_desk"          # check-ups are not configured
    HELD = "held"                # the enterprise already has a place in that slot


class BookingRefused(Exception):
    def __init__(self, problem: Problem, *, booking: Booking | None = None,
                 slot: CheckupSlot | None = None,
                 alternatives: Sequence[CheckupSlot] = ()) -> None:
        super().__init__(problem.value)
        self.problem = problem
        self.booking = booking
        self.slot = slot
        self.alternatives = list(alternatives)


@dataclass
class Change:
    """A booking after a change, with what the caller needs to tell people about it."""

    booking: Booking
    ticket: Ticket
    slot: CheckupSlot
    old_slot: CheckupSlot | None = None
    extra: dict = field(default_factory=dict)


# -- configuration and time ------------------------------------------------------------------

def category(config: Config) -> Category | None:
    """The one category of kind "checkup" (config validation allows at most one)."""
    found = config.categories_of("checkup")
    return found[0] if found else None


async def desk(uow: UnitOfWork, config: Config) -> OrgNode | None:
    """The desk node that holds check-ups (the checkup category's target)."""
    cat = category(config)
    if cat is None or cat.target_desk is None:
        return None
    node = await uow.nodes.by_code(cat.target_desk)
    return node if node is not None and node.level == "desk" else None


def earliest(config: Config, now: datetime) -> datetime:
    """The earliest start an enterprise may book now."""
    return now + config.timings.booking.min_notice


def horizon(config: Config, now: datetime) -> datetime:
    """The end of the last bookable day: midnight after today + horizon_days, local time."""
    tz = config.timezone
    last = now.astimezone(tz).date() + timedelta(days=config.timings.booking.horizon_days)
    return datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz)


def local_day(config: Config, moment: datetime) -> date:
    return moment.astimezone(config.timezone).date()


def may_change(config: Config, slot: CheckupSlot, now: datetime) -> bool:
    """Whether the enterprise may still cancel or move a booking of this slot."""
    return now <= slot.starts_at - config.timings.booking.cancel_cutoff


def topic_codes(config: Config) -> list[str]:
    return [topic.code for topic in config.checkup_topics]


# -- slots -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SlotPlan:
    """What ``/slots add`` asked for: days, a time range, the slot length and places."""

    days: tuple[date, ...]
    start: time
    end: time
    length: timedelta
    capacity: int


def plan_times(config: Config, plan: SlotPlan) -> list[tuple[datetime, datetime]]:
    """The slots a plan makes, as UTC-aware (start, end) pairs, in local wall-clock time."""
    tz = config.timezone
    out = []
    for day in plan.days:
        begin = datetime.combine(day, plan.start, tzinfo=tz)
        stop = datetime.combine(day, plan.end, tzinfo=tz)
        while begin + plan.length <= stop:
            out.append((begin, begin + plan.length))
            begin += plan.length
    return out


async def add_slots(uow: UnitOfWork, clock: Clock, config: Config, desk_id: int,
                    plan: SlotPlan, user_id: int) -> tuple[list[CheckupSlot], int]:
    """Create the plan's slots; those in the past or overlapping an open slot of the desk
    are skipped. Returns the new slots and how many were skipped."""
    now = clock.now()
    created, skipped = [], 0
    for start, end in plan_times(config, plan):
        if start <= now or await uow.bookings.overlapping(desk_id, start, end):
            skipped += 1
            continue
        slot = CheckupSlot(desk_id=desk_id, starts_at=start, ends_at=end,
                           capacity=plan.capacity, booked=0, status="open",
                           created_by=user_id, created_at=now)
        uow.bookings.add_slot(slot)
        await uow.bookings.flush()  # the next overlap check sees it
        created.append(slot)
    return created, skipped


async def upcoming(uow: UnitOfWork, config: Config, desk_id: int, now: datetime,
                   limit: int = 40) -> Sequence[CheckupSlot]:
    """Open slots that have not ended, for the desk's list."""
    return await uow.bookings.slots_between(desk_id, now - timedelta(days=1),
                                            horizon(config, now) + timedelta(days=365),
                                            limit=limit)


async def close_slot(uow: UnitOfWork, desk_id: int, slot_id: int) -> CheckupSlot:
    """No new bookings for this slot; the bookings it has keep their time."""
    slot = await uow.bookings.slot(slot_id)
    if slot is None or slot.desk_id != desk_id:
        raise BookingRefused(Problem.NOT_FOUND)
    if not await uow.bookings.close_slot(slot_id, desk_id):
        raise BookingRefused(Problem.GONE, slot=slot)
    return await uow.bookings.slot(slot_id)


# -- what an enterprise can book ---------------------------------------------------------------

async def bookable(uow: UnitOfWork, config: Config, desk_id: int, now: datetime,
                   enterprise_id: int | None = None) -> Sequence[CheckupSlot]:
    """Slots with a free place an enterprise may book now (with ``enterprise_id``: not those
    it holds a place in already)."""
    return await uow.bookings.slots_between(desk_id, earliest(config, now),
                                            horizon(config, now), free_only=True,
                                            not_of=enterprise_id)


async def free_days(uow: UnitOfWork, config: Config, desk_id: int, now: datetime,
                    enterprise_id: int | None = None) -> list[date]:
    """Local days with at least one bookable place, in order."""
    days: list[date] = []
    for slot in await bookable(uow, config, desk_id, now, enterprise_id):
        day = local_day(config, slot.starts_at)
        if not days or days[-1] != day:
            days.append(day)
    return days


async def free_on(uow: UnitOfWork, config: Config, desk_id: int, now: datetime,
                  day: date, enterprise_id: int | None = None) -> list[CheckupSlot]:
    return [slot for slot in await bookable(uow, config, desk_id, now, enterprise_id)
            if local_day(config, slot.starts_at) == day]


async def nearest_free(uow: UnitOfWork, config: Config, desk_id: int, now: datetime,
                       around: datetime, *, exclude: int | None = None,
                       enterprise_id: int | None = None,
                       limit: int = ALTERNATIVES) -> list[CheckupSlot]:
    """The bookable slots nearest to ``around``, in time order."""
    slots = [s for s in await bookable(uow, config, desk_id, now, enterprise_id)
             if s.id != exclude]
    slots.sort(key=lambda s: (abs((s.starts_at - around).total_seconds()), s.starts_at))
    return sorted(slots[:limit], key=lambda s: s.starts_at)


async def _refusal(uow: UnitOfWork, config: Config, slot_id: int, now: datetime,
                   exclude: int | None, lower: datetime,
                   enterprise_id: int) -> BookingRefused:
    """Why a place could not be taken, with the nearest free slots."""
    slot = await uow.bookings.slot(slot_id)
    if slot is None:
        return BookingRefused(Problem.NOT_FOUND)
    held = await uow.bookings.held_by(slot_id, enterprise_id)
    if held is not None:
        problem = Problem.HELD
    elif slot.status != "open":
        problem = Problem.GONE
    elif slot.starts_at < lower:
        problem = Problem.TOO_SOON
    else:
        problem = Problem.FULL
    alternatives = await nearest_free(uow, config, slot.desk_id, now, slot.starts_at,
                                      exclude=exclude, enterprise_id=enterprise_id)
    return BookingRefused(problem, booking=held, slot=slot, alternatives=alternatives)


async def note_waiting(uow: UnitOfWork, clock: Clock, enterprise_id: int) -> bool:
    """The enterprise wanted a check-up and found no free place. True when the desk should
    be told now: not yet, or not within ``WAITING_NOTICE_EVERY``."""
    now = clock.now()
    row = await uow.bookings.waiting(enterprise_id, lock=True)
    if row is None:
        try:
            async with uow.session.begin_nested():  # a colleague trying at the same moment
                uow.bookings.add_waiting(CheckupWaiting(enterprise_id=enterprise_id,
                                                        told_at=now))
                await uow.bookings.flush()
        except IntegrityError:
            return False
        return True
    if now - row.told_at < WAITING_NOTICE_EVERY:
        return False
    row.told_at = now
    return True


# -- the enterprise's side ---------------------------------------------------------------------

def _details(booking: Booking, slot: CheckupSlot, ticket: Ticket, **changes) -> dict:
    """The ticket's details after a change (a new dict: JSON columns are not tracked)."""
    details = dict(ticket.details or {})
    details.update(booking_id=booking.id, booking=booking.status, topics=list(booking.topics),
                   slot_id=slot.id, starts_at=slot.starts_at.isoformat(),
                   ends_at=slot.ends_at.isoformat())
    details.update(changes)
    return {k: v for k, v in details.items() if v is not None}


def _log(uow: UnitOfWork, ticket: Ticket, kind: str, now: datetime, actor_id: int | None,
         role: str, **data) -> None:
    uow.tickets.log(TicketEvent(ticket_id=ticket.id, at=now, kind=kind, actor_id=actor_id,
                                actor_role=role, data=data))


async def book(uow: UnitOfWork, clock: Clock, config: Config, *, user_id: int,
               enterprise_id: int, topics: Sequence[str], slot_id: int,
               language: str) -> Change:
    """Take a place and open the booking's ticket at the desk. Raises BookingRefused (with
    the nearest free slots when the place is gone)."""
    cat = category(config)
    if cat is None:
        raise BookingRefused(Problem.NO_DESK)
    contact = await uow.enterprises.contact(enterprise_id, user_id)
    if contact is None:
        raise BookingRefused(Problem.NOT_YOURS)
    known = topic_codes(config)
    chosen = [code for code in known if code in set(topics)]
    if not chosen:
        raise BookingRefused(Problem.NO_TOPICS)
    now = clock.now()
    node = await desk(uow, config)
    slot = await uow.bookings.slot(slot_id)
    # Checked before anything is written: a refusal leaves nothing to roll back.
    if slot is None or node is None or slot.desk_id != node.id:
        raise BookingRefused(Problem.NOT_FOUND)
    if slot.starts_at >= horizon(config, now):  # forged: beyond what is offered
        raise BookingRefused(Problem.NOT_FOUND)
    lower = earliest(config, now)
    if await uow.bookings.held_by(slot_id, enterprise_id) is not None:
        raise await _refusal(uow, config, slot_id, now, slot_id, lower, enterprise_id)
    try:
        # A savepoint: a colleague booking the same slot for the enterprise at this very
        # moment trips the unique index, and the place taken here is given back with it.
        async with uow.session.begin_nested():
            taken = await uow.bookings.take_place(slot_id, lower)
            if taken:
                ticket = await tickets.create(uow, clock, config, tickets.NewReport(
                    category=cat, description="", reporter_id=user_id, language=language,
                    reporter_name=contact.name, reporter_phone=contact.phone,
                    details={"topics": chosen}, enterprise_id=enterprise_id))
                booking = Booking(slot_id=slot_id, enterprise_id=enterprise_id,
                                  ticket_id=ticket.id, topics=chosen, status="booked",
                                  booked_by=user_id, created_at=now, updated_at=now)
                uow.bookings.add(booking)
                await uow.bookings.flush()
    except IntegrityError:
        taken = False
    if not taken:
        raise await _refusal(uow, config, slot_id, now, slot_id, lower, enterprise_id)
    slot = await uow.bookings.slot(slot_id)
    await uow.bookings.stop_waiting(enterprise_id)  # found a place: a new wait is news again
    enterprise = await uow.enterprises.get(enterprise_id)
    ticket.details = _details(booking, slot, ticket,
                              enterprise=enterprise.name if enterprise else None)
    await _own_timers(uow, config, booking, ticket, slot, now)
    return Change(booking, ticket, slot)


async def owned(uow: UnitOfWork, booking_id: int, user_id: int, *,
                lock: bool = False) -> tuple[Booking, Ticket, CheckupSlot]:
    """A booking the person may act on: they are a contact of its enterprise."""
    booking = await uow.bookings.get(booking_id, for_update=lock)
    if booking is None:
        raise BookingRefused(Problem.NOT_FOUND)
    if await uow.enterprises.contact(booking.enterprise_id, user_id) is None:
        raise BookingRefused(Problem.NOT_YOURS)
    ticket = await uow.tickets.get(booking.ticket_id)
    slot = await uow.bookings.slot(booking.slot_id)
    return booking, ticket, slot


def _active(booking: Booking) -> None:
    if booking.status not in ACTIVE_BOOKING:
        raise BookingRefused(Problem.NOT_ACTIVE, booking=booking)


async def cancel(uow: UnitOfWork, clock: Clock, config: Config, booking_id: int, user_id: int,
                 reason: str) -> Change:
    """The enterprise cancels until the cut-off: the place is free again, the ticket is
    withdrawn. ``reason`` is what the history shows (in the contact's words or language)."""
    booking, ticket, slot = await owned(uow, booking_id, user_id, lock=True)
    _active(booking)
    now = clock.now()
    if not may_change(config, slot, now):
        raise BookingRefused(Problem.TOO_LATE, booking=booking, slot=slot)
    return await _withdraw(uow, now, booking, ticket, slot, user_id, reason=reason)


async def cancel_for_erasure(uow: UnitOfWork, clock: Clock, ticket_id: int) -> Change | None:
    """The contact who booked has their personal data erased (bot.services.privacy): the
    booking of this ticket, if still active, is cancelled whatever the cut-off, its place
    freed and its ticket withdrawn. None when the ticket has no active booking."""
    if await uow.bookings.of_ticket(ticket_id) is None:
        return None
    booking, ticket, slot = await of_ticket(uow, ticket_id)
    if booking.status not in ACTIVE_BOOKING:
        return None
    return await _withdraw(uow, clock.now(), booking, ticket, slot, None)


async def _withdraw(uow: UnitOfWork, now: datetime, booking: Booking, ticket: Ticket,
                    slot: CheckupSlot, actor_id: int | None, **why: str) -> Change:
    """Cancel the booking, free its place and withdraw its ticket, for the enterprise."""
    await uow.bookings.free_place(slot.id)
    booking.status, booking.updated_at = "cancelled", now
    await tickets.transition(uow, ticket.id, Action.WITHDRAW, {
        "closed_at": now, "close_reason": "withdrawn", "updated_at": now})
    await uow.tickets.refresh(ticket)
    ticket.details = _details(booking, slot, ticket, proposal=None)
    _log(uow, ticket, "withdrawn", now, actor_id, "resident", **why)
    await _stop_timers(uow, ticket)
    return Change(booking, ticket, await uow.bookings.slot(slot.id))


async def _move(uow: UnitOfWork, config: Config, booking: Booking, ticket: Ticket,
                old: CheckupSlot, new_id: int, now: datetime, lower: datetime, *,
                status: str) -> Change:
    if new_id == old.id:
        raise BookingRefused(Problem.SAME_SLOT, booking=booking, slot=old)
    new = await uow.bookings.slot(new_id)
    if new is None or new.desk_id != old.desk_id or new.starts_at >= horizon(config, now):
        raise BookingRefused(Problem.NOT_FOUND, booking=booking, slot=old)  # forged
    enterprise_id = booking.enterprise_id
    if await uow.bookings.held_by(new_id, enterprise_id) is not None:
        raise await _refusal(uow, config, new_id, now, old.id, lower, enterprise_id)
    try:
        async with uow.session.begin_nested():  # as in book(): a colleague's race
            taken = await uow.bookings.take_place(new_id, lower)
            if taken:
                await uow.bookings.free_place(old.id)
                booking.slot_id, booking.status, booking.updated_at = new_id, status, now
                await uow.bookings.flush()
    except IntegrityError:
        await uow.bookings.refresh(booking)
        taken = False
    if not taken:
        raise await _refusal(uow, config, new_id, now, old.id, lower, enterprise_id)
    new = await uow.bookings.slot(new_id)
    ticket.details = _details(booking, new, ticket, proposal=None, ended=None)
    ticket.deadline_at, ticket.updated_at = new.ends_at + MARK_WITHIN, now
    await _own_timers(uow, config, booking, ticket, new, now)
    return Change(booking, ticket, new, old_slot=await uow.bookings.slot(old.id))


async def reschedule(uow: UnitOfWork, clock: Clock, config: Config, booking_id: int,
                     user_id: int, slot_id: int) -> Change:
    """The enterprise moves its booking until the cut-off; the old place is freed and the
    new time waits for the desk's confirmation again."""
    booking, ticket, slot = await owned(uow, booking_id, user_id, lock=True)
    _active(booking)
    now = clock.now()
    if not may_change(config, slot, now):
        raise BookingRefused(Problem.TOO_LATE, booking=booking, slot=slot)
    change = await _move(uow, config, booking, ticket, slot, slot_id, now,
                         earliest(config, now), status="booked")
    _log(uow, ticket, "booking_moved", now, user_id, "resident",
         starts_at=change.slot.starts_at.isoformat())
    return change


async def answer_proposal(uow: UnitOfWork, clock: Clock, config: Config, booking_id: int,
                          user_id: int, slot_id: int, *, accept: bool) -> Change:
    """The enterprise takes the time the desk proposed (confirmed at once: the desk offered
    it) or keeps its own."""
    booking, ticket, slot = await owned(uow, booking_id, user_id, lock=True)
    _active(booking)
    proposal = (ticket.details or {}).get("proposal") or {}
    if proposal.get("slot_id") != slot_id:
        raise BookingRefused(Problem.STALE, booking=booking, slot=slot)
    now = clock.now()
    if not accept:
        ticket.details = _details(booking, slot, ticket, proposal=None)
        _log(uow, ticket, "proposal_declined", now, user_id, "resident")
        return Change(booking, ticket, slot)
    change = await _move(uow, config, booking, ticket, slot, slot_id, now, now,
                         status="confirmed")
    _log(uow, ticket, "proposal_accepted", now, user_id, "resident",
         starts_at=change.slot.starts_at.isoformat())
    return change


# -- the desk's side ---------------------------------------------------------------------------

async def of_ticket(uow: UnitOfWork, ticket_id: int) -> tuple[Booking, Ticket, CheckupSlot]:
    """The booking of a ticket, locked: the desk's presses on one card take turns."""
    found = await uow.bookings.of_ticket(ticket_id)
    if found is None:
        raise BookingRefused(Problem.NOT_FOUND)
    booking = await uow.bookings.get(found.id, for_update=True)
    ticket = await uow.tickets.get(ticket_id)
    await uow.tickets.refresh(ticket)
    return booking, ticket, await uow.bookings.slot(booking.slot_id)


async def confirm(uow: UnitOfWork, clock: Clock, ticket_id: int, actor_id: int,
                  name: str) -> Change:
    booking, ticket, slot = await of_ticket(uow, ticket_id)
    _active(booking)
    if booking.status == "confirmed":
        raise BookingRefused(Problem.ALREADY, booking=booking, slot=slot)
    now = clock.now()
    booking.status, booking.updated_at = "confirmed", now
    ticket.details = _details(booking, slot, ticket)
    ticket.updated_at = now
    _log(uow, ticket, "booking_confirmed", now, actor_id, "worker", name=name)
    return Change(booking, ticket, slot)


async def assign(uow: UnitOfWork, clock: Clock, ticket_id: int, actor_id: int,
                 name: str) -> Change:
    """The member who presses becomes the check-up's lawyer (and holds its ticket); pressed
    by another member, they take it over."""
    booking, ticket, slot = await of_ticket(uow, ticket_id)
    _active(booking)
    if booking.lawyer_id == actor_id and ticket.holder_id == actor_id:
        raise BookingRefused(Problem.ALREADY, booking=booking, slot=slot)
    previous = booking.lawyer_name
    await _hold(uow, clock, ticket, actor_id, name)
    now = clock.now()
    booking.lawyer_id, booking.lawyer_name, booking.updated_at = actor_id, name, now
    ticket.details = _details(booking, slot, ticket)
    return Change(booking, ticket, slot, extra={"previous": previous})


async def _hold(uow: UnitOfWork, clock: Clock, ticket: Ticket, actor_id: int,
                name: str) -> None:
    now = clock.now()
    if ticket.status == TicketStatus.OPEN:
        await tickets.claim(uow, clock, ticket.id, actor_id, name)
    else:
        await tickets.transition(uow, ticket.id, Action.TAKE_OVER, {
            "holder_id": actor_id, "holder_name": name, "updated_at": now})
        _log(uow, ticket, "claimed", now, actor_id, "worker", name=name)
    await uow.tickets.refresh(ticket)


async def propose(uow: UnitOfWork, clock: Clock, ticket_id: int, actor_id: int, name: str,
                  slot_id: int) -> Change:
    """Offer the enterprise another free slot of the desk; nothing moves until it accepts."""
    booking, ticket, slot = await of_ticket(uow, ticket_id)
    _active(booking)
    now = clock.now()
    other = await uow.bookings.slot(slot_id)
    if other is None or other.desk_id != slot.desk_id:
        raise BookingRefused(Problem.NOT_FOUND, booking=booking, slot=slot)
    if other.id == slot.id:
        raise BookingRefused(Problem.SAME_SLOT, booking=booking, slot=slot)
    if await uow.bookings.held_by(other.id, booking.enterprise_id) is not None:
        raise BookingRefused(Problem.HELD, booking=booking, slot=other)
    if other.status != "open" or other.booked >= other.capacity:
        raise BookingRefused(Problem.FULL, booking=booking, slot=other)
    if other.starts_at <= now:
        raise BookingRefused(Problem.TOO_SOON, booking=booking, slot=other)
    ticket.details = _details(booking, slot, ticket, proposal={
        "slot_id": other.id, "starts_at": other.starts_at.isoformat(),
        "ends_at": other.ends_at.isoformat()})
    ticket.updated_at = now
    _log(uow, ticket, "booking_proposed", now, actor_id, "worker", name=name,
         starts_at=other.starts_at.isoformat())
    return Change(booking, ticket, slot, extra={"proposed": other})


async def proposable(uow: UnitOfWork, config: Config, ticket_id: int,
                     now: datetime) -> tuple[Booking, CheckupSlot, list[CheckupSlot]]:
    """The free slots the desk may propose for a booking: any that has not started."""
    booking = await uow.bookings.of_ticket(ticket_id)
    if booking is None:
        raise BookingRefused(Problem.NOT_FOUND)
    _active(booking)
    slot = await uow.bookings.slot(booking.slot_id)
    slots = await uow.bookings.slots_between(slot.desk_id, now, horizon(config, now),
                                             free_only=True, not_of=booking.enterprise_id)
    return booking, slot, slots


async def marking_refusal(uow: UnitOfWork, clock: Clock, ticket_id: int,
                          actor_id: int) -> BookingRefused | None:
    """Why the member may not mark the check-up done or no-show now, or None."""
    try:
        booking, _, slot = await of_ticket(uow, ticket_id)
        _active(booking)
    except BookingRefused as refused:
        return refused
    if clock.now() < slot.starts_at:
        return BookingRefused(Problem.NOT_STARTED, booking=booking, slot=slot)
    if booking.lawyer_id is not None and booking.lawyer_id != actor_id:
        return BookingRefused(Problem.NOT_LAWYER, booking=booking, slot=slot)
    return None


async def _marking(uow: UnitOfWork, clock: Clock, ticket_id: int, actor_id: int,
                   name: str) -> tuple[Booking, Ticket, CheckupSlot]:
    refused = await marking_refusal(uow, clock, ticket_id, actor_id)
    if refused is not None:
        raise refused
    booking, ticket, slot = await of_ticket(uow, ticket_id)
    if booking.lawyer_id is None or ticket.holder_id != actor_id:
        await _hold(uow, clock, ticket, actor_id, name)
        booking.lawyer_id, booking.lawyer_name = actor_id, name
    return booking, ticket, slot


async def done(uow: UnitOfWork, clock: Clock, config: Config, ticket_id: int, actor_id: int,
               name: str, report: str, document: str | None = None) -> Change:
    """The check-up took place: its report resolves the ticket and the follow-up survey is
    planned for the contact who booked."""
    booking, ticket, slot = await _marking(uow, clock, ticket_id, actor_id, name)
    now = clock.now()
    booking.status, booking.report, booking.updated_at = "done", report, now
    ticket = await tickets.resolve(uow, clock, ticket.id, actor_id, report)
    if document is not None:
        uow.tickets.attach(TicketAttachment(ticket_id=ticket.id, kind="document",
                                            file_id=document, added_by_role="worker",
                                            added_at=now))
    ticket.details = _details(booking, slot, ticket, proposal=None, ended=True)
    await _stop_timers(uow, ticket)
    await surveys.plan(uow, clock, config, ticket)
    return Change(booking, ticket, slot)


async def no_show(uow: UnitOfWork, clock: Clock, ticket_id: int, actor_id: int,
                  name: str) -> Change:
    """Nobody came: the ticket closes without a survey."""
    booking, ticket, slot = await _marking(uow, clock, ticket_id, actor_id, name)
    now = clock.now()
    booking.status, booking.updated_at = "no_show", now
    await tickets.transition(uow, ticket.id, Action.NO_SHOW, {
        "closed_at": now, "close_reason": "no_show", "updated_at": now})
    await uow.tickets.refresh(ticket)
    ticket.details = _details(booking, slot, ticket, proposal=None, ended=True)
    _log(uow, ticket, "closed", now, actor_id, "worker", reason="no_show", name=name)
    await _stop_timers(uow, ticket)
    return Change(booking, ticket, slot)


def slot_over(ticket: Ticket) -> None:
    """The slot has ended: the card now offers Done and No-show."""
    ticket.details = {**(ticket.details or {}), "ended": True}


# -- timers ------------------------------------------------------------------------------------

def reminder_time(config: Config, due: datetime, start: datetime) -> datetime:
    """When a reminder due at ``due`` for a check-up at ``start`` goes out. Enterprise contacts
    keep quiet hours as residents do. Inside them the reminder waits for their end when that
    still leaves ``MIN_REMINDER_LEAD`` before the start (a 2-hour reminder of a 09:00 check-up
    goes at 08:00); otherwise it goes just before they began, the evening before."""
    quiet, tz = config.quiet_hours, config.timezone
    allowed = quiet.next_allowed(due, tz)
    if allowed == due or allowed <= start - MIN_REMINDER_LEAD:
        return allowed
    local = due.astimezone(tz)
    began = datetime.combine(local.date(), quiet.start, tzinfo=tz)
    if began > local:
        began -= timedelta(days=1)
    return (began - timedelta(minutes=1)).astimezone(due.tzinfo)


def _key(kind: str, booking: Booking, index: int | None = None) -> str:
    return f"{kind}:{booking.id}" + (f":{index}" if index is not None else "")


async def _own_timers(uow: UnitOfWork, config: Config, booking: Booking, ticket: Ticket,
                      slot: CheckupSlot, now: datetime) -> None:
    """The booking's reminders and the nudge after the slot, for its current slot; the
    ticket's ordinary claim and resolution timers do not apply."""
    await uow.tasks.cancel(tickets.CLAIM_TIMERS + tickets.DEADLINE_TIMERS + BOOKING_TIMERS,
                           ticket_id=ticket.id)
    ticket.deadline_at = slot.ends_at + MARK_WITHIN
    payload = {"booking_id": booking.id, "slot_id": slot.id,
               "starts_at": slot.starts_at.isoformat()}
    seen: set[datetime] = set()
    for index, before in enumerate(config.timings.booking.reminders_before):
        due = reminder_time(config, slot.starts_at - before, slot.starts_at)
        if due <= now or due >= slot.starts_at or due in seen:
            continue  # booked (or moved) closer than that; or the same moment twice
        seen.add(due)
        await uow.tasks.schedule(REMIND, due, now, ticket_id=ticket.id,
                                 payload={**payload, "before": int(before.total_seconds())},
                                 key=_key(REMIND, booking, index))
    await uow.tasks.schedule(AFTER, slot.ends_at, now, ticket_id=ticket.id, payload=payload,
                             key=_key(AFTER, booking))


async def _stop_timers(uow: UnitOfWork, ticket: Ticket) -> None:
    await uow.tasks.cancel(tickets.CLAIM_TIMERS + tickets.DEADLINE_TIMERS + BOOKING_TIMERS,
                           ticket_id=ticket.id)


async def current(uow: UnitOfWork, payload: dict) -> tuple[Booking, Ticket,
                                                            CheckupSlot] | None:
    """For a timer: the booking, if it is still active in the slot the timer was set for.
    Read under its ticket's lock, after any change a person was making has committed (see
    TaskRepository.cancel)."""
    booking = await uow.bookings.get(int(payload.get("booking_id") or 0))
    if booking is None:
        return None
    ticket = await uow.tickets.get_locked(booking.ticket_id)
    await uow.session.refresh(booking)
    if ticket is None or booking.status not in ACTIVE_BOOKING:
        return None
    if booking.slot_id != payload.get("slot_id"):
        return None
    slot = await uow.bookings.slot(booking.slot_id)
    if slot is None or slot.starts_at.isoformat() != payload.get("starts_at"):
        return None
    return booking, ticket, slot
