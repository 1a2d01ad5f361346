"""An enterprise books a legal check-up (法治体检) in a private chat.

/checkup (or the main menu) asks, one step at a time: the enterprise (when the person acts for
several), the topics (several; a Done button), a day with free places (the next
``horizon_days``, no earlier than ``min_notice``), a time on that day, then a summary to
confirm. "My bookings" lists the person's enterprises' bookings; each can be cancelled or
moved until ``cancel_cutoff`` before it, after that the person is told to write to the desk.
A time the desk proposes arrives with Accept / Keep my time buttons.

The conversation is a draft row ("checkup"), written at every step and committed before the
answer is sent, so a restart loses no answer; it is the person's one private conversation,
like a report. Its buttons are "ck:" callbacks:

    ck:new  ck:e:<enterprise>  ck:t:<topic index>  ck:td  ck:d:<yyyymmdd>  ck:s:<slot>
    ck:ok  ck:back  ck:x  ck:my  ck:b:<booking>  ck:c:<booking>  ck:cy:<booking>
    ck:r:<booking>  ck:pa:<booking>:<slot>  ck:pd:<booking>:<slot>

Every booking id is checked against the person's enterprises (bookings.owned): data forged
to act on another enterprise's booking is refused. Rules are in bot.services.bookings.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, MaybeInaccessibleMessage, Update
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    filters,
)

from bot.actions.notifier import Notifier
from bot.context import runtime
from bot.i18n import Translator
from bot.logs import bind_log_context
from bot.runtime import Runtime
from bot.services import bookings, routing
from bot.services.bookings import BookingRefused, Problem
from bot.services.text import user_html
from bot.views.cards import BOOKING_LABELS, day_label, slot_label, topic_names
from handlers.common import translator_for
from handlers.replies import Kept, keep, send_kept
from storage.models import Booking, CheckupSlot, Draft, OrgNode, Ticket
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

FLOW = "checkup"
PREFIX = "ck:"
NEW = "ck:new"
MY = "ck:my"
# After my_tickets' drafts (-20), before the group prompts (-15) and the report flow (-5).
PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
MY_LIMIT = 10

_DATA = re.compile(r"ck:(new|td|ok|back|x|my|e|t|d|s|b|c|cy|r|pa|pd)(?::(\d{1,18}))?"
                   r"(?::(\d{1,18}))?", re.ASCII)
_WITH_ID = {"e", "t", "d", "s", "b", "c", "cy", "r"}

View = tuple[str, InlineKeyboardMarkup | None]


@dataclass
class Reply:
    """What to tell Telegram once the unit of work is closed."""

    alert: str | None = None
    edit: View | None = None
    send: list[View] = field(default_factory=list)
    kept: Kept | None = None  # the pressed message's edit, kept in the outbox (handlers.replies)

    async def deliver(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is not None:
            await query.answer(self.alert, show_alert=self.alert is not None)
            if self.kept is not None:
                await send_kept(context, self.kept)
            if self.edit is not None:
                try:
                    await query.edit_message_text(self.edit[0], parse_mode="HTML",
                                                  reply_markup=self.edit[1])
                except BadRequest as exc:
                    if "not modified" not in exc.message:
                        # Too old to edit: say it anew.
                        self.send.insert(0, self.edit)
        for text, markup in self.send:
            await update.effective_chat.send_message(text, parse_mode="HTML",
                                                     reply_markup=markup)


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=data)


def _time_label(rt: Runtime, slot: CheckupSlot) -> str:
    tz = rt.config.timezone
    return (f"{slot.starts_at.astimezone(tz):%H:%M}–{slot.ends_at.astimezone(tz):%H:%M}")


# -- entry points ------------------------------------------------------------------------------

async def checkup_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        reply = Reply(send=[await _begin(rt, uow, t, update.effective_user.id)])
        await uow.commit()
    await reply.deliver(update, context)


async def _begin(rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int,
                 reschedule: Booking | None = None) -> View:
    """A new booking (or a move of ``reschedule``): the person's one conversation from now."""
    node = await bookings.desk(uow, rt.config)
    if node is None:
        return t("Legal check-ups are not offered here."), None
    if reschedule is not None:
        draft = await uow.drafts.start(user_id, FLOW, "day", {
            "reschedule": reschedule.id, "enterprise_id": reschedule.enterprise_id,
            "topics": list(reschedule.topics)}, rt.clock.now())
        return await _view(rt, uow, t, draft)
    enterprises = await uow.enterprises.of_user(user_id)
    if not enterprises:
        return t("Check-ups are booked for an enterprise. Register your enterprise first "
                 "with /enterprise, then send /checkup again."), None
    data: dict = {"topics": []}
    step = "enterprise"
    if len(enterprises) == 1:
        if not await bookings.free_days(uow, rt.config, node.id, rt.clock.now(),
                                        enterprises[0].id):
            return await _no_places(rt, uow, t, node, enterprises[0].id, user_id)
        data["enterprise_id"], step = enterprises[0].id, "topics"
    draft = await uow.drafts.start(user_id, FLOW, step, data, rt.clock.now())
    return await _view(rt, uow, t, draft)


