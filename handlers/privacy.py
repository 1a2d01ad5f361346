"""/mydata and /deletemydata: a resident's copy of their data, and its erasure
after a confirmation. What is erased, and what becomes of running tickets, is decided in
bot.services.privacy; here is what the groups see of it (``announce``, used by the retention
sweep too) and the talk with the resident.

The confirmation button carries the moment it was offered and a MAC of it and the person's
id (keyed with the bot's token), so it needs no state: a forged button, someone else's, or
one older than CONFIRM_FOR gets a clear answer and nothing is erased.

Callback data: dd:y:<unix time>:<mac> (erase), dd:n (keep).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from datetime import timedelta

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from bot.actions.notifier import Notifier
from bot.context import runtime
from bot.i18n import N_, Translator
from bot.runtime import Runtime
from bot.services import privacy
from bot.services.privacy import ErasurePlan, TicketErasure, UserErasure
from bot.views.cards import slot_label
from handlers.common import translator_for
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

PREFIX = "dd:"
CONFIRM_FOR = timedelta(minutes=15)
MAC_LENGTH = 16
DELETE_BATCH = 100  # deleteMessages takes 1-100 ids
CAPTION_LIMIT = 1024

_PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
_DATA = re.compile(r"dd:(?:(n)|y:(\d{1,12}):([0-9a-f]{16}))")


def register(app: Application) -> None:
    """Group 0, before the fallbacks."""
    app.add_handler(CommandHandler("mydata", mydata_command, filters=_PRIVATE))
    app.add_handler(CommandHandler("deletemydata", deletemydata_command, filters=_PRIVATE))
    app.add_handler(CallbackQueryHandler(erase_callback, pattern=f"^{PREFIX}"))


# -- /mydata --------------------------------------------------------------------------------------

def _summary(t: Translator, data: dict) -> str:
    answered = sum(1 for a in data["survey_answers"] if a["status"] == "answered")
    return t("<b>Your data in Gridgate</b>\n"
             "Tickets you reported: {reported}\n"
             "Tickets you joined: {joined}\n"
             "Follow-up answers: {answers}\n"
             "Enterprises you act for: {enterprises}\n"
             "Check-up bookings you made: {bookings}\n"
             "Unfinished forms: {forms}\n\n"
             "The file holds everything the bot keeps about you. To have it erased, send "
             "/deletemydata.",
             reported=len(data["reported_tickets"]), joined=len(data["joined_tickets"]),
             answers=answered, enterprises=len(data["enterprises"]),
             bookings=len(data["checkup_bookings"]), forms=len(data["unfinished_forms"]))


async def mydata_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    user = update.effective_user
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        now = rt.clock.now()
        data = await privacy.collect(uow, rt.config, user.id, now, t.language)
        await uow.commit()  # remember the person, and that this update was handled
    document = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    day = now.astimezone(rt.config.timezone).strftime("%Y-%m-%d")
    await update.effective_message.reply_document(
        InputFile(document, filename=f"gridgate-my-data-{day}.json"),
        caption=_summary(t, data)[:CAPTION_LIMIT], parse_mode="HTML")
    log.info("a resident was sent a copy of their data (%d bytes)", len(document))


# -- /deletemydata --------------------------------------------------------------------------------

def _mac(rt: Runtime, user_id: int, issued: int) -> str:
    key = hashlib.sha256(b"gridgate /deletemydata\0" + rt.config.telegram.token.encode()).digest()
    return hmac.new(key, f"{user_id}:{issued}".encode(), hashlib.sha256).hexdigest()[:MAC_LENGTH]


def _plan_text(t: Translator, plan: ErasurePlan) -> str:
    lines = [t("<b>Erase your personal data?</b>"),
             t("This erases what Gridgate keeps about you: your settings, what you wrote in "
               "your reports, messages and follow-up comments, the places, phone numbers "
               "and files you gave, your unfinished forms and your enterprise contact "
               "details.")]
    if plan.to_withdraw:
        lines.append(t("• Your {count} open ticket(s) will be withdrawn; the staff handling "
                       "them are told.", count=plan.to_withdraw))
    if plan.to_cancel:
        lines.append(t("• Your {count} check-up booking(s) still to come will be cancelled, "
                       "and their places freed.", count=plan.to_cancel))
    if plan.to_close:
        lines.append(t("• Your {count} resolved ticket(s) waiting for your follow-up answer "
                       "will be closed.", count=plan.to_close))
    if plan.last_contact:
        lines.append(t("• {count} enterprise(s) will have no contact left; they can be "
                       "registered again.", count=plan.last_contact))
    lines.append(t("Your tickets stay only as anonymous figures for statistics (category, "
                   "place, dates, status, ratings). This cannot be undone; to keep a copy, "
                   "send /mydata first."))
    return "\n\n".join(lines)


async def deletemydata_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    user = update.effective_user
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        plan = await privacy.erasure_plan(uow, user.id)
        await uow.commit()
    issued = int(rt.clock.now().timestamp())
    markup = InlineKeyboardMarkup([
        [InlineKeyboardButton(t("🗑 Yes, erase my data"),
                              callback_data=f"{PREFIX}y:{issued}:{_mac(rt, user.id, issued)}")],
        [InlineKeyboardButton(t("Keep my data"), callback_data=f"{PREFIX}n")],
    ])
    await update.effective_message.reply_html(_plan_text(t, plan), reply_markup=markup)


_ENDED = ((privacy.WITHDRAWN, N_("{count} open ticket(s) were withdrawn.")),
          (privacy.CANCELLED, N_("{count} check-up booking(s) were cancelled.")),
          (privacy.CLOSED, N_("{count} resolved ticket(s) were closed.")))


def _done_text(t: Translator, result: UserErasure) -> str:
    lines = [t("Your personal data has been erased.")]
    anonymous = result.count(privacy.SCOPE_TICKET)
    if anonymous:
        lines.append(t("{count} ticket(s) you reported are anonymous figures now.",
                       count=anonymous))
    for ended, msgid in _ENDED:
        count = result.count(privacy.SCOPE_TICKET, ended)
        if count:
            lines.append(t(msgid, count=count))
    lines.append(t("If you write to the bot again, it starts afresh."))
    return "\n".join(lines)


async def erase_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    query = update.callback_query
    user = update.effective_user
    match = _DATA.fullmatch(query.data or "")
    chat = update.effective_chat
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
    if match is None or chat is None or chat.type != "private":
        await query.answer(t("This button is no longer valid."), show_alert=True)
        return
    keep, issued_text, mac = match.groups()
    if keep:
        await query.answer()
        await query.edit_message_text(t("Nothing was erased."))
        return
    issued = int(issued_text)
    if not hmac.compare_digest(mac, _mac(rt, user.id, issued)):
        await query.answer(t("This button is no longer valid."), show_alert=True)
        return
    age = rt.clock.now().timestamp() - issued
    if not 0 <= age <= CONFIRM_FOR.total_seconds():
        await query.answer(t("This confirmation has expired. Send /deletemydata again if you "
                             "still want your data erased."), show_alert=True)
        return
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)  # read before the language goes too
        result = await privacy.erase_user(uow, rt.clock, rt.config, user.id)
        for erasure in result.tickets:
            await announce(rt, uow, erasure)
        await uow.commit()
    log.info("a resident's personal data was erased: %d tickets anonymised, %d left",
             result.count(privacy.SCOPE_TICKET), result.count(privacy.SCOPE_CO_REPORTER))
    await query.answer()
    await query.edit_message_text(_done_text(t, result), parse_mode="HTML")


# -- what the groups see -------------------------------------------------------------------------

async def announce(rt: Runtime, uow: UnitOfWork, erasure: TicketErasure) -> None:
    """Through the outbox, in the erasure's transaction: how it ended the ticket (to its
    group and co-reporters), the card shown again without the data (here and in groups it
    was shown in before), and the bot's messages in groups that showed the data deleted.

    Telegram lets a bot delete its messages in a group only within 48 hours (unless it is an
    administrator there), so the retention sweep, which comes much later, edits the cards
    and leaves older messages alone; a failed deletion is only logged."""
    notifier = Notifier(rt, uow)
    ticket = erasure.ticket
    if erasure.scope == privacy.SCOPE_TICKET:
        await _tell_ending(rt, uow, notifier, erasure)
        await notifier.refresh_card(ticket)
        for chat_id, message_id in erasure.other_cards:
            card = await notifier.card(ticket, await _group_language(rt, uow, chat_id))
            card["reply_markup"] = {"inline_keyboard": []}
            uow.outbox.add(chat_id=chat_id, method="editMessageText",
                           params={"chat_id": chat_id, "message_id": message_id, **card},
                           now=rt.clock.now(), ticket_id=ticket.id, purpose="card_edit")
        for row in erasure.pending_cards:  # not sent yet: it goes out without the data
            language = await _group_language(rt, uow, row.chat_id)
            row.params = {**row.params, **await notifier.card(ticket, language)}
    if erasure.by == privacy.BY_RETENTION:
        return
    for chat_id, message_ids in erasure.group_messages.items():
        ids = sorted(set(message_ids))
        for start in range(0, len(ids), DELETE_BATCH):
            uow.outbox.add(chat_id=chat_id, method="deleteMessages",
                           params={"chat_id": chat_id,
                                   "message_ids": ids[start:start + DELETE_BATCH]},
                           now=rt.clock.now(), ticket_id=ticket.id)


async def _group_language(rt: Runtime, uow: UnitOfWork, chat_id: int) -> str:
    group = await uow.groups.get(chat_id)
    return group.language if group else rt.config.default_language


async def _tell_ending(rt: Runtime, uow: UnitOfWork, notifier: Notifier,
                       erasure: TicketErasure) -> None:
    ticket = erasure.ticket
    if erasure.ended is None:
        return
    if ticket.group_chat_id is not None:
        gt = rt.translator(await _group_language(rt, uow, ticket.group_chat_id))
        if erasure.ended == privacy.CANCELLED and erasure.booking is not None:
            slot = erasure.booking.slot
            text = gt("✖️ The check-up of No. {number} on {time} is cancelled: the contact "
                      "who booked it had their personal data erased. The place is free "
                      "again.", number=ticket.number,
                      time=slot_label(rt.config, slot.starts_at, slot.ends_at))
        elif erasure.ended == privacy.CLOSED:
            text = gt("<b>No. {number}</b> is closed: the resident had their personal data "
                      "erased.", number=ticket.number)
        else:
            text = gt("<b>No. {number}</b> was withdrawn: the resident had their personal "
                      "data erased.", number=ticket.number)
        await notifier.to_group(ticket, text)
    for user_id in erasure.residents:
        ct = rt.translator(await notifier.resident_language(user_id))
        if erasure.ended == privacy.CLOSED:
            text = ct("<b>No. {number}</b> is closed; its follow-up questions are withdrawn.",
                      number=ticket.number)
        else:
            text = ct("<b>No. {number}</b> was withdrawn by the resident who reported it; it "
                      "is closed now.", number=ticket.number)
        notifier.say(user_id, text)

