"""What a resident sends outside any conversation, in Telegram: words, a photo, a video, a
voice message or a shared location, and the buttons of the offer the bot makes for it (use
cases in bot.actions.freetext)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler

from bot.actions import freetext as actions
from bot.context import Context
from bot.services import reporting
from bot.views.freetext import PREFIX
from handlers.common import command_of, who
from handlers.reply import show

# What a message outside any conversation may carry besides words: kept as the report's photos
# or spoken description (bot.services.reporting's kinds), by Telegram's file id.
_FILE_KINDS = (*reporting.MEDIA_KINDS, *reporting.SPOKEN_KINDS)


def register(app: Application) -> None:
    """In group 0, before the fallback for unknown buttons."""
    app.add_handler(CallbackQueryHandler(offer_callback, pattern=f"^{PREFIX}"))


async def take_text(update: Update, context: Context) -> bool:
    """For the fallback: answer a private text no conversation took. False: not a text
    this can take (a command other than /cancel, a sticker); the fallback answers as
    before."""
    message = update.effective_message
    command = command_of(message)
    if message.text is None or command not in (None, "cancel"):
        return False
    answer = await actions.take_text(context.runtime, who(update), message.text,
                                     cancel=command == "cancel")
    if answer.handled:
        await show(update, context, answer)
    return answer.handled


async def take_media(update: Update, context: Context) -> bool:
    """For the fallback: a photo, video, voice message, video note or location no conversation
    took, offered like words (`take_text`); an album's photos make one offer. False: nothing
    this can take (a sticker, a file)."""
    message = update.effective_message
    kind = next((k for k in _FILE_KINDS if getattr(message, k, None)), None)
    if kind is None and message.location is None:
        return False
    item = actions.Item(caption=message.caption or "", album=message.media_group_id)
    if kind is not None:
        media = getattr(message, kind)
        if kind == "photo":
            media = max(media, key=lambda size: size.width * size.height)
        item = actions.Item(kind, media.file_id, media.file_size, caption=item.caption,
                            album=item.album)
    else:
        item = actions.Item(location=(message.location.latitude, message.location.longitude),
                            caption=item.caption, album=item.album)
    await show(update, context, await actions.take_item(context.runtime, who(update), item))
    return True


async def offer_callback(update: Update, context: Context) -> None:
    user = update.effective_user
    sender = actions.Sender(user.id, user.full_name)
    await show(update, context, await actions.press(context.runtime, who(update), sender,
                                                    update.callback_query.data or ""))
