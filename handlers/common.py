"""Small helpers the Telegram door shares: who acted, a command's name, a group's identity."""

from __future__ import annotations

from telegram import Chat, Message, Update

from bot.actions.people import Who
from bot.services.binding import GroupInfo


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
