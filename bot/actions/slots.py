"""/slots: the lawyer desk publishes check-up times in its own group.

    /slots                                   upcoming slots, booked/capacity, Close buttons
    /slots add 2026-12-01 09:00-12:00 60m 2  slots of 60 minutes with 2 places each
    /slots add 2026-12-01..2026-12-05 14:00-17:00 30m 1
                                             the same on every working day of the range
                                             (Chinese calendar, with 调休 make-up days)

Length and places may be left out (60m, 1 place). Slots in the past, or overlapping an open
slot of the desk, are skipped and counted. Bad input gets the help.

Closing a slot stops new bookings. A slot that still has bookings is closed only after a
second press ("Close anyway"): those bookings keep their time, and the desk moves them, if it
must, with Propose another time on their cards. Nothing is cancelled behind the enterprises'
backs.

Only the group bound to the desk that holds check-ups (the target of the checkup category)
can use it; the buttons are for members of that group (the door checks membership, and
bot.actions.booking_desk hands the slot buttons here).
"""

from __future__ import annotations

import enum
import re
from datetime import date, time, timedelta

from bot.actions.people import Who, translator
from bot.config import Config, format_duration
from bot.config_types import parse_duration
from bot.i18n import Translator
from bot.runtime import Runtime
from bot.services import audit, bookings
from bot.services.bookings import BookingRefused, SlotPlan
from bot.services.calendar import WorkCalendar
from bot.views import Answer, View
from bot.views import slots as views
from bot.views.cards import slot_label
from bot.views.worker import short
from storage.models import OrgNode
from storage.uow import UnitOfWork

SLOT_ACTIONS = ("sc", "sy", "sk")  # close, close anyway, keep open
LIST_LIMIT = views.LIST_LIMIT
MIN_LENGTH, MAX_LENGTH = timedelta(minutes=15), timedelta(hours=8)
MAX_CAPACITY = 50

_DATE = r"\d{4}-\d{2}-\d{2}"
_ADD = re.compile(rf"({_DATE})(?:\.\.({_DATE}))?\s+(\d{{1,2}}:\d{{2}})-(\d{{1,2}}:\d{{2}})"
                  r"(?:\s+(\S+))?(?:\s+(\d{1,3}))?", re.ASCII)


class PlanProblem(enum.Enum):
    UNREADABLE = "unreadable"  # not the form of the help, or impossible values
    PAST = "past"              # the (first) day has passed


def parse_add(config: Config, text: str, today: date) -> SlotPlan | PlanProblem:
    """The plan of ``/slots add …``, or why there is none."""
    match = _ADD.fullmatch(text.strip())
    if match is None:
        return PlanProblem.UNREADABLE
    first_text, last_text, start_text, end_text, length_text, places_text = match.groups()
    try:
        first = date.fromisoformat(first_text)
        last = date.fromisoformat(last_text) if last_text else first
        start = time(*map(int, start_text.split(":")))
        end = time(*map(int, end_text.split(":")))
        length = parse_duration(length_text) if length_text else timedelta(hours=1)
    except ValueError:
        return PlanProblem.UNREADABLE
    capacity = int(places_text) if places_text else 1
    if first <= last and first < today:
        return PlanProblem.PAST
    if not (today <= first <= last and (last - first).days < bookings.MAX_RANGE_DAYS
            and start < end and MIN_LENGTH <= length <= MAX_LENGTH
            and 1 <= capacity <= MAX_CAPACITY):
        return PlanProblem.UNREADABLE
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    if last_text:
        calendar = WorkCalendar.from_config(config)
        days = [day for day in days if calendar.is_working_day(day)]
    plan = SlotPlan(tuple(days), start, end, length, capacity)
    if not days or len(bookings.plan_times(config, plan)) > bookings.MAX_SLOTS_PER_COMMAND:
        return PlanProblem.UNREADABLE
    return plan


