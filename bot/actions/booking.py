"""An enterprise books a legal check-up (法治体检) in a private chat.

/checkup (or the main menu) asks, one step at a time: the enterprise (when the person acts for
several), the topics (several; a Done button), a day with free places (the next
``horizon_days``, no earlier than ``min_notice``), a time on that day, then a summary to
confirm. "My bookings" lists the person's enterprises' bookings; each can be cancelled or
moved until ``cancel_cutoff`` before it, after that the person is told to write to the desk.
A time the desk proposes arrives with Accept / Keep my time buttons.

The conversation is a draft row ("checkup"), written at every step and committed before the
answer is shown, so a restart loses no answer; it is the person's one private conversation,
like a report. Every booking id is checked against the person's enterprises
(bookings.owned): data forged to act on another enterprise's booking is refused. Rules are in
bot.services.bookings; the buttons' data is described in bot.views.booking.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import date, datetime

from bot.actions.notifier import Notifier
from bot.actions.outbox import keep
from bot.actions.people import Who, translator
from bot.i18n import Translator
from bot.logs import bind_log_context
from bot.runtime import Runtime
from bot.services import bookings, routing
from bot.services.bookings import BookingRefused, Problem
from bot.services.text import user_html
from bot.views import Answer, View
from bot.views import booking as views
from bot.views.cards import slot_label
from storage.models import Booking, Draft, OrgNode, Ticket
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

FLOW = "checkup"
MY_LIMIT = 10

_DATA = re.compile(r"ck:(new|td|ok|back|x|my|e|t|d|s|b|c|cy|r|pa|pd)(?::(\d{1,18}))?"
                   r"(?::(\d{1,18}))?", re.ASCII)
_WITH_ID = {"e", "t", "d", "s", "b", "c", "cy", "r"}


async def begin(rt: Runtime, who: Who) -> Answer:
    """/checkup: a new booking, the person's one conversation from now."""
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        answer = Answer(say=[await _begin(rt, uow, t, who.user_id)])
        await uow.commit()
    return answer


async def take(rt: Runtime, uow: UnitOfWork, t: Translator, who: Who, draft: Draft, *,
               cancel: bool) -> Answer | None:
    """Inside the caller's unit of work (the caller commits): a message while ``draft``, the
    person's newest, is their booking. None when it is not."""
    if draft.flow != FLOW:
        return None
    if cancel:
        await uow.drafts.discard(who.user_id, FLOW)
        view = views.cancelled(t)
    else:
        view = await _view(rt, uow, t, draft, views.use_the_buttons(t))
    return Answer(say=[view])


async def press(rt: Runtime, who: Who, data: str, pressed_id: int | None) -> Answer:
    """A "ck:" button pressed in the private chat, on the message ``pressed_id`` (None: one
    too old for Telegram to show the bot)."""
    match = _DATA.fullmatch(data or "")
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        answer = None
        if match is not None and not who.in_group and who.user_id is not None:
            answer = await _on_button(rt, uow, t, who, match, pressed_id)
    return answer or Answer(alert=views.no_longer_valid(t))


# -- starting --------------------------------------------------------------------------------

async def _begin(rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int,
                 reschedule: Booking | None = None) -> View:
    """A new booking (or a move of ``reschedule``): the person's one conversation from now."""
    node = await bookings.desk(uow, rt.config)
    if node is None:
        return views.not_offered(t)
    if reschedule is not None:
        draft = await uow.drafts.start(user_id, FLOW, "day", {
            "reschedule": reschedule.id, "enterprise_id": reschedule.enterprise_id,
            "topics": list(reschedule.topics)}, rt.clock.now())
        return await _view(rt, uow, t, draft)
    enterprises = await uow.enterprises.of_user(user_id)
    if not enterprises:
        return views.register_first(t)
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
    mine = bool(await uow.bookings.of_enterprises(
        [e.id for e in await uow.enterprises.of_user(user_id)], limit=1))
    if any(b.enterprise_id == enterprise_id and b.status in ("booked", "confirmed")
           for b, _ in await uow.bookings.of_enterprises([enterprise_id])):
        return views.no_places(t, rt.config, name, has_one=True, told=None, mine=mine)
    _, group = await routing.handling_group(uow, node)
    if group is None:
        return views.no_places(t, rt.config, name, has_one=False, told=None, mine=mine)
    if await bookings.note_waiting(uow, rt.clock, enterprise_id):
        Notifier(rt, uow).say(group.chat_id, views.desk_waiting(
            rt.translator(group.language), rt.config, name))
        log.info("told the desk that enterprise %s is waiting for a check-up", enterprise_id)
    return views.no_places(t, rt.config, name, has_one=False, told=True, mine=mine)


