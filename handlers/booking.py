"""An enterprise books a legal check-up in a private chat (the use cases are in
bot.actions.booking, the words and the "ck:" buttons in bot.views.booking).

/checkup starts a booking; "ck:" buttons answer its steps and act on the person's bookings;
while the person is booking, the router hands their private messages to ``draft_message``.
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

__all__ = ["FLOW", "checkup_callback", "checkup_command", "draft_message", "register"]

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


async def checkup_command(update: Update, context: Context) -> None:
    await show(update, context, await actions.begin(context.runtime, who(update)))


async def checkup_callback(update: Update, context: Context) -> None:
    message = update.callback_query.message
    pressed = message.message_id if message is not None and message.is_accessible else None
    await show(update, context, await actions.press(context.runtime, who(update),
                                                    update.callback_query.data or "", pressed))


async def draft_message(update: Update, context: Context) -> bool:
    """A private message while the person is booking: /cancel ends it; anything else (but a
    reply, which the relay takes, and other commands) gets the question again."""
    message = update.effective_message
    if update.effective_user is None or message is None or message.reply_to_message is not None:
        return False
    command = None
    if message.text and message.text.startswith("/"):
        command = message.text[1:].split(maxsplit=1)[0].split("@", 1)[0].lower() or None
        if command != "cancel":
            return False
    answer = await actions.draft_message(context.runtime, who(update),
                                         cancel=command == "cancel")
    if answer is None:
        return False
    await show(update, context, answer)
    return True


def register(app: Application) -> None:
    app.add_handler(CommandHandler("checkup", checkup_command, filters=PRIVATE))
    app.add_handler(CallbackQueryHandler(checkup_callback, pattern=f"^{PREFIX}"))
