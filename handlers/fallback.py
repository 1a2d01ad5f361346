"""What the bot says to input no handler wanted: never silence in private, never noise in groups."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot.context import runtime
from handlers import freetext, keyboards
from handlers.common import language_of

log = logging.getLogger(__name__)


async def unknown_private_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    # Words a resident typed are never just "not understood": they are offered to be
    # reported or passed on to the staff of their tickets.
    # So are the photos, videos, voice messages and places with which a report often begins.
    if await freetext.take_text(update, context) or await freetext.take_media(update, context):
        return
    rt = runtime(context)
    t = await language_of(rt, update)
    if update.effective_message.text is None:
        # A sticker, a file, a contact…: what the bot can take instead, and the way on.
        text = t("Thanks! I cannot do anything with this kind of message. To report a "
                 "problem, describe it in words, or send a photo, a voice message or the "
                 "location; or choose from the menu below.")
    else:
        text = t("I did not understand that. Please choose from the menu below.")
    await update.effective_message.reply_html(text, reply_markup=keyboards.main_menu(t))


async def edited_private_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    t = await language_of(rt, update)
    await update.effective_message.reply_html(
        t("I noticed you edited a message. Edits are not picked up; please send the "
          "correction as a new message."))


async def unknown_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Old keyboards, buttons from a removed feature, or forged callback data."""
    rt = runtime(context)
    t = await language_of(rt, update)
    await update.callback_query.answer(t("This button is no longer valid."), show_alert=True)
