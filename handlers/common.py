"""Small helpers every handler uses: language, group identity, safe replies."""

from __future__ import annotations

from telegram import Chat, Message, Update

from bot.actions.people import Who
from bot.i18n import Translator
from bot.runtime import Runtime
from bot.services import users
from bot.services.binding import GroupInfo
from storage.uow import UnitOfWork


async def translator_for(rt: Runtime, uow: UnitOfWork, update: Update) -> Translator:
    """Private chats answer in the user's language, groups in the group's, one for all members."""
    chat = update.effective_chat
    if chat is not None and chat.type != Chat.PRIVATE:
        return rt.translator(
            await users.group_language(uow, chat.id, rt.config.default_language))
    user = update.effective_user
    if user is None:
        return rt.translator(rt.config.default_language)
    return rt.translator(await users.private_language(
        uow, rt.clock, user_id=user.id, telegram_code=user.language_code,
        default=rt.config.default_language))


async def language_of(rt: Runtime, update: Update) -> Translator:
    """The translator for this update, from a unit of work of its own that is closed again
    before the handler talks to Telegram (on SQLite an open one blocks every other writer)."""
    async with rt.uow() as uow:
        return await translator_for(rt, uow, update)


def who(update: Update) -> Who:
    """Who acted in this update, as the actions take it."""
    chat, user = update.effective_chat, update.effective_user
    group = group_info(chat) if chat.type != Chat.PRIVATE else None
    return Who(user_id=user.id if user is not None else None, chat_id=chat.id,
               language_code=user.language_code if user is not None else None, group=group)


def group_info(chat: Chat) -> GroupInfo:
    return GroupInfo(chat_id=chat.id, title=chat.title or "", chat_type=chat.type,
                     is_forum=bool(chat.is_forum))


def command_of(message: Message) -> str | None:
    """The command a message starts with ("cancel" for "/cancel@bot"), else None: for
    conversations that take the next message, but let other commands keep their meaning."""
    entities = message.entities or ()
    if not (message.text and entities and entities[0].type == "bot_command"
            and entities[0].offset == 0):
        return None
    return message.text[1:entities[0].length].split("@", 1)[0].lower()


def is_group(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type in (Chat.GROUP, Chat.SUPERGROUP)


def offers_button(message: Message | None, pressed: str | None) -> bool:
    """Whether the message offers the button pressed (a made-up press on any other message
    of the bot must not turn it into a card's copy)."""
    markup = message.reply_markup if message is not None else None
    return markup is not None and any(button.callback_data == pressed
                                      for row in markup.inline_keyboard for button in row)