async def _no_places(rt: Runtime, uow: UnitOfWork, t: Translator, node: OrgNode,
                     enterprise_id: int, user_id: int) -> View:
    """Nothing to book for the enterprise: rather than a dead end, the desk hears that it is
    waiting (once in a while, not at every try) and the contact hears that the desk knows.
    With no group for the desk (nor above it) nobody can be told: the contact is not told
    otherwise, and the enterprise is not noted as waiting, so that the desk hears of it at
    the next try once a group is bound. An enterprise with a check-up to come is not
    waiting: its contact is shown the way to it instead."""
    enterprise = await uow.enterprises.get(enterprise_id)
    name = user_html(enterprise.name if enterprise else "?")
    days = rt.config.timings.booking.horizon_days
    mine = await uow.bookings.of_enterprises(
        [e.id for e in await uow.enterprises.of_user(user_id)], limit=1)
    markup = InlineKeyboardMarkup([[_button(t("📋 My bookings"), MY)]]) if mine else None
    if any(b.enterprise_id == enterprise_id and b.status in ("booked", "confirmed")
           for b, _ in await uow.bookings.of_enterprises([enterprise_id])):
        return t("There is no other free check-up place in the next {days} days. The "
                 "check-up <b>{name}</b> has booked is under My bookings.", days=days,
                 name=name), markup
    _, group = await routing.handling_group(uow, node)
    if group is None:
        return t("There is no free check-up place in the next {days} days. Please send "
                 "/checkup again in a few days.", days=days), markup
    if await bookings.note_waiting(uow, rt.clock, enterprise_id):
        gt = rt.translator(group.language)
        Notifier(rt, uow).say(group.chat_id, gt(
            "📅 <b>{name}</b> would like a legal check-up, but no place is free in the "
            "next {days} days. Please open some with /slots add; its contacts can then "
            "book them with /checkup.", name=name, days=days))
        log.info("told the desk that enterprise %s is waiting for a check-up", enterprise_id)
    return t("There is no free check-up place in the next {days} days. The legal desk has "
             "been told that <b>{name}</b> is waiting for one; please send /checkup again in "
             "a few days.", days=days, name=name), markup


# -- the steps ---------------------------------------------------------------------------------

async def _view(rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                note: str = "") -> View:
    """The question of the draft's current step (``note`` goes first, HTML)."""
    text, markup = await _question(rt, uow, t, draft)
    return (note + "\n\n" + text if note else text), markup


