"""The command menus Telegram shows, per chat kind and language (setMyCommands), from the
same tables as /help's command lists (bot.views.menu)."""

from __future__ import annotations

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
)

from bot.i18n import Catalogs, Translator
from bot.views.menu import GROUP_COMMANDS, PRIVATE_COMMANDS

# setMyCommands takes a two-letter ISO 639-1 code, so Traditional Chinese cannot be told apart
# from Simplified here: zh gets the default Chinese menu, and a person or group that picks
# Traditional Chinese with /language gets a menu of its own (chat scope).
TELEGRAM_LANGUAGE_CODES = {"zh": "zh_Hans", "en": "en"}


def _commands(t: Translator, entries: tuple[tuple[str, str], ...]) -> list[BotCommand]:
    return [BotCommand(name, t(description)) for name, description in entries]


async def publish_command_menus(bot: Bot, catalogs: Catalogs, default_language: str) -> None:
    for scope, entries in ((BotCommandScopeAllPrivateChats(), PRIVATE_COMMANDS),
                           (BotCommandScopeAllGroupChats(), GROUP_COMMANDS)):
        await bot.set_my_commands(_commands(catalogs[default_language], entries), scope=scope)
        for code, language in TELEGRAM_LANGUAGE_CODES.items():
            await bot.set_my_commands(_commands(catalogs[language], entries), scope=scope,
                                      language_code=code)


async def publish_chat_menu(bot: Bot, t: Translator, chat_id: int, *, group: bool) -> None:
    entries = GROUP_COMMANDS if group else PRIVATE_COMMANDS
    await bot.set_my_commands(_commands(t, entries), scope=BotCommandScopeChat(chat_id))
