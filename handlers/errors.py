"""The last resort: log with context, tell the person briefly, show no internals."""

from __future__ import annotations

import logging

from telegram import Chat, Update
from telegram.error import TelegramError

from bot.actions import DuplicateUpdate
from bot.actions.people import language
from bot.context import Context
from bot.views.menu import went_wrong
from handlers.common import who

log = logging.getLogger(__name__)


async def on_error(update: object, context: Context) -> None:
    error = context.error
    if isinstance(error, DuplicateUpdate):
        # Another worker handled this update first; its answer stands.
        log.info("update %s was handled elsewhere first", error.args[0])
        return
    if not isinstance(update, Update):
        log.error("error outside an update", exc_info=error)
        return
    # Ids and kinds only: message texts and names are personal data and stay out of the logs.
    chat = update.effective_chat
    log.error("error while handling update %s (%s in a %s chat)", update.update_id,
              _kind(update), chat.type if chat else "no", exc_info=error)
    if chat is None or chat.type == Chat.CHANNEL:
        return
    rt = context.runtime
    try:
        t = await language(rt, who(update))
    except Exception:  # the database may be what failed
        t = rt.translator(rt.config.default_language)
    text = went_wrong(t)
    try:
        # A press is answered once (bot.delivery.replies): when the handler answered it
        # already, or it is too old now, a private chat is told in a message instead.
        if update.callback_query is not None:
            if (not await update.callback_query.answer(text, show_alert=True)
                    and chat.type == Chat.PRIVATE):
                await chat.send_message(text)
        elif update.effective_message is not None:
            await update.effective_message.reply_text(text)
    except TelegramError:
        log.warning("could not tell the user about the error in update %s", update.update_id)


def _kind(update: Update) -> str:
    for kind in ("message", "edited_message", "callback_query", "my_chat_member",
                 "channel_post", "chat_member"):
        if getattr(update, kind) is not None:
            return kind
    return "other"
