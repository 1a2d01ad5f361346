"""/bind and /unbind: administrators attach a group to a grid, centre or desk (the Telegram
door of bot.actions.binding)."""

from __future__ import annotations

from telegram import Update

from bot.actions import binding
from bot.context import Context
from bot.views.binding import KEEP, MOVE_PREFIX
from handlers.common import is_group, who
from handlers.reply import show

# The buttons of the question before a move.
MOVE_PATTERN = f"^({MOVE_PREFIX}\\d+|{KEEP})$"


def answering(update: Update) -> int | None:
    """The command an answer replies to: in a group, so that it is clear whose it is."""
    return update.effective_message.message_id if is_group(update) else None


async def bind_command(update: Update, context: Context) -> None:
    code = context.args[0] if context.args else ""
    if is_group(update):
        await bind_in_group(update, context, code)
        return
    answer = await binding.bind_link(context.runtime, who(update), code, context.bot.username)
    await show(update, context, answer)


async def bind_in_group(update: Update, context: Context, code: str) -> None:
    """/bind CODE in a group, and /start bind_CODE there (the link from a private /bind)."""
    answer = await binding.bind(context.runtime, who(update), code)
    await show(update, context, answer, reply_to=answering(update))


async def bind_move_callback(update: Update, context: Context) -> None:
    answer = await binding.confirm_move(context.runtime, who(update), update.callback_query.data)
    await show(update, context, answer)


async def unbind_command(update: Update, context: Context) -> None:
    answer = await binding.unbind(context.runtime, who(update))
    await show(update, context, answer, reply_to=answering(update))
