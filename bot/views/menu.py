"""The main menu, the welcome, help, the language menu and the command lists (the commands
people can find: /help's lists and the menus Telegram shows come from the tables below, so
that a command the bot answers is in both or in neither)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from bot.i18n import LANGUAGE_NAMES, LANGUAGES, N_, Translator
from bot.views import Button, Row, View
from bot.views.booking import NEW as CHECKUP_NEW
from bot.views.enterprise import MENU as ENTERPRISE
from bot.views.my_tickets import MENU_MY_TICKETS as MY_TICKETS
from bot.views.places import place_html
from bot.views.report import NEW as REPORT_NEW
from bot.views.report import NEW_CONSULTATION as CONSULTATION_NEW
from bot.views.report import NEW_ENTERPRISE_MATTER as ENTERPRISE_MATTER_NEW
from storage.models import OrgNode

MENU_HELP = "menu:help"
MENU_LANGUAGE = "menu:lang"
LANGUAGE_PREFIX = "lang:"

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


def command_list(t: Translator, *, group: bool) -> str:
    """The lines "/command args — what it does" of /help, in the menu's order and words."""
    lines = []
    for name, description in GROUP_COMMANDS if group else PRIVATE_COMMANDS:
        words = t(description)
        call = f"/{name} {USAGE[name]}" if name in USAGE else f"/{name}"
        lines.append(f"{call} — {words}")
    return "\n".join(lines)


def main_menu(t: Translator) -> tuple[Row, ...]:
    # Only flows that exist get an entry; new flows add their buttons here.
    return View.rows(
        [Button(t("📝 Report a problem"), REPORT_NEW)],
        [Button(t("⚖️ Legal consultation"), CONSULTATION_NEW)],
        [Button(t("🏭 Enterprise matter"), ENTERPRISE_MATTER_NEW)],
        [Button(t("📋 My tickets"), MY_TICKETS)],
        [Button(t("🏢 My enterprise"), ENTERPRISE)],
        [Button(t("📅 Legal check-up for enterprises"), CHECKUP_NEW)],
        [Button(t("🌐 Language"), MENU_LANGUAGE), Button(t("❓ Help"), MENU_HELP)],
    )


def with_menu(t: Translator, text: str) -> View:
    return View(text, main_menu(t))


def welcome_text(t: Translator) -> str:
    return t("<b>Welcome to Gridgate</b>\n\n"
             "Gridgate is the online entrance to your community's grid service.\n\n"
             "Choose from the menu below.")


def welcome(t: Translator) -> View:
    return with_menu(t, welcome_text(t))


def private_help_text(t: Translator) -> str:
    # /mydata and /deletemydata are in the command list, with what they do: said once.
    return "\n\n".join([
        t("<b>How to use Gridgate</b>"),
        html.escape(command_list(t, group=False)),
        t("In an emergency call 110 (police), 119 (fire) or 120 (ambulance) first.")])


def private_help(t: Translator) -> View:
    return with_menu(t, private_help_text(t))


def group_help(t: Translator, *, path: Sequence[OrgNode] | None, active: bool) -> View:
    """/help in a group: the place it serves (``path``; None: not bound) and its commands."""
    if path is not None:
        status = t("This group serves: <b>{place}</b>.", place=place_html(path, t.language))
        if not active:
            status += "\n" + t("It is marked inactive; a Gridgate administrator can bind it "
                               "again.")
    else:
        status = t("This group is not bound yet.")
    return View("\n\n".join([
        status, t("<b>Group commands</b>"), html.escape(command_list(t, group=True)),
        t("Reply to a ticket's card, or to a resident's message about it, to write to the "
          "resident. 👌 on your reply means it has reached them.")]))


def language_menu(t: Translator) -> View:
    return View(t("Choose a language:"), View.rows([
        Button(("✓ " if lang == t.language else "") + LANGUAGE_NAMES[lang],
               LANGUAGE_PREFIX + lang)
        for lang in LANGUAGES]))


def admins_only(t: Translator) -> str:
    return t("Only a Gridgate administrator can change the language of a group.")


def language_chosen(t: Translator, language: str, *, group: bool) -> View:
    text = t("The language is now {language}.", language=LANGUAGE_NAMES[language])
    return View(text) if group else with_menu(t, text)


def button_invalid(t: Translator) -> str:
    return t("This button is no longer valid.")


def not_understood(t: Translator, *, text: bool) -> View:
    if not text:
        # A sticker, a file, a contact…: what the bot can take instead, and the way on.
        return with_menu(t, t(
            "Thanks! I cannot do anything with this kind of message. To report a "
            "problem, describe it in words, or send a photo, a voice message or the "
            "location; or choose from the menu below."))
    return with_menu(t, t("I did not understand that. Please choose from the menu below."))


def edits_ignored(t: Translator) -> View:
    return View(t("I noticed you edited a message. Edits are not picked up; please send the "
                  "correction as a new message."))


def went_wrong(t: Translator) -> str:
    return t("Sorry, something went wrong on our side. Please try again in a moment.")
