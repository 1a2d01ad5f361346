"""/slots in the desk's group (the use case is bot.actions.slots; its Close buttons come
through handlers.booking_desk, which checks that the one who pressed is a member)."""

from __future__ import annotations

from telegram import Update

from bot.actions import slots as actions
from bot.context import Context
from handlers.common import is_group, who
from handlers.reply import send


async def slots_command(update: Update, context: Context) -> None:
    message = update.effective_message
    view = await actions.command(context.runtime, who(update), list(context.args or []),
                                 as_chat=message.sender_chat is not None)
    # In a group the answer quotes the command (in its forum topic, if it has one).
    group = is_group(update)
    await send(context, update.effective_chat.id, view,
               reply_to=message.message_id if group else None,
               thread=message.message_thread_id if group and message.is_topic_message
               else None)
