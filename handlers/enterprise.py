"""Enterprise registration in Telegram (the use cases are in bot.actions.enterprise):
/enterprise and the main menu's entry show the person's enterprises, or offer to register
one or to join one with an invitation code; the two forms ask one question at a time;
contacts can leave.

The form's messages come through the conversation router (handlers/router.py reads them
with ``form_answer``); /cancel ends the form, other commands keep their meaning. Callback data
is described in bot.views.enterprise.
"""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    filters,
)

from bot.actions import enterprise as actions
from bot.context import Context
from bot.services.enterprises import Answer as FormAnswer
from bot.views.enterprise import PREFIX
from handlers.common import who
from handlers.reply import show

PRIVATE_MESSAGES = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


def register(app: Application) -> None:
    """In group 0; the form's messages come through the conversation router."""
    app.add_handler(CommandHandler("enterprise", enterprise_command, filters=PRIVATE_MESSAGES))
    app.add_handler(CallbackQueryHandler(enterprise_callback, pattern=f"^{PREFIX}"))


async def enterprise_command(update: Update, context: Context) -> None:
    await show(update, context, await actions.entry(context.runtime, who(update)))
    raise ApplicationHandlerStop


async def enterprise_callback(update: Update, context: Context) -> None:
    await show(update, context, await actions.press(context.runtime, who(update),
                                                    update.callback_query.data or ""))
    raise ApplicationHandlerStop


def form_answer(message: Message) -> FormAnswer:
    """A message as the forms take it (the conversation router reads it so)."""
    if message.text is not None:
        return FormAnswer("text", text=message.text)
    if message.contact is not None:
        return FormAnswer("contact", contact_user_id=message.contact.user_id,
                          phone=message.contact.phone_number)
    return FormAnswer("other")
