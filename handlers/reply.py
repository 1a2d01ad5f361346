"""The one way the Telegram door shows an action's ``Answer``, after the action committed.

The pressed message is edited, then the messages are sent in order. Answering the press (its
alert or toast, or only stopping the button's spinner) and taking the pressed message's
buttons away change no message's text, so they are made beside that, not each a round trip to
Telegram before it; the update is over once they are done too. When the pressed message cannot
be edited, the answer still reaches the person: "not modified" (the same button pressed twice)
means the message already shows it and is left so; any other refusal (too old, deleted, not a
text message) sends the edit as a new message instead. Taking buttons away is a courtesy: if
it fails, it is let go.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import InputFile, Message, Update
from telegram.error import BadRequest, TelegramError

from bot.actions.updates import settle
from bot.context import Context
from bot.delivery.render import reply_markup
from bot.views import Answer, Attachment, Kept, View

log = logging.getLogger(__name__)


async def show(update: Update, context: Context, answer: Answer, *,
               reply_to: int | None = None) -> None:
    """``reply_to``: the messages sent answer that message (in a group, the one pressed or
    replied to)."""
    await settle(context.runtime)  # a delivery handled before says nothing twice
    query = update.callback_query
    beside: list[asyncio.Task] = []
    try:
        if query is not None:
            # Never raises for Telegram's refusals (bot.delivery.replies).
            beside.append(asyncio.create_task(query.answer(
                answer.alert or answer.toast, show_alert=answer.alert is not None)))
            if isinstance(answer.edit, Kept):
                await send_kept(context, answer.edit)
            elif answer.edit is not None:
                await _edit(update, context, answer.edit)
            elif answer.unbutton:
                beside.append(asyncio.create_task(_unbutton(update)))
        for item in answer.say:
            if isinstance(item, Kept):
                await send_kept(context, item)
            else:
                await send(context, update.effective_chat.id, item, reply_to=reply_to,
                           thread=answer.thread)
    finally:
        for task in beside:
            await task


async def _unbutton(update: Update) -> None:
    try:
        await update.callback_query.edit_message_reply_markup(reply_markup=None)
    except TelegramError as exc:
        log.debug("could not take the buttons away: %s", exc.message)


async def send(context: Context, chat_id: int, view: View, *,
               reply_to: int | None = None, thread: int | None = None) -> Message:
    """Send one view to ``chat_id`` now (in the forum topic ``thread``, if given); its
    attachments follow the text."""
    await settle(context.runtime)
    reply = {} if reply_to is None else {"reply_to_message_id": reply_to,
                                         "allow_sending_without_reply": True}
    sent = await context.bot.send_message(chat_id, view.text, parse_mode="HTML",
                                          reply_markup=reply_markup(view),
                                          message_thread_id=thread, **reply)
    for attachment in view.attachments:
        await _attach(context, chat_id, attachment, {**reply, "message_thread_id": thread})
    return sent


async def send_kept(context: Context, kept: Kept) -> None:
    """Send a kept message now, through the outbox sender, so Telegram's answer is recorded
    as for any outbox row (and the row is not sent again)."""
    await context.bot_data.outbox_sender().send_held(kept.row_id, kept.chat_id,
                                                     kept.not_before)


async def _edit(update: Update, context: Context, view: View) -> None:
    try:
        # An edited message keeps only inline buttons; what else it asks is for new ones.
        await update.callback_query.edit_message_text(
            view.text, parse_mode="HTML", reply_markup=reply_markup(view) if view.buttons else None)
    except BadRequest as exc:
        if "not modified" in exc.message.lower():
            return
        log.debug("could not edit the pressed message, sending anew: %s", exc.message)
        await send(context, update.effective_chat.id, view)


async def _attach(context: Context, chat_id: int, attachment: Attachment,
                  reply: dict[str, Any]) -> None:
    """An attachment answers what its text answers (``reply``)."""
    caption = attachment.caption or None
    if attachment.kind == "photo":
        # Content is uploaded under its name, when it has one.
        source = attachment.file_id or (
            InputFile(attachment.data, filename=attachment.filename) if attachment.filename
            else attachment.data)
        await context.bot.send_photo(chat_id, source, caption=caption, parse_mode="HTML",
                                     **reply)
    else:
        await context.bot.send_document(chat_id, attachment.file_id or attachment.data,
                                        caption=caption, parse_mode="HTML",
                                        filename=attachment.filename or None, **reply)
