"""The lawyer desk acting on check-up cards: Confirm, Assign lawyer (the
member who presses becomes the lawyer), Propose another time (a picker of free slots; the
enterprise accepts or declines), and once the slot is over Done (a short report as a reply,
optionally with a document) or No-show. The rules are in bot.services.bookings.

Callback data: bk:<cf|as|pp|dn|ns>:<ticket> on cards, bk:ps:<ticket>:<slot> and bk:px:<ticket>
in the picker, bk:<sc|sy|sk>:<slot> for closing slots (handlers.slots).

Every press is checked before anything changes: well-formed data, a ticket handled in this
very group, and a member of the group (asked of Telegram before any unit of work opens).
The report is asked with a ForceReply prompt; who was asked and which prompt it was are kept
in the ticket's details, so a restart between the press and the reply loses nothing and
someone else's reply is not taken. Telegram is never called inside a unit of work.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Awaitable, Callable

from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ContextTypes,
)
from telegram.helpers import mention_html

from bot.actions.notifier import Notifier, bring_copy_up_to_date
from bot.context import runtime
from bot.i18n import Translator
from bot.logs import bind_log_context
from bot.runtime import Runtime
from bot.services import bookings
from bot.services.bookings import BookingRefused, Change, Problem
from bot.services.text import user_html
from bot.views.cards import BOOKING_PREFIX, role_name, slot_label
from handlers import slots as slot_handlers
from handlers.common import is_group, translator_for
from handlers.membership_check import Membership, membership
from handlers.tickets_group import offers_button, say, short, thread_of, worker_name
from storage.models import CheckupSlot, Ticket
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# After tickets_group's prompts (-15), before the relay of replies (-10): a reply to our
# prompt is the report, not a message for the enterprise.
REPORT_PROMPT = "bk_report_prompt"
CARD_ACTIONS = ("cf", "as", "pp", "dn", "ns", "px")
# The buttons of the card itself (the others are on pickers): a press on one of them may be
# on a second copy of the card, which is then brought up to date.
ON_CARD = ("cf", "as", "pp", "dn", "ns")
PICKER_LIMIT = 10
# Enterprise buttons under a proposal (handled in handlers.booking).
ACCEPT, DECLINE = "ck:pa", "ck:pd"

_DATA = re.compile(r"bk:([a-z]{2}):(\d{1,18})(?::(\d{1,18}))?", re.ASCII)

Step = Callable[[], Awaitable[object]]


def refusal_text(t: Translator, rt: Runtime, refused: BookingRefused) -> str:
    """Plain text (for alerts) saying why the desk's press changed nothing."""
    problem, booking, slot = refused.problem, refused.booking, refused.slot
    if problem is Problem.ALREADY and booking is not None and booking.status == "confirmed":
        return t("This check-up is already confirmed.")
    if problem is Problem.ALREADY:
        return t("You are already the lawyer of this check-up.")
    if problem is Problem.NOT_ACTIVE:
        return t("This booking is no longer active.")
    if problem is Problem.NOT_STARTED and slot is not None:
        return t("The check-up starts at {time}; mark it after it has begun.",
                 time=slot_label(rt.config, slot.starts_at, None))
    if problem is Problem.NOT_LAWYER and booking is not None:
        return t("Only {name}, the lawyer of this check-up, can mark it. Press Assign lawyer "
                 "to take it over.", name=booking.lawyer_name or "?")
    if problem is Problem.FULL:
        return t("That slot has no free place any more. Choose another.")
    if problem is Problem.TOO_SOON:
        return t("That slot has already begun. Choose another.")
    if problem is Problem.SAME_SLOT:
        return t("That is the booking's own time. Choose another.")
    if problem is Problem.HELD:
        return t("The enterprise already has a place at that time. Choose another.")
    return t("This button is no longer valid.")