async def desk_of_group(rt: Runtime, uow: UnitOfWork, chat_id: int) -> OrgNode | None:
    """The check-up desk, if this group is its active bound group."""
    node = await bookings.desk(uow, rt.config)
    group = await uow.groups.get(chat_id)
    if node is None or group is None or not group.active or group.node_id != node.id:
        return None
    return node


async def command(rt: Runtime, who: Who, args: list[str], *, as_chat: bool) -> View:
    """/slots with its ``args``; ``as_chat``: sent by an anonymous admin or a channel, who
    speak as a chat (no member to record)."""
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        node = await desk_of_group(rt, uow, who.chat_id) if who.in_group else None
        if node is None or who.user_id is None or as_chat:
            view = views.not_here(t)
        elif not args:
            view = await _listing(rt, uow, t, node)
        elif args[0].lower() == "add":
            view = await _add(rt, uow, t, node, " ".join(args[1:]), who.user_id)
        else:
            view = View(views.help_text(t, _today(rt)))
        await uow.commit()
    return view


async def _add(rt: Runtime, uow: UnitOfWork, t: Translator, node: OrgNode, text: str,
               user_id: int) -> View:
    today = _today(rt)
    plan = parse_add(rt.config, text, today)
    if plan is PlanProblem.PAST:
        return views.past(t, today)
    if isinstance(plan, PlanProblem):
        return views.unreadable(t, today)
    created, skipped = await bookings.add_slots(uow, rt.clock, rt.config, node.id, plan,
                                                user_id)
    if created:
        audit.record(uow, rt.clock, audit.Actor.telegram(user_id), "slots_add",
                     target=f"desk:{node.code}", count=len(created), skipped=skipped,
                     first=created[0].starts_at.astimezone(rt.config.timezone).isoformat(),
                     last=created[-1].starts_at.astimezone(rt.config.timezone).isoformat(),
                     length=format_duration(plan.length), places=plan.capacity)
    return views.added(t, rt.config, created, skipped, plan.length, plan.capacity)


def _today(rt: Runtime) -> date:
    return rt.clock.now().astimezone(rt.config.timezone).date()


async def _listing(rt: Runtime, uow: UnitOfWork, t: Translator, node: OrgNode) -> View:
    slots = await bookings.upcoming(uow, rt.config, node.id, rt.clock.now(),
                                    limit=LIST_LIMIT + 1)
    return views.listing(t, rt.config, slots)


async def press(rt: Runtime, uow: UnitOfWork, t: Translator, who: Who, action: str,
                slot_id: int) -> Answer:
    """Close (asks again, in a new message, when the slot has bookings), Close anyway, Keep
    open; pressed by a member of the group ``who`` is in (the caller checked), in the
    caller's unit of work: this commits what it changes."""
    node = await desk_of_group(rt, uow, who.chat_id)
    slot = await uow.bookings.slot(slot_id)
    if node is None or slot is None or slot.desk_id != node.id:
        return Answer(alert=t("This button is no longer valid."))
    label = slot_label(rt.config, slot.starts_at, slot.ends_at)
    if action == "sk":
        return Answer(edit=views.stays_open(t, label))
    if slot.status != "open":
        return Answer(alert=short(views.already_closed(t, label)))
    active = await uow.bookings.active_in_slot(slot.id)
    if action == "sc" and active:
        return Answer(say=[views.close_anyway(t, slot.id, label, len(active))])
    try:
        await bookings.close_slot(uow, node.id, slot.id)
    except BookingRefused:
        return Answer(alert=t("This button is no longer valid."))
    audit.record(uow, rt.clock, audit.Actor.telegram(who.user_id), "slot_close",
                 target=f"slot:{slot.id}", desk=node.code,
                 starts_at=slot.starts_at.astimezone(rt.config.timezone).isoformat(),
                 bookings=len(active))
    await uow.commit()
    text = views.closed(t, label)
    if action == "sc":  # from the list: show the list again without it
        return Answer(toast=short(text), edit=await _listing(rt, uow, t, node))
    return Answer(toast=short(text), edit=views.closed_note(text))