async def _question(rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft) -> View:
    data, step, config = draft.data, draft.step, rt.config
    cancel = [_button(t("Cancel"), f"{PREFIX}x")]
    if step in ("enterprise", "topics") and not data.get("reschedule"):
        cancel = [_button(t("📋 My bookings"), MY), *cancel]
    back = [_button(t("‹ Back"), f"{PREFIX}back")]
    node = await bookings.desk(uow, config)
    now = rt.clock.now()
    if step == "enterprise":
        rows = [[_button(e.name, f"{PREFIX}e:{e.id}")]
                for e in await uow.enterprises.of_user(draft.user_id)]
        return t("<b>Legal check-up</b>\nFor which enterprise?"), InlineKeyboardMarkup(
            [*rows, cancel])
    if step == "topics":
        chosen = set(data.get("topics") or [])
        rows = [[_button(("✅ " if topic.code in chosen else "▫️ ")
                         + topic.names.get(t.language), f"{PREFIX}t:{index}")]
                for index, topic in enumerate(config.checkup_topics)]
        rows.append([_button(t("Done ›"), f"{PREFIX}td")])
        rows.append(cancel)
        return t("<b>Legal check-up</b>\nWhat should the lawyers look at? Choose one or more "
                 "topics, then press Done."), InlineKeyboardMarkup(rows)
    enterprise_id = data.get("enterprise_id")
    if step == "day":
        days = await bookings.free_days(uow, config, node.id, now, enterprise_id)
        if not days and data.get("reschedule"):
            return t("There is no other free time in the next {days} days; your check-up "
                     "keeps its time.", days=config.timings.booking.horizon_days), \
                InlineKeyboardMarkup([cancel])
        if not days:  # the last places went while going back and forth
            return t("There are no free check-up places in the next {days} days. Please try "
                     "again later.", days=config.timings.booking.horizon_days), \
                InlineKeyboardMarkup([cancel])
        buttons = [_button(day_label(t, day), f"{PREFIX}d:{day:%Y%m%d}") for day in days]
        rows = [buttons[i:i + 3] for i in range(0, len(buttons), 3)]
        rows.append(([] if data.get("reschedule") else back) + cancel)
        return t("Choose a day (at least {notice} from now):",
                 notice=t.duration(config.timings.booking.min_notice)), \
            InlineKeyboardMarkup(rows)
    if step == "slot":
        offered = data.get("offered")
        if offered:
            slots = [s for s in await bookings.bookable(uow, config, node.id, now,
                                                        enterprise_id) if s.id in offered]
            labels = {s.id: slot_label(config, s.starts_at, s.ends_at) for s in slots}
            question = t("The nearest free times:")
        else:
            slots = await bookings.free_on(uow, config, node.id, now,
                                           date.fromisoformat(data["day"]), enterprise_id)
            labels = {s.id: _time_label(rt, s) for s in slots}
            question = t("Choose a time on {day}:", day=day_label(t, data["day"]))
        rows = [[_button(t("{time} · {free} free", time=labels[s.id],
                           free=s.capacity - s.booked), f"{PREFIX}s:{s.id}")]
                for s in slots]
        if not slots:
            question = t("No free time is left on that day. Please choose another day.")
        rows.append([_button(t("‹ Other days"), f"{PREFIX}back"), *cancel])
        return question, InlineKeyboardMarkup(rows)
    # confirm
    slot = await uow.bookings.slot(int(data["slot_id"]))
    enterprise = await uow.enterprises.get(int(data["enterprise_id"]))
    lines = [t("<b>Please check your booking</b>"),
             f"🏢 {user_html(enterprise.name if enterprise else '?')}",
             t("Topics: {topics}", topics=topic_names(config, data.get("topics") or [],
                                                      t.language)),
             t("🗓 Check-up: {time}", time=slot_label(config, slot.starts_at, slot.ends_at))]
    if data.get("reschedule"):
        lines.append(t("This replaces your current time."))
    rows = [[_button(t("✅ Book it"), f"{PREFIX}ok")], back + cancel]
    return "\n".join(lines), InlineKeyboardMarkup(rows)


async def _our_draft(uow: UnitOfWork, user_id: int) -> Draft | None:
    draft = await uow.drafts.any_of(user_id)
    return draft if draft is not None and draft.flow == FLOW else None


def _save(rt: Runtime, uow: UnitOfWork, draft: Draft, step: str, **changes) -> None:
    data = {**draft.data, **changes}
    uow.drafts.save(draft, step=step, data={k: v for k, v in data.items() if v is not None},
                    now=rt.clock.now())


