"""An enterprise books a legal check-up in a private chat (the use cases are in
bot.actions.booking, the words and the "ck:" buttons in bot.views.booking).

/checkup starts a booking; "ck:" buttons answer its steps and act on the person's bookings;
while the person is booking, the router hands their private messages to its action (``take``).
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, filters

from bot.actions import booking as actions
from bot.actions.booking import FLOW
from bot.context import Context
from bot.views.booking import PREFIX
from handlers.common import who
from handlers.reply import show

__all__ = ["FLOW", "checkup_callback", "checkup_command", "register"]

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


async def checkup_command(update: Update, context: Context) -> None:
    await show(update, context, await actions.begin(context.runtime, who(update)))


async def checkup_callback(update: Update, context: Context) -> None:
    message = update.callback_query.message
    pressed = message.message_id if message is not None and message.is_accessible else None
    await show(update, context, await actions.press(context.runtime, who(update),
                                                    update.callback_query.data or "", pressed))


def register(app: Application) -> None:
    app.add_handler(CommandHandler("checkup", checkup_command, filters=PRIVATE))
    app.add_handler(CallbackQueryHandler(checkup_callback, pattern=f"^{PREFIX}"))
