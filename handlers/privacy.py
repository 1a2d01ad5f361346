"""/mydata and /deletemydata: the door of a resident's data rights (bot.actions.privacy; the
words: bot.views.privacy).

Callback data: dd:y:<unix time>:<mac> (erase), dd:n (keep).
"""

from __future__ import annotations

import logging

from telegram import InputFile, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, filters

from bot.actions import privacy as actions
from bot.context import Context
from bot.views.privacy import PREFIX
from handlers.common import who
from handlers.reply import show

log = logging.getLogger(__name__)

__all__ = ["deletemydata_command", "erase_callback", "mydata_command", "register"]

_PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


def register(app: Application) -> None:
    """Group 0, before the fallbacks."""
    app.add_handler(CommandHandler("mydata", mydata_command, filters=_PRIVATE))
    app.add_handler(CommandHandler("deletemydata", deletemydata_command, filters=_PRIVATE))
    app.add_handler(CallbackQueryHandler(erase_callback, pattern=f"^{PREFIX}"))


async def mydata_command(update: Update, context: Context) -> None:
    copy = await actions.my_data(context.runtime, who(update))
    await update.effective_message.reply_document(
        InputFile(copy.data, filename=copy.filename), caption=copy.caption, parse_mode="HTML")
    log.info("a resident was sent a copy of their data (%d bytes)", len(copy.data))


async def deletemydata_command(update: Update, context: Context) -> None:
    await show(update, context, await actions.offer_erasure(context.runtime, who(update)))


async def erase_callback(update: Update, context: Context) -> None:
    await show(update, context, await actions.erase_data(context.runtime, who(update),
                                                         update.callback_query.data or ""))