async def _step_button(rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                       word: str, number: int | None,
                       pressed: MaybeInaccessibleMessage) -> Reply | None:
    """A button of the draft's current step (on the `pressed` message); None when it does
    not belong to it."""
    step, data, config = draft.step, draft.data, rt.config
    if word == "back":
        previous = {"topics": "enterprise", "day": "topics", "slot": "day",
                    "confirm": "slot"}.get(step)
        if previous is None or (previous in ("enterprise", "topics") and data.get("reschedule")):
            return None
        if previous == "enterprise" and len(await uow.enterprises.of_user(draft.user_id)) < 2:
            return None
        _save(rt, uow, draft, previous, offered=None)
    elif word == "e" and step == "enterprise":
        if number not in {e.id for e in await uow.enterprises.of_user(draft.user_id)}:
            return None
        nothing = await _nothing_free(rt, uow, t, draft, number)
        if nothing is not None:
            return nothing
        _save(rt, uow, draft, "topics", enterprise_id=number)
    elif word == "t" and step == "topics":
        if not 0 <= number < len(config.checkup_topics):
            return None
        code = config.checkup_topics[number].code
        chosen = list(data.get("topics") or [])
        chosen = [c for c in chosen if c != code] if code in chosen else [*chosen, code]
        _save(rt, uow, draft, "topics", topics=chosen)
    elif word == "td" and step == "topics":
        if not data.get("topics"):
            return Reply(alert=t("Choose at least one topic."))
        nothing = None if data.get("reschedule") else await _nothing_free(
            rt, uow, t, draft, int(data["enterprise_id"]))  # taken while choosing topics
        if nothing is not None:
            return nothing
        _save(rt, uow, draft, "day")
    elif word == "d" and step == "day":
        try:
            day = datetime.strptime(f"{number:08d}", "%Y%m%d").date()
        except ValueError:
            return None
        _save(rt, uow, draft, "slot", day=day.isoformat(), offered=None)
    elif word == "s" and step == "slot":
        node = await bookings.desk(uow, config)
        slot = await uow.bookings.slot(number)
        if slot is None or node is None or slot.desk_id != node.id:
            return None
        _save(rt, uow, draft, "confirm", slot_id=slot.id)
    elif word == "ok" and step == "confirm":
        return await _book(rt, uow, t, draft, pressed)
    else:
        return None
    await uow.commit()
    return Reply(edit=await _view(rt, uow, t, draft))


async def _nothing_free(rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                        enterprise_id: int) -> Reply | None:
    """With no place the enterprise can book, the booking ends here (see _no_places)."""
    node = await bookings.desk(uow, rt.config)
    if node is None or await bookings.free_days(uow, rt.config, node.id, rt.clock.now(),
                                                enterprise_id):
        return None
    await uow.drafts.discard(draft.user_id, FLOW)
    view = await _no_places(rt, uow, t, node, enterprise_id, draft.user_id)
    await uow.commit()
    return Reply(edit=view)


async def _book(rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                pressed: MaybeInaccessibleMessage) -> Reply:
    data, user_id = draft.data, draft.user_id
    slot_id = int(data["slot_id"])
    try:
        if data.get("reschedule"):
            change = await bookings.reschedule(uow, rt.clock, rt.config,
                                               int(data["reschedule"]), user_id, slot_id)
        else:
            change = await bookings.book(uow, rt.clock, rt.config, user_id=user_id,
                                         enterprise_id=int(data["enterprise_id"]),
                                         topics=data.get("topics") or [], slot_id=slot_id,
                                         language=t.language)
    except BookingRefused as refused:
        if refused.problem in (Problem.FULL, Problem.TOO_SOON, Problem.GONE, Problem.HELD):
            offered = [s.id for s in refused.alternatives]
            _save(rt, uow, draft, "slot", offered=offered or None,
                  day=data.get("day"))
            await uow.commit()
            note = (await _held_text(rt, uow, t, refused) if refused.problem is Problem.HELD
                    else _taken_text(t, refused.problem))
            return Reply(edit=await _view(rt, uow, t, draft, note))
        await uow.drafts.discard(user_id, FLOW)
        await uow.commit()
        return Reply(edit=(refusal_text(t, rt, refused, None), None))
    await uow.drafts.discard(user_id, FLOW)
    notifier = Notifier(rt, uow)
    ticket = change.ticket
    when = slot_label(rt.config, change.slot.starts_at, change.slot.ends_at)
    if change.old_slot is None:
        await notifier.post_card(ticket)
    else:
        await notifier.refresh_card(ticket)
        await _to_desk(rt, uow, ticket, lambda gt: gt(
            "🕘 The enterprise moved No. {number} from {old} to {new}. Please confirm the "
            "new time.", number=ticket.number, new=when,
            old=slot_label(rt.config, change.old_slot.starts_at, change.old_slot.ends_at)))
    number = t("No. {number}", number=ticket.number)
    if change.old_slot is not None:
        text = t("Your check-up is moved to {time}. The desk will confirm the new time.",
                 time=when)
    else:
        text = t("Your check-up is booked for {time}. The legal desk will confirm it; you "
                 "will be reminded before it. To cancel or move it, use My bookings in "
                 "/checkup until {cutoff} before.", time=when,
                 cutoff=t.duration(rt.config.timings.booking.cancel_cutoff))
    # The number is known only here: the confirmation must reach the enterprise even if the
    # process dies right after the commit.
    confirmation = {"text": f"<b>{number}</b>\n{text}", "parse_mode": "HTML"}
    if pressed.is_accessible:  # the summary pressed becomes the confirmation
        kept = keep(rt, uow, pressed.chat.id, "editMessageText",
                    {"message_id": pressed.message_id, **confirmation}, ticket=ticket)
    else:  # too old for Telegram to show the bot: said anew
        kept = keep(rt, uow, pressed.chat.id, "sendMessage", confirmation, ticket=ticket)
    await uow.commit()
    bind_log_context(ticket=ticket.number)
    log.info("check-up booking %s %s (ticket %s)", change.booking.id,
             "moved" if change.old_slot else "made", ticket.number)
    return Reply(kept=kept)