# -- the steps ---------------------------------------------------------------------------------

async def _view(rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                note: str = "") -> View:
    """The question of the draft's current step (``note`` goes first, HTML)."""
    return views.with_note(await _question(rt, uow, t, draft), note)


async def _question(rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft) -> View:
    data, step, config = draft.data, draft.step, rt.config
    reschedule = bool(data.get("reschedule"))
    if step == "enterprise":
        return views.ask_enterprise(t, await uow.enterprises.of_user(draft.user_id))
    if step == "topics":
        return views.ask_topics(t, config, list(data.get("topics") or []), reschedule)
    node = await bookings.desk(uow, config)
    now = rt.clock.now()
    enterprise_id = data.get("enterprise_id")
    if step == "day":
        days = await bookings.free_days(uow, config, node.id, now, enterprise_id)
        return views.ask_day(t, config, days, reschedule)
    if step == "slot":
        offered = data.get("offered")
        if offered:
            slots = [s for s in await bookings.bookable(uow, config, node.id, now,
                                                        enterprise_id) if s.id in offered]
        else:
            slots = await bookings.free_on(uow, config, node.id, now,
                                           date.fromisoformat(data["day"]), enterprise_id)
        return views.ask_slot(t, config, slots, offered=bool(offered), day=data.get("day"),
                              reschedule=reschedule)
    # confirm
    slot = await uow.bookings.slot(int(data["slot_id"]))
    enterprise = await uow.enterprises.get(int(data["enterprise_id"]))
    return views.ask_confirm(t, config, slot, enterprise, data.get("topics") or [], reschedule)


async def _our_draft(uow: UnitOfWork, user_id: int) -> Draft | None:
    draft = await uow.drafts.any_of(user_id)
    return draft if draft is not None and draft.flow == FLOW else None


async def _save(rt: Runtime, uow: UnitOfWork, draft: Draft, step: str, **changes) -> None:
    data = {**draft.data, **changes}
    await uow.drafts.save(draft, step=step,
                          data={k: v for k, v in data.items() if v is not None},
                          now=rt.clock.now())


async def _on_button(rt: Runtime, uow: UnitOfWork, t: Translator, who: Who,
                     match: re.Match, pressed_id: int | None) -> Answer | None:
    word, first, second = match.groups()
    needs = 2 if word in ("pa", "pd") else 1 if word in _WITH_ID else 0
    if needs != (first is not None) + (second is not None):
        return None  # forged, or from another version
    user_id = who.user_id
    number = int(first) if first is not None else None
    if word == "new":
        view = await _begin(rt, uow, t, user_id)
        await uow.commit()
        return Answer(say=[view])
    if word == "my":
        return Answer(say=[await _my_view(rt, uow, t, user_id)])
    if word in ("b", "c", "cy", "r", "pa", "pd"):
        return await _booking_button(rt, uow, t, user_id, word, number,
                                     int(second) if second else None)
    draft = await _our_draft(uow, user_id)
    if draft is None:
        return None
    if word == "x":
        await uow.drafts.discard(user_id, FLOW)
        await uow.commit()
        return Answer(edit=views.cancelled(t))
    return await _step_button(rt, uow, t, draft, word, number, who.chat_id, pressed_id)


