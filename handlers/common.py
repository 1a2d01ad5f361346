"""Small helpers every handler uses: language, group identity, safe replies."""

from __future__ import annotations

from collections.abc import Collection
from contextvars import ContextVar

from telegram import Chat, Message, Update

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


# The flow of the person's private conversation, as read for the update being handled.
_conversation: ContextVar[tuple[Update, str | None] | None] = ContextVar("conversation",
                                                                        default=None)


async def conversation_is(rt: Runtime, update: Update, flows: Collection[str]) -> bool:
    """Whether the sender's private conversation (their newest private draft) is one of
    `flows`: what every flow's message handler asks first, before its unit of work.

    Those handlers sit in handler groups one after another (survey, my tickets, booking,
    enterprise, report), and a group that takes the update stops it, so the answer read by
    the first holds for the others: it is read once per update. Five transactions reading
    the same row cost a resident's answer some 10 ms (bench/conversation.py). A handler
    that goes on reads its draft again in its own unit of work."""
    cached = _conversation.get()
    if cached is not None and cached[0] is update:
        return cached[1] in flows
    async with rt.uow() as uow:
        draft = await uow.drafts.any_of(update.effective_user.id)
    flow = draft.flow if draft is not None else None
    _conversation.set((update, flow))
    return flow in flows


async def language_of(rt: Runtime, update: Update) -> Translator:
    """The translator for this update, from a unit of work of its own that is closed again
    before the handler talks to Telegram (on SQLite an open one blocks every other writer)."""
    async with rt.uow() as uow:
        return await translator_for(rt, uow, update)


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
