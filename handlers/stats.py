"""/stats [today|week|month]: the numbers of the group's subtree for the current period so
far, in the group (the Telegram door of bot.actions.stats; how a report reads is in
bot.views.stats)."""

from __future__ import annotations

from telegram import Update

from bot.actions.stats import show_stats
from bot.context import Context
from handlers.common import is_group, who
from handlers.reply import show


async def stats_command(update: Update, context: Context) -> None:
    argument = " ".join(context.args or ())
    answer = await show_stats(context.runtime, who(update), argument)
    # In a group the numbers answer the command, so that it is clear whose they are.
    reply_to = update.effective_message.message_id if is_group(update) else None
    await show(update, context, answer, reply_to=reply_to)
