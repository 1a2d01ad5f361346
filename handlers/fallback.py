"""What the bot says to input no handler wanted: never silence in private, never noise in groups."""

from __future__ import annotations

import logging

from telegram import Update

from bot.actions.people import answer_language
from bot.context import Context
from bot.views import Answer
from bot.views import menu as views
from handlers import freetext
from handlers.common import who
from handlers.reply import show

log = logging.getLogger(__name__)


async def unknown_private_message(update: Update, context: Context) -> None:
    # Words a resident typed are never just "not understood": they are offered to be
    # reported or passed on to the staff of their tickets.
    # So are the photos, videos, voice messages and places with which a report often begins.
    if await freetext.take_text(update, context) or await freetext.take_media(update, context):
        return
    t = await answer_language(context.runtime, who(update))
    text = update.effective_message.text is not None
    await show(update, context, Answer([views.not_understood(t, text=text)]))


async def edited_private_message(update: Update, context: Context) -> None:
    t = await answer_language(context.runtime, who(update))
    await show(update, context, Answer([views.edits_ignored(t)]))


async def unknown_callback(update: Update, context: Context) -> None:
    """Old keyboards, buttons from a removed feature, or forged callback data."""
    t = await answer_language(context.runtime, who(update))
    await show(update, context, Answer(alert=views.button_invalid(t)))