async def _step_button(rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                       word: str, number: int | None, chat_id: int,
                       pressed_id: int | None) -> Answer | None:
    """A button of the draft's current step; None when it does not belong to it."""
    step, data, config = draft.step, draft.data, rt.config
    if word == "back":
        previous = {"topics": "enterprise", "day": "topics", "slot": "day",
                    "confirm": "slot"}.get(step)
        if previous is None or (previous in ("enterprise", "topics") and data.get("reschedule")):
            return None
        if previous == "enterprise" and len(await uow.enterprises.of_user(draft.user_id)) < 2:
            return None
        await _save(rt, uow, draft, previous, offered=None)
    elif word == "e" and step == "enterprise":
        if number not in {e.id for e in await uow.enterprises.of_user(draft.user_id)}:
            return None
        nothing = await _nothing_free(rt, uow, t, draft, number)
        if nothing is not None:
            return nothing
        await _save(rt, uow, draft, "topics", enterprise_id=number)
    elif word == "t" and step == "topics":
        if not 0 <= number < len(config.checkup_topics):
            return None
        code = config.checkup_topics[number].code
        chosen = list(data.get("topics") or [])
        chosen = [c for c in chosen if c != code] if code in chosen else [*chosen, code]
        await _save(rt, uow, draft, "topics", topics=chosen)
    elif word == "td" and step == "topics":
        if not data.get("topics"):
            return Answer(alert=views.choose_a_topic(t))
        nothing = None if data.get("reschedule") else await _nothing_free(
            rt, uow, t, draft, int(data["enterprise_id"]))  # taken while choosing topics
        if nothing is not None:
            return nothing
        await _save(rt, uow, draft, "day")
    elif word == "d" and step == "day":
        try:
            day = datetime.strptime(f"{number:08d}", "%Y%m%d").date()
        except ValueError:
            return None
        await _save(rt, uow, draft, "slot", day=day.isoformat(), offered=None)
    elif word == "s" and step == "slot":
        node = await bookings.desk(uow, config)
        slot = await uow.bookings.slot(number)
        if slot is None or node is None or slot.desk_id != node.id:
            return None
        await _save(rt, uow, draft, "confirm", slot_id=slot.id)
    elif word == "ok" and step == "confirm":
        return await _book(rt, uow, t, draft, chat_id, pressed_id)
    else:
        return None
    await uow.commit()
    return Answer(edit=await _view(rt, uow, t, draft))


async def _nothing_free(rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                        enterprise_id: int) -> Answer | None:
    """With no place the enterprise can book, the booking ends here (see _no_places)."""
    node = await bookings.desk(uow, rt.config)
    if node is None or await bookings.free_days(uow, rt.config, node.id, rt.clock.now(),
                                                enterprise_id):
        return None
    await uow.drafts.discard(draft.user_id, FLOW)
    view = await _no_places(rt, uow, t, node, enterprise_id, draft.user_id)
    await uow.commit()
    return Answer(edit=view)


async def _book(rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft, chat_id: int,
                pressed_id: int | None) -> Answer:
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
            await _save(rt, uow, draft, "slot", offered=offered or None,
                  day=data.get("day"))
            await uow.commit()
            note = (await _held_text(uow, t, refused) if refused.problem is Problem.HELD
                    else views.taken_text(t, refused.problem))
            return Answer(edit=await _view(rt, uow, t, draft, note))
        await uow.drafts.discard(user_id, FLOW)
        await uow.commit()
        return Answer(edit=View(views.refusal_text(t, rt.config, refused, None)))
    await uow.drafts.discard(user_id, FLOW)
    notifier = Notifier(rt, uow)
    ticket = change.ticket
    when = slot_label(rt.config, change.slot.starts_at, change.slot.ends_at)
    if change.old_slot is None:
        await notifier.post_card(ticket)
    else:
        await notifier.refresh_card(ticket)
        old = slot_label(rt.config, change.old_slot.starts_at, change.old_slot.ends_at)
        await _to_desk(rt, uow, ticket,
                       lambda gt: views.moved_for_desk(gt, ticket.number, old, when))
    confirmation = views.booked(t, rt.config, ticket.number, when,
                                moved=change.old_slot is not None)
    # The number is known only here: the confirmation must reach the enterprise even if the
    # process dies right after the commit. The summary pressed becomes the confirmation; one
    # too old for Telegram to show the bot gets it anew.
    kept = await keep(rt, uow, chat_id, confirmation, ticket=ticket, edit_message_id=pressed_id)
    await uow.commit()
    bind_log_context(ticket=ticket.number)
    log.info("check-up booking %s %s (ticket %s)", change.booking.id,
             "moved" if change.old_slot else "made", ticket.number)
    return Answer(edit=kept)