def _taken_text(t: Translator, problem: Problem) -> str:
    if problem is Problem.FULL:
        return t("Sorry, the last place at that time has just been taken.")
    if problem is Problem.TOO_SOON:
        return t("That time is too close now to be booked.")
    return t("That time is no longer offered.")


async def _held_text(rt: Runtime, uow: UnitOfWork, t: Translator,
                     refused: BookingRefused) -> str:
    """The enterprise already has a place at that time (booked by a colleague, perhaps)."""
    held = refused.booking
    enterprise = await uow.enterprises.get(held.enterprise_id) if held else None
    ticket = await uow.tickets.get(held.ticket_id) if held else None
    return t("<b>{name}</b> already has a place at that time (No. {number}). Each enterprise "
             "takes one place per time, so that the others stay free for other enterprises. "
             "Please choose another time.",
             name=user_html(enterprise.name) if enterprise else "?",
             number=ticket.number if ticket else "?")


async def _to_desk(rt: Runtime, uow: UnitOfWork, ticket: Ticket, render) -> None:
    """A line in the desk group about the ticket, in the group's language."""
    if ticket.group_chat_id is None:
        return
    group = await uow.groups.get(ticket.group_chat_id)
    gt = rt.translator(group.language if group else rt.config.default_language)
    await Notifier(rt, uow).to_group(ticket, render(gt))


def refusal_text(t: Translator, rt: Runtime, refused: BookingRefused,
                 ticket: Ticket | None) -> str:
    """Why the enterprise's request changed nothing (HTML)."""
    problem = refused.problem
    if problem is Problem.TOO_LATE:
        number = ticket.number if ticket else "?"
        return t("Less than {cutoff} before the check-up it can no longer be cancelled or "
                 "moved here. Please tell the legal desk: reply to any message about No. "
                 "{number} and write what you need.",
                 cutoff=t.duration(rt.config.timings.booking.cancel_cutoff),
                 number=number)
    if problem is Problem.NOT_ACTIVE:
        status = refused.booking.status if refused.booking else ""
        return t("This booking is no longer active ({status}).",
                 status=t(BOOKING_LABELS.get(status, status)) if status else "—")
    if problem is Problem.SAME_SLOT:
        return t("That is already your time.")
    if problem is Problem.STALE:
        return t("This proposal is no longer current.")
    if problem is Problem.NO_DESK:
        return t("Legal check-ups are not offered here.")
    if problem in (Problem.FULL, Problem.TOO_SOON, Problem.GONE):
        return _taken_text(t, problem)
    if problem is Problem.HELD:
        return t("Your enterprise already has a place at that time; each enterprise takes one "
                 "place per time.")
    return t("This button is no longer valid.")


# -- my bookings -------------------------------------------------------------------------------

