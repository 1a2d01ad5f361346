"""My tickets' door: /mytickets, the buttons, and the next message of its two drafts, handed
to bot.actions.my_tickets (the words: bot.views.my_tickets).

Callback data: my:list (from the main menu: a new message), my:page:<n> (edits in place),
my:t:<id>, my:add:<id>, my:wd:<id>, my:cancel.

The conversation router (handlers/router.py, bot.actions.conversations) hands the person's
messages, replies included, to bot.actions.my_tickets.take while one of the drafts
("addinfo", "withdraw") is their conversation.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, filters

from bot.actions import my_tickets as actions
from bot.context import Context
from bot.views.my_tickets import PREFIX
from handlers.common import who
from handlers.reply import show

__all__ = ["my_callback", "mytickets_command", "register"]

_PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


def register(app: Application) -> None:
    """In group 0; the drafts' messages come through the conversation router."""
    app.add_handler(CommandHandler("mytickets", mytickets_command, filters=_PRIVATE))
    app.add_handler(CallbackQueryHandler(my_callback, pattern=f"^{PREFIX}"))


async def mytickets_command(update: Update, context: Context) -> None:
    await show(update, context, await actions.listing(context.runtime, who(update)))


async def my_callback(update: Update, context: Context) -> None:
    await show(update, context, await actions.press_data(context.runtime, who(update),
                                                         update.callback_query.data or ""))


