"""The follow-up survey's door in a resident's private chat: its buttons and the comment
(bot.actions.survey; the question in words: bot.views.survey).

Callback data: sv:<survey id>:y|n (solved), sv:<id>:s<1-5> (score), sv:<id>:b (back),
sv:<id>:c (comment).
"""

from __future__ import annotations

import re

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler

from bot.actions import survey as actions
from bot.context import Context
from bot.views.survey import PREFIX
from handlers.common import who
from handlers.reply import show

COMMENT_FLOW = actions.COMMENT_FLOW
_DATA = re.compile(r"sv:(\d{1,12}):(y|n|b|c|s[1-5])")

__all__ = ["COMMENT_FLOW", "register", "survey_callback"]


def register(app: Application) -> None:
    app.add_handler(CallbackQueryHandler(survey_callback, pattern=f"^{PREFIX}"))


async def survey_callback(update: Update, context: Context) -> None:
    match = _DATA.fullmatch(update.callback_query.data or "")
    survey_id, choice = (int(match[1]), match[2]) if match else (None, None)
    await show(update, context,
               await actions.press(context.runtime, who(update), survey_id, choice))