async def _my_view(rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int) -> View:
    enterprises = await uow.enterprises.of_user(user_id)
    rows = await uow.bookings.of_enterprises([e.id for e in enterprises], limit=MY_LIMIT)
    if not rows:
        return t("No check-ups are booked. Send /checkup to book one."), None
    names = {e.id: e.name for e in enterprises}
    lines = [t("<b>My check-up bookings</b>")]
    buttons = []
    for booking, slot in rows:
        when = slot_label(rt.config, slot.starts_at, slot.ends_at)
        status = t(BOOKING_LABELS[booking.status])
        name = user_html(names.get(booking.enterprise_id, ""))
        lines.append(f"\n🗓 {when} · {status}\n🏢 {name}")
        buttons.append([_button(f"{when} · {status}", f"{PREFIX}b:{booking.id}")])
    buttons.append([_button(t("📅 Book a check-up"), NEW)])
    return "\n".join(lines), InlineKeyboardMarkup(buttons)


async def _booking_view(rt: Runtime, uow: UnitOfWork, t: Translator, booking: Booking,
                        ticket: Ticket, slot: CheckupSlot) -> View:
    enterprise = await uow.enterprises.get(booking.enterprise_id)
    lines = [t("<b>No. {number}</b> · legal check-up", number=ticket.number),
             f"🏢 {user_html(enterprise.name if enterprise else '?')}",
             t("🗓 Check-up: {time}", time=slot_label(rt.config, slot.starts_at, slot.ends_at)),
             t("Topics: {topics}", topics=topic_names(rt.config, booking.topics, t.language)),
             t("Booking: {status}", status=t(BOOKING_LABELS[booking.status]))]
    if booking.lawyer_name:
        lines.append(t("Lawyer: {name}", name=user_html(booking.lawyer_name)))
    if booking.report:
        lines.append(t("Report: {report}", report=user_html(booking.report)))
    rows = []
    if booking.status in ("booked", "confirmed"):
        rows.append([_button(t("🕘 Move"), f"{PREFIX}r:{booking.id}"),
                     _button(t("✖️ Cancel the booking"), f"{PREFIX}c:{booking.id}")])
    rows.append([_button(t("‹ Back to the list"), MY)])
    return "\n".join(lines), InlineKeyboardMarkup(rows)


async def _booking_button(rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int,
                          word: str, booking_id: int, slot_id: int | None) -> Reply:
    try:
        if word in ("pa", "pd"):
            return await _answer_proposal(rt, uow, t, user_id, booking_id, slot_id,
                                          accept=word == "pa")
        booking, ticket, slot = await bookings.owned(uow, booking_id, user_id)
        if word == "b":
            return Reply(edit=await _booking_view(rt, uow, t, booking, ticket, slot))
        if booking.status not in ("booked", "confirmed"):
            raise BookingRefused(Problem.NOT_ACTIVE, booking=booking)
        if not bookings.may_change(rt.config, slot, rt.clock.now()):
            raise BookingRefused(Problem.TOO_LATE, booking=booking, slot=slot)
        when = slot_label(rt.config, slot.starts_at, slot.ends_at)
        if word == "c":
            return Reply(edit=(t("Cancel the check-up on {time}? Its place is given to "
                                 "others.", time=when), InlineKeyboardMarkup([[
                _button(t("Yes, cancel it"), f"{PREFIX}cy:{booking.id}"),
                _button(t("No, keep it"), f"{PREFIX}b:{booking.id}")]])))
        if word == "r":
            view = await _begin(rt, uow, t, user_id, reschedule=booking)
            await uow.commit()
            return Reply(edit=view)
        # "cy"
        change = await bookings.cancel(uow, rt.clock, rt.config, booking.id, user_id,
                                       t("Check-up booking cancelled"))
        await Notifier(rt, uow).refresh_card(change.ticket)
        await _to_desk(rt, uow, change.ticket, lambda gt: gt(
            "✖️ The enterprise cancelled the check-up of No. {number} on {time}; the place "
            "is free again.", number=change.ticket.number, time=when))
        await uow.commit()
        bind_log_context(ticket=change.ticket.number)
        log.info("check-up booking %s cancelled (ticket %s)", booking.id, change.ticket.number)
        return Reply(edit=(t("Your check-up on {time} is cancelled.", time=when), None))
    except BookingRefused as refused:
        ticket = await uow.tickets.get(refused.booking.ticket_id) if refused.booking else None
        return Reply(alert=_plain(refusal_text(t, rt, refused, ticket)))


