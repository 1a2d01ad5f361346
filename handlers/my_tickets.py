"""My tickets' door: /mytickets, the buttons, and the next message of its two drafts, handed
to bot.actions.my_tickets (the words: bot.views.my_tickets).

Callback data: my:list (from the main menu: a new message), my:page:<n> (edits in place),
my:t:<id>, my:add:<id>, my:wd:<id>, my:cancel.

The conversation router (handlers/router.py) hands ``draft_message`` the person's messages,
replies included, while one of the drafts ("addinfo", "withdraw") is their conversation.
"""

from __future__ import annotations

import re

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, filters

from bot.actions import my_tickets as actions
from bot.context import Context
from bot.views.my_tickets import PREFIX
from handlers.common import command_of, who
from handlers.relay import said_of
from handlers.reply import show

__all__ = ["draft_message", "my_callback", "mytickets_command", "register"]

_PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
_DATA = re.compile(r"my:(?:(list|cancel)|(page|t|add|wd):(\d{1,12}))")


def register(app: Application) -> None:
    """In group 0; the drafts' messages come through the router (draft_message)."""
    app.add_handler(CommandHandler("mytickets", mytickets_command, filters=_PRIVATE))
    app.add_handler(CallbackQueryHandler(my_callback, pattern=f"^{PREFIX}"))


async def mytickets_command(update: Update, context: Context) -> None:
    await show(update, context, await actions.listing(context.runtime, who(update)))


async def my_callback(update: Update, context: Context) -> None:
    match = _DATA.fullmatch(update.callback_query.data or "")
    button, number = None, 0
    if match is not None:
        word, action, raw = match.groups()
        button, number = (word, 0) if word else (action, int(raw))
    await show(update, context,
               await actions.press(context.runtime, who(update), button, number))


async def draft_message(update: Update, context: Context) -> bool:
    """The router's taker while one of the drafts is the person's conversation."""
    message = update.effective_message
    if update.effective_user is None or message.from_user is None:
        return False
    command = command_of(message)
    if command not in (None, "cancel"):
        # Other commands (/start, /help …) keep their meaning; the draft still waits for
        # its answer afterwards.
        return False
    answer = await actions.draft_message(context.runtime, who(update),
                                         said_of(message, context.bot.id),
                                         cancel=command == "cancel")
    if not answer.handled:
        return False
    await show(update, context, answer)
    return True