async def desk_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    query = update.callback_query
    match = _DATA.fullmatch(query.data or "")
    if not (is_group(update) and query.message is not None and update.effective_user):
        match = None
    # Asked before the unit of work opens: never wait for Telegram holding the write lock.
    member = (await membership(context, update.effective_chat.id, update.effective_user.id)
              if match is not None else None)
    after: list[Step] = []
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        if match is None:
            after.append(lambda: query.answer(t("This button is no longer valid."),
                                              show_alert=True))
        elif member is not Membership.MEMBER:
            text = (t("I could not check that you are a member of this group. Please try again "
                      "in a moment.") if member is Membership.UNKNOWN
                    else t("Only members of this group can act on its tickets."))
            after.append(lambda: query.answer(short(text), show_alert=True))
        else:
            action, first, second = match.group(1), int(match.group(2)), match.group(3)
            if action in slot_handlers.SLOT_ACTIONS:
                after = await slot_handlers.slot_button(rt, uow, t, update, action, first)
            else:
                after = await _card_action(rt, uow, t, update, context, action, first,
                                           int(second) if second else None)
    for step in after:
        await step()
    if match is not None and match.group(1) in ON_CARD and member is Membership.MEMBER:
        if offers_button(query.message, query.data):
            await bring_copy_up_to_date(rt, query.message.chat.id, query.message.message_id,
                                        int(match.group(2)))


async def _card_action(rt: Runtime, uow: UnitOfWork, t: Translator, update: Update,
                       context: ContextTypes.DEFAULT_TYPE, action: str, ticket_id: int,
                       slot_id: int | None) -> list[Step]:
    query = update.callback_query
    chat_id = update.effective_chat.id
    user_id = update.effective_user.id
    name = worker_name(update)
    ticket = await uow.tickets.get(ticket_id)

    def alert(text: str) -> list[Step]:
        return [lambda: query.answer(short(text), show_alert=True)]

    valid = (action in CARD_ACTIONS and slot_id is None) or (action == "ps" and slot_id)
    if not valid or ticket is None or ticket.kind != "checkup":
        return alert(t("This button is no longer valid."))
    if ticket.group_chat_id != chat_id:
        return alert(t("No. {number} is handled in another group now.", number=ticket.number))
    thread = thread_of(query.message, ticket.topic_id)
    reply_to = query.message.message_id
    clock = rt.clock
    try:
        if action == "cf":
            change = await bookings.confirm(uow, clock, ticket.id, user_id, name)
            await _announce(rt, uow, change, lambda t: t(
                "Your check-up on {time} is confirmed by the desk.",
                time=slot_label(rt.config, change.slot.starts_at, change.slot.ends_at)))
            note = t("✅ {name} confirmed the check-up of No. {number}.",
                     name=user_html(name), number=ticket.number)
        elif action == "as":
            change = await bookings.assign(uow, clock, ticket.id, user_id, name)
            desk = await uow.nodes.get(change.ticket.node_id)
            await _announce(rt, uow, change, lambda t: t(
                "{role} {name} will be the lawyer of your check-up on {time}.",
                role=html.escape(role_name(t, desk)), name=user_html(name),
                time=slot_label(rt.config, change.slot.starts_at, change.slot.ends_at)))
            note = t("🧑‍⚖️ {name} is the lawyer of No. {number}.", name=user_html(name),
                     number=ticket.number)
        elif action == "pp":
            return await _picker(rt, uow, t, query, ticket, thread, context)
        elif action == "px":
            return [lambda: query.answer(),
                    lambda: _edit(query, t("Nothing was proposed."), None)]
        elif action == "ps":
            change = await bookings.propose(uow, clock, ticket.id, user_id, name, slot_id)
            proposed: CheckupSlot = change.extra["proposed"]
            await _propose_to_enterprise(rt, uow, change, proposed)
            await Notifier(rt, uow).refresh_card(change.ticket)
            await uow.commit()
            text = t("🕘 {name} proposed {time} for No. {number}; the enterprise is asked to "
                     "accept or decline.", name=user_html(name), number=ticket.number,
                     time=slot_label(rt.config, proposed.starts_at, proposed.ends_at))
            return [lambda: query.answer(), lambda: _edit(query, text, None)]
        elif action == "dn":
            refused = await bookings.marking_refusal(uow, clock, ticket.id, user_id)
            if refused is not None:
                raise refused
            return [lambda: query.answer(),
                    lambda: _ask_report(context, update, ticket, reply_to, thread)]
        else:  # "ns"
            change = await bookings.no_show(uow, clock, ticket.id, user_id, name)
            await _announce(rt, uow, change, lambda t: t(
                "The desk recorded that nobody came to your check-up on {time}. To book "
                "another, send /checkup.", time=slot_label(rt.config, change.slot.starts_at,
                                                           change.slot.ends_at)))
            note = t("🚫 {name} marked No. {number} as a no-show; it is closed.",
                     name=user_html(name), number=ticket.number)
    except BookingRefused as refused:
        return alert(refusal_text(t, rt, refused))
    await Notifier(rt, uow).refresh_card(change.ticket)
    await uow.commit()
    bind_log_context(ticket=ticket.number)
    log.info("check-up ticket %s: %s", ticket.number, action)
    return [lambda: query.answer(),
            lambda: say(context, chat_id, note, reply_to=reply_to, thread=thread)]