async def _held_text(uow: UnitOfWork, t: Translator, refused: BookingRefused) -> str:
    held = refused.booking
    enterprise = await uow.enterprises.get(held.enterprise_id) if held else None
    ticket = await uow.tickets.get(held.ticket_id) if held else None
    return views.held_text(t, enterprise.name if enterprise else None,
                           ticket.number if ticket else None)


async def _to_desk(rt: Runtime, uow: UnitOfWork, ticket: Ticket,
                   render: Callable[[Translator], str]) -> None:
    """A line in the desk group about the ticket, in the group's language."""
    if ticket.group_chat_id is None:
        return
    group = await uow.groups.get(ticket.group_chat_id)
    gt = rt.translator(group.language if group else rt.config.default_language)
    await Notifier(rt, uow).to_group(ticket, render(gt))


# -- my bookings -------------------------------------------------------------------------------

async def _my_view(rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int) -> View:
    enterprises = await uow.enterprises.of_user(user_id)
    rows = await uow.bookings.of_enterprises([e.id for e in enterprises], limit=MY_LIMIT)
    return views.my_bookings(t, rt.config, rows, {e.id: e.name for e in enterprises})


async def _booking_button(rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int,
                          word: str, booking_id: int, slot_id: int | None) -> Answer:
    try:
        if word in ("pa", "pd"):
            return await _answer_proposal(rt, uow, t, user_id, booking_id, slot_id,
                                          accept=word == "pa")
        booking, ticket, slot = await bookings.owned(uow, booking_id, user_id)
        if word == "b":
            enterprise = await uow.enterprises.get(booking.enterprise_id)
            return Answer(edit=views.booking(t, rt.config, booking, ticket, slot, enterprise))
        if booking.status not in ("booked", "confirmed"):
            raise BookingRefused(Problem.NOT_ACTIVE, booking=booking)
        if not bookings.may_change(rt.config, slot, rt.clock.now()):
            raise BookingRefused(Problem.TOO_LATE, booking=booking, slot=slot)
        when = slot_label(rt.config, slot.starts_at, slot.ends_at)
        if word == "c":
            return Answer(edit=views.cancel_question(t, booking.id, when))
        if word == "r":
            view = await _begin(rt, uow, t, user_id, reschedule=booking)
            await uow.commit()
            return Answer(edit=view)
        # "cy"
        change = await bookings.cancel(uow, rt.clock, rt.config, booking.id, user_id,
                                       views.checkup_cancelled_event(t))
        await Notifier(rt, uow).refresh_card(change.ticket)
        await _to_desk(rt, uow, change.ticket,
                       lambda gt: views.cancelled_for_desk(gt, change.ticket.number, when))
        await uow.commit()
        bind_log_context(ticket=change.ticket.number)
        log.info("check-up booking %s cancelled (ticket %s)", booking.id, change.ticket.number)
        return Answer(edit=views.booking_cancelled(t, when))
    except BookingRefused as refused:
        ticket = await uow.tickets.get(refused.booking.ticket_id) if refused.booking else None
        return Answer(alert=views.plain(views.refusal_text(t, rt.config, refused, ticket)))


async def _answer_proposal(rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int,
                           booking_id: int, slot_id: int | None, *, accept: bool) -> Answer:
    if slot_id is None:
        raise BookingRefused(Problem.NOT_FOUND)
    change = await bookings.answer_proposal(uow, rt.clock, rt.config, booking_id, user_id,
                                            slot_id, accept=accept)
    ticket = change.ticket
    when = slot_label(rt.config, change.slot.starts_at, change.slot.ends_at)
    await Notifier(rt, uow).refresh_card(ticket)
    await _to_desk(rt, uow, ticket,
                   lambda gt: views.proposal_answered_for_desk(gt, ticket.number, when, accept))
    await uow.commit()
    return Answer(edit=views.proposal_answered(t, when, accept))
