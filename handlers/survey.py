"""The follow-up survey's door in a resident's private chat: its buttons and the comment
(bot.actions.survey; the question in words: bot.views.survey).

Callback data: sv:<survey id>:y|n (solved), sv:<id>:s<1-5> (score), sv:<id>:b (back),
sv:<id>:c (comment).
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler

from bot.actions import survey as actions
from bot.context import Context
from bot.views.survey import PREFIX
from handlers.common import who
from handlers.reply import show

COMMENT_FLOW = actions.COMMENT_FLOW

__all__ = ["COMMENT_FLOW", "register", "survey_callback"]


def register(app: Application) -> None:
    app.add_handler(CallbackQueryHandler(survey_callback, pattern=f"^{PREFIX}"))


async def survey_callback(update: Update, context: Context) -> None:
    await show(update, context, await actions.press_data(context.runtime, who(update),
                                                         update.callback_query.data or ""))