async def _edit(query, text: str, markup: InlineKeyboardMarkup | None) -> None:
    try:
        await query.edit_message_text(text, parse_mode="HTML", reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in exc.message:
            raise


async def _announce(rt: Runtime, uow: UnitOfWork, change: Change,
                    render: Callable[[Translator], str]) -> None:
    """Tell the enterprise (the contact who booked) about a change, in their language; the
    message names the ticket, so a reply to it reaches the desk."""
    await Notifier(rt, uow).tell_residents_with(change.ticket, render)


async def _picker(rt: Runtime, uow: UnitOfWork, t: Translator, query, ticket: Ticket,
                  thread: int | None, context: ContextTypes.DEFAULT_TYPE) -> list[Step]:
    _, current, free = await bookings.proposable(uow, rt.config, ticket.id, rt.clock.now())
    chat_id = query.message.chat.id
    if not free:
        text = t("There is no other free slot to propose. Add slots with /slots add.")
        return [lambda: query.answer(short(text), show_alert=True)]
    rows = [[InlineKeyboardButton(slot_label(rt.config, s.starts_at, s.ends_at),
                                  callback_data=f"{BOOKING_PREFIX}ps:{ticket.id}:{s.id}")]
            for s in free[:PICKER_LIMIT]]
    rows.append([InlineKeyboardButton(t("Cancel"), callback_data=f"{BOOKING_PREFIX}px:"
                                                                 f"{ticket.id}")])
    text = t("Which time do you propose for No. {number} (now {time})?",
             number=ticket.number, time=slot_label(rt.config, current.starts_at,
                                                   current.ends_at))
    return [lambda: query.answer(),
            lambda: say(context, chat_id, text, reply_to=query.message.message_id,
                        thread=thread, markup=InlineKeyboardMarkup(rows))]


async def _propose_to_enterprise(rt: Runtime, uow: UnitOfWork, change: Change,
                                 proposed: CheckupSlot) -> None:
    notifier = Notifier(rt, uow)
    booking, ticket = change.booking, change.ticket
    for user_id in await uow.tickets.residents(ticket):
        t = rt.translator(await notifier.resident_language(user_id))
        number = t("No. {number}", number=ticket.number)
        text = f"<b>{number}</b>\n" + t(
            "The desk proposes to move your check-up from {old} to {new}. Do you accept?",
            old=slot_label(rt.config, change.slot.starts_at, change.slot.ends_at),
            new=slot_label(rt.config, proposed.starts_at, proposed.ends_at))
        markup = {"inline_keyboard": [[
            {"text": t("✅ Accept"), "callback_data": f"{ACCEPT}:{booking.id}:{proposed.id}"},
            {"text": t("Keep my time"), "callback_data": f"{DECLINE}:{booking.id}:"
                                                          f"{proposed.id}"}]]}
        notifier.say(user_id, text, reply_markup=markup, ticket=ticket, purpose="relay")


# -- the report after the check-up -------------------------------------------------------------

def _report_question(t: Translator, ticket: Ticket) -> str:
    return t("Reply to this message with a short report for the enterprise on the check-up "
             "of No. {number} ({min} to {max} characters). To attach a document, send it "
             "with the report as its caption. Send /cancel to stop.", number=ticket.number,
             min=bookings.REPORT_MIN_CHARS, max=bookings.REPORT_MAX_CHARS)


async def _ask_report(context: ContextTypes.DEFAULT_TYPE, update: Update, ticket: Ticket,
                      reply_to: int | None, thread: int | None, *, problem: str = "") -> None:
    """Send the prompt, then remember it (the same order as tickets_group.ask, for the same
    reason: its id is known only once sent, and Telegram is never waited for inside a
    transaction)."""
    rt = runtime(context)
    user = update.effective_user
    chat_id = update.effective_chat.id
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
    text = mention_html(user.id, worker_name(update)) + "\n" + problem + _report_question(
        t, ticket)
    sent = await say(context, chat_id, text, reply_to=reply_to, thread=thread,
                     markup=ForceReply(selective=True,
                                       input_field_placeholder=t("Check-up report")[:64]))
    async with rt.uow() as uow:
        current = await uow.tickets.get(ticket.id)
        current.details = {**(current.details or {}), "report_prompt": {
            "user_id": user.id, "message_id": sent.message_id}}
        await uow.tickets.remember_message(chat_id, sent.message_id, ticket.id, REPORT_PROMPT)
        await uow.commit()


async def report_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A reply in a group: if it answers our report prompt, take it and stop there."""
    message = update.effective_message
    user = update.effective_user
    replied = message.reply_to_message if message else None
    if replied is None or user is None:
        return
    rt = runtime(context)
    chat_id = update.effective_chat.id
    again = None
    async with rt.uow() as uow:
        known = await uow.tickets.message(chat_id, replied.message_id)
        if known is None or known.purpose != REPORT_PROMPT:
            return
        t = await translator_for(rt, uow, update)
        ticket = await uow.tickets.get(known.ticket_id)
        thread = thread_of(message, ticket.topic_id if ticket else None)
        text, again = await _take_report(rt, uow, t, update, ticket, replied.message_id)
    if text:
        await say(context, chat_id, text, reply_to=message.message_id, thread=thread)
    if again is not None:
        await _ask_report(context, update, ticket, message.message_id, thread, problem=again)
    raise ApplicationHandlerStop


async def _take_report(rt: Runtime, uow: UnitOfWork, t: Translator, update: Update,
                       ticket: Ticket | None, prompt_id: int) -> tuple[str, str | None]:
    """What to say (HTML) and, for a report that does not fit, the problem to ask again with."""
    message = update.effective_message
    user = update.effective_user
    prompt = ((ticket.details or {}).get("report_prompt") or {}) if ticket else {}
    if (ticket is None or prompt.get("user_id") != user.id
            or prompt.get("message_id") != prompt_id):
        return t("Only the member who pressed Done can answer this question, and only its "
                 "latest version. Press Done on the card again if needed."), None
    text = (message.text or message.caption or "").strip()
    if message.text and text.split("@", 1)[0].split(" ", 1)[0] == "/cancel":
        await _forget_prompt(uow, ticket)
        await uow.commit()
        return html.escape(t("Cancelled. No. {number} stays as it is.",
                             number=ticket.number)), None
    document = message.document.file_id if message.document else None
    if not bookings.REPORT_MIN_CHARS <= len(text) <= bookings.REPORT_MAX_CHARS:
        return "", t("Please reply with a text (or a document with a caption) of {min} to "
                     "{max} characters.", min=bookings.REPORT_MIN_CHARS,
                     max=bookings.REPORT_MAX_CHARS) + "\n"
    name = worker_name(update)
    try:
        change = await bookings.done(uow, rt.clock, rt.config, ticket.id, user.id, name, text,
                                     document)
    except BookingRefused as refused:
        await _forget_prompt(uow, ticket)
        await uow.commit()
        return html.escape(refusal_text(t, rt, refused)), None
    change.ticket.details = {k: v for k, v in change.ticket.details.items()
                             if k != "report_prompt"}
    await _deliver_report(rt, uow, change, text, document)
    await Notifier(rt, uow).refresh_card(change.ticket)
    await uow.commit()
    bind_log_context(ticket=ticket.number)
    log.info("check-up ticket %s done", ticket.number)
    return t("📄 The check-up of No. {number} is done; the enterprise has the report and "
             "will be asked for its opinion.", number=ticket.number), None


async def _forget_prompt(uow: UnitOfWork, ticket: Ticket) -> None:
    ticket.details = {k: v for k, v in (ticket.details or {}).items() if k != "report_prompt"}


async def _deliver_report(rt: Runtime, uow: UnitOfWork, change: Change, report: str,
                          document: str | None) -> None:
    notifier = Notifier(rt, uow)
    desk = await uow.nodes.get(change.ticket.node_id)
    lawyer = change.booking.lawyer_name or ""
    await notifier.tell_residents_with(change.ticket, lambda t: t(
        "Your check-up is done. The report of {role} {name}:\n{report}",
        role=html.escape(role_name(t, desk)), name=user_html(lawyer),
        report=user_html(report)))
    if document is not None:
        for user_id in await uow.tickets.residents(change.ticket):
            uow.outbox.add(chat_id=user_id, method="sendDocument",
                           params={"chat_id": user_id, "document": document},
                           now=rt.clock.now(), ticket_id=change.ticket.id, purpose="relay")


def register(app: Application) -> None:
    app.add_handler(CallbackQueryHandler(desk_button, pattern=f"^{BOOKING_PREFIX}"))
