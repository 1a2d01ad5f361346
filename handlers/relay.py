"""The relay's door: what workers say in a group about a ticket, and residents' private
replies about their tickets, handed to bot.actions.relay (who sees what, and how, is
explained there).

The router (handlers/router.py) hands ``from_group`` the groups' messages, and a resident's
reply goes through the conversations (bot.actions.conversations), which read it with
``said_of``: a message that is not about a ticket is left for the handlers after them, a
relayed one stops there. A worker's
message that could not be passed on gets a short reply in the group; one that was passed on
gets the 👌 reaction once the resident has it (the outbox sender puts it on).
"""

from __future__ import annotations

from telegram import Message, Update

from bot.actions import relay as actions
from bot.actions.relay import Said
from bot.context import Context
from bot.delivery.render import reply_markup
from bot.services.relay import TEXT, Content
from handlers.common import who

__all__ = ["content_of", "from_group", "said_of"]

# Checked in this order: an animation also carries a "document", a photo a list of sizes.
_MEDIA_KINDS = ("photo", "animation", "video", "document", "audio", "voice", "video_note",
                "sticker")


def content_of(message: Message) -> Content:
    if message.text is not None:
        return Content(TEXT, message.text)
    for kind in _MEDIA_KINDS:
        media = getattr(message, kind, None)
        if media:
            item = media[-1] if kind == "photo" else media
            return Content(kind, message.caption or "", item.file_id, item.file_size)
    return Content("other")


def said_of(message: Message, bot_id: int) -> Said:
    """The message as the relay takes it (``bot_id``: whether it answers the bot's own)."""
    user = message.from_user
    replied = message.reply_to_message
    return Said(user_id=user.id, name=user.full_name, content=content_of(message),
                chat_id=message.chat_id, message_id=message.message_id,
                reply_to=replied.message_id if replied else None,
                reply_to_bot=bool(replied and replied.from_user is not None
                                  and replied.from_user.id == bot_id),
                reply_to_text=(replied.text or replied.caption or "") if replied else "",
                topic=message.message_thread_id if message.is_topic_message else None)


# -- group → residents ----------------------------------------------------------------------------

async def from_group(update: Update, context: Context) -> bool:
    message = update.effective_message
    worker = message.from_user
    # Bots, anonymous admins and channels speak as a chat, not as a worker the resident could
    # be told about.
    if worker is None or worker.is_bot or message.sender_chat is not None:
        return False
    answer = await actions.from_group(context.runtime, who(update),
                                      said_of(message, context.bot.id))
    if not answer.handled:
        return False  # not about a ticket: other handlers may want it
    for view in answer.say:
        # In the group, as a reply to the worker's message (in its topic).
        await message.reply_html(view.text, reply_markup=reply_markup(view))
    return True

