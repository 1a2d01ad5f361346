"""The commands people can find: the menus Telegram shows, per chat kind and language
(setMyCommands), and the command lists of /help, both from the tables below, so that a command
the bot answers is in both or in neither."""

from __future__ import annotations

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
)

from bot.i18n import N_, Catalogs, Translator

PRIVATE_COMMANDS = (
    ("start", N_("Main menu")),
    ("report", N_("Report a problem")),
    ("consult", N_("Ask the public legal service a legal question")),
    ("matter", N_("Report an enterprise matter (enterprise contacts)")),
    ("mytickets", N_("My tickets")),
    ("enterprise", N_("Register or manage your enterprise")),
    ("checkup", N_("Book a legal check-up for your enterprise")),
    ("cancel", N_("Cancel what you are doing")),
    ("help", N_("What this bot does and how to use it")),
    ("language", N_("Change the language")),
    ("mydata", N_("Get a copy of your data")),
    ("deletemydata", N_("Erase your personal data")),
)
GROUP_COMMANDS = (
    ("help", N_("What this group receives and the group commands")),
    ("bind", N_("Bind this group to a grid, centre or desk (admins)")),
    ("unbind", N_("Unbind this group (admins)")),
    ("stats", N_("Numbers of this group's area: /stats today, week or month")),
    ("slots", N_("Legal check-up slots: list, add, close (legal desk)")),
    ("language", N_("Change the group's language (admins)")),
)

# What /help shows after a command that takes arguments (unless its description says it).
USAGE = {"bind": "CODE", "slots": "[add|help]"}

# setMyCommands takes a two-letter ISO 639-1 code, so Traditional Chinese cannot be told apart
# from Simplified here: zh gets the default Chinese menu, and a person or group that picks
# Traditional Chinese with /language gets a menu of its own (chat scope).
TELEGRAM_LANGUAGE_CODES = {"zh": "zh_Hans", "en": "en"}


def _commands(t: Translator, entries: tuple[tuple[str, str], ...]) -> list[BotCommand]:
    return [BotCommand(name, t(description)) for name, description in entries]


def command_list(t: Translator, *, group: bool) -> str:
    """The lines "/command args — what it does" of /help, in the menu's order and words."""
    lines = []
    for name, description in GROUP_COMMANDS if group else PRIVATE_COMMANDS:
        words = t(description)
        call = f"/{name} {USAGE[name]}" if name in USAGE else f"/{name}"
        lines.append(f"{call} — {words}")
    return "\n".join(lines)


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
