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
can use it; the buttons are for members of that group (handlers.booking_desk checks).
"""

from __future__ import annotations

import enum
import html
import re
from collections.abc import Awaitable, Callable
from datetime import date, time, timedelta

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from bot.config import format_duration
from bot.config_types import parse_duration
from bot.context import runtime
from bot.i18n import Translator
from bot.runtime import Runtime
from bot.services import audit, bookings
from bot.services.bookings import BookingRefused, SlotPlan
from bot.services.calendar import WorkCalendar
from bot.views.cards import BOOKING_PREFIX, slot_label
from handlers.common import is_group, translator_for
from handlers.tickets_group import short
from storage.models import OrgNode
from storage.uow import UnitOfWork

SLOT_ACTIONS = ("sc", "sy", "sk")  # close, close anyway, keep open
LIST_LIMIT = 30
MIN_LENGTH, MAX_LENGTH = timedelta(minutes=15), timedelta(hours=8)
MAX_CAPACITY = 50

_DATE = r"\d{4}-\d{2}-\d{2}"
_ADD = re.compile(rf"({_DATE})(?:\.\.({_DATE}))?\s+(\d{{1,2}}:\d{{2}})-(\d{{1,2}}:\d{{2}})"
                  r"(?:\s+(\S+))?(?:\s+(\d{1,3}))?", re.ASCII)

Step = Callable[[], Awaitable[object]]


def help_text(t: Translator, today: date) -> str:
    """How to use /slots, with example dates that lie ahead (tomorrow, and the days after)."""
    first = today + timedelta(days=1)
    return t("<b>Check-up slots</b>\n"
             "/slots — the coming slots, with Close buttons\n"
             "/slots add {day} 09:00-12:00 60m 2 — slots of 60 minutes with 2 places each\n"
             "/slots add {first}..{last} 14:00-17:00 30m 1 — the same on every working day "
             "of the range\n"
             "Length and places may be left out (60m, 1 place).",
             day=first.isoformat(), first=first.isoformat(),
             last=(first + timedelta(days=4)).isoformat())


class PlanProblem(enum.Enum):
    UNREADABLE = "unreadable"  # not the form of the help, or impossible values
    PAST = "past"              # the (first) day has passed


def parse_add(config, text: str, today: date) -> SlotPlan | PlanProblem:
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


async def slots_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    message = update.effective_message
    user = update.effective_user
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        node = await desk_of_group(rt, uow, update.effective_chat.id) if is_group(update) else None
        # An anonymous admin or a channel speaks as a chat: no member to record.
        if node is None or user is None or message.sender_chat is not None:
            text, markup = t("/slots works in the group of the desk that holds legal "
                             "check-ups, for its members."), None
        else:
            args = context.args or []
            if not args:
                text, markup = await list_view(rt, uow, t, node)
            elif args[0].lower() == "add":
                text, markup = await _add(rt, uow, t, node, " ".join(args[1:]), user.id), None
            else:
                text, markup = help_text(t, _today(rt)), None
        await uow.commit()
    await message.reply_html(text, reply_markup=markup)


async def _add(rt: Runtime, uow: UnitOfWork, t: Translator, node: OrgNode, text: str,
               user_id: int) -> str:
    today = _today(rt)
    plan = parse_add(rt.config, text, today)
    if plan is PlanProblem.PAST:
        return t("That date has passed: slots can be added from today ({today}) on.",
                 today=today.isoformat()) + "\n\n" + help_text(t, today)
    if isinstance(plan, PlanProblem):
        return t("I could not read that.") + "\n\n" + help_text(t, today)
    created, skipped = await bookings.add_slots(uow, rt.clock, rt.config, node.id, plan,
                                                user_id)
    if created:
        audit.record(uow, rt.clock, audit.Actor.telegram(user_id), "slots_add",
                     target=f"desk:{node.code}", count=len(created), skipped=skipped,
                     first=created[0].starts_at.astimezone(rt.config.timezone).isoformat(),
                     last=created[-1].starts_at.astimezone(rt.config.timezone).isoformat(),
                     length=format_duration(plan.length), places=plan.capacity)
    lines = [t("Added {count} slot(s) of {length} with {places} place(s) each.",
               count=len(created), length=t.duration(plan.length),
               places=plan.capacity)]
    if skipped:
        lines.append(t("Skipped {count}: in the past or overlapping an open slot.",
                       count=skipped))
    for slot in created[:LIST_LIMIT]:
        lines.append("· " + slot_label(rt.config, slot.starts_at, slot.ends_at))
    if len(created) > LIST_LIMIT:
        lines.append("…")
    return "\n".join(lines)


def _today(rt: Runtime) -> date:
    return rt.clock.now().astimezone(rt.config.timezone).date()


async def list_view(rt: Runtime, uow: UnitOfWork, t: Translator,
                    node: OrgNode) -> tuple[str, InlineKeyboardMarkup | None]:
    slots = await bookings.upcoming(uow, rt.config, node.id, rt.clock.now(),
                                    limit=LIST_LIMIT + 1)
    if not slots:
        return t("No check-up slots are open. Add some with /slots add; /slots help shows "
                 "how."), None
    lines = [t("<b>Open check-up slots</b> (booked/places)")]
    buttons = []
    for slot in slots[:LIST_LIMIT]:
        label = slot_label(rt.config, slot.starts_at, slot.ends_at)
        lines.append(f"· {label} · {slot.booked}/{slot.capacity}")
        buttons.append([InlineKeyboardButton(t("✖️ Close {time}", time=label),
                                             callback_data=f"{BOOKING_PREFIX}sc:{slot.id}")])
    if len(slots) > LIST_LIMIT:
        lines.append(t("… and more later."))
    return "\n".join(lines), InlineKeyboardMarkup(buttons)


async def slot_button(rt: Runtime, uow: UnitOfWork, t: Translator, update: Update,
                      action: str, slot_id: int) -> list[Step]:
    """Close (asks again when the slot has bookings), Close anyway, Keep open."""
    query = update.callback_query
    node = await desk_of_group(rt, uow, update.effective_chat.id)
    slot = await uow.bookings.slot(slot_id)
    if node is None or slot is None or slot.desk_id != node.id:
        return [lambda: query.answer(t("This button is no longer valid."), show_alert=True)]
    label = slot_label(rt.config, slot.starts_at, slot.ends_at)
    if action == "sk":
        return [lambda: query.answer(), lambda: query.edit_message_text(
            t("{time} stays open.", time=label))]
    if slot.status != "open":
        return [lambda: query.answer(short(t("{time} is already closed.", time=label)),
                                     show_alert=True)]
    active = await uow.bookings.active_in_slot(slot.id)
    if action == "sc" and active:
        text = t("{time} has {count} booking(s). Closing it stops new bookings; the booked "
                 "check-ups keep their time. To move them, use Propose another time on their "
                 "cards.", time=label, count=len(active))
        markup = InlineKeyboardMarkup([[
            InlineKeyboardButton(t("Close anyway"), callback_data=f"{BOOKING_PREFIX}sy:{slot.id}"),
            InlineKeyboardButton(t("Keep it open"), callback_data=f"{BOOKING_PREFIX}sk:{slot.id}"),
        ]])
        return [lambda: query.answer(), lambda: query.message.reply_html(text,
                                                                         reply_markup=markup)]
    try:
        await bookings.close_slot(uow, node.id, slot.id)
    except BookingRefused:
        return [lambda: query.answer(t("This button is no longer valid."), show_alert=True)]
    audit.record(uow, rt.clock, audit.Actor.telegram(update.effective_user.id), "slot_close",
                 target=f"slot:{slot.id}", desk=node.code,
                 starts_at=slot.starts_at.astimezone(rt.config.timezone).isoformat(),
                 bookings=len(active))
    await uow.commit()
    text = t("Closed {time}; it takes no new bookings.", time=label)
    if action == "sc":  # from the list: show the list again without it
        view = await list_view(rt, uow, t, node)
        return [lambda: query.answer(short(text)),
                lambda: query.edit_message_text(view[0], parse_mode="HTML",
                                                reply_markup=view[1])]
    return [lambda: query.answer(short(text)),
            lambda: query.edit_message_text(html.escape(text), parse_mode="HTML")]