def _plain(text: str) -> str:
    """Alerts are plain text of at most 200 characters."""
    text = re.sub(r"<[^>]+>", "", text)
    text = html.unescape(text)
    return text if len(text) <= 200 else text[:199] + "…"


async def _answer_proposal(rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int,
                           booking_id: int, slot_id: int | None, *, accept: bool) -> Reply:
    if slot_id is None:
        raise BookingRefused(Problem.NOT_FOUND)
    change = await bookings.answer_proposal(uow, rt.clock, rt.config, booking_id, user_id,
                                            slot_id, accept=accept)
    ticket = change.ticket
    when = slot_label(rt.config, change.slot.starts_at, change.slot.ends_at)
    await Notifier(rt, uow).refresh_card(ticket)
    if accept:
        await _to_desk(rt, uow, ticket, lambda gt: gt(
            "✅ The enterprise accepted the new time of No. {number}: {time}.",
            number=ticket.number, time=when))
        text = t("Your check-up is moved to {time}, as the desk proposed.", time=when)
    else:
        await _to_desk(rt, uow, ticket, lambda gt: gt(
            "The enterprise keeps its time for No. {number}: {time}.", number=ticket.number,
            time=when))
        text = t("You keep your time: {time}. The desk has been told.", time=when)
    await uow.commit()
    return Reply(edit=(text, None))


# -- callbacks and messages --------------------------------------------------------------------

async def checkup_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    query = update.callback_query
    match = _DATA.fullmatch(query.data or "")
    chat = update.effective_chat
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        reply = await _on_button(rt, uow, t, update, match) if (
            match is not None and chat is not None and chat.type == "private") else None
    await (reply or Reply(alert=t("This button is no longer valid."))).deliver(update, context)


async def _on_button(rt: Runtime, uow: UnitOfWork, t: Translator, update: Update,
                     match: re.Match) -> Reply | None:
    word, first, second = match.groups()
    needs = 2 if word in ("pa", "pd") else 1 if word in _WITH_ID else 0
    if needs != (first is not None) + (second is not None):
        return None  # forged, or from another version
    user_id = update.effective_user.id
    number = int(first) if first is not None else None
    if word == "new":
        view = await _begin(rt, uow, t, user_id)
        await uow.commit()
        return Reply(send=[view])
    if word == "my":
        return Reply(send=[await _my_view(rt, uow, t, user_id)])
    if word in ("b", "c", "cy", "r", "pa", "pd"):
        return await _booking_button(rt, uow, t, user_id, word, number,
                                     int(second) if second else None)
    draft = await _our_draft(uow, user_id)
    if draft is None:
        return None
    if word == "x":
        await uow.drafts.discard(user_id, FLOW)
        await uow.commit()
        return Reply(edit=(t("Cancelled; nothing was booked."), None))
    return await _step_button(rt, uow, t, draft, word, number, update.callback_query.message)


async def draft_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A private message while the person is booking: /cancel ends it; anything else (but a
    reply, which the relay takes, and other commands) gets the question again."""
    message = update.effective_message
    user = update.effective_user
    if user is None or message is None or message.reply_to_message is not None:
        return
    command = None
    if message.text and message.text.startswith("/"):
        command = message.text[1:].split(maxsplit=1)[0].split("@", 1)[0].lower() or None
        if command != "cancel":
            return
    rt = runtime(context)
    async with rt.uow() as uow:
        draft = await _our_draft(uow, user.id)
        if draft is None:
            return
        t = await translator_for(rt, uow, update)
        if command == "cancel":
            await uow.drafts.discard(user.id, FLOW)
            view: View = (t("Cancelled; nothing was booked."), None)
        else:
            view = await _view(rt, uow, t, draft, t("Please use the buttons."))
        await uow.commit()
    await message.reply_html(view[0], reply_markup=view[1])
    raise ApplicationHandlerStop


def register(app: Application) -> None:
    app.add_handler(CommandHandler("checkup", checkup_command, filters=PRIVATE))
    app.add_handler(CallbackQueryHandler(checkup_callback, pattern=f"^{PREFIX}"))

