"""What the bot says about the centres' console: in Telegram when someone signs in, and in a
ticket's group when a centre nudges it."""

from __future__ import annotations

from collections.abc import Sequence

from bot.i18n import Translator
from bot.services.text import user_html
from storage.models import Ticket


def code_not_valid(t: Translator) -> str:
    return t("This console sign-in code is not valid any more (each works once, for 5 "
             "minutes). Open the console page again for a new one.")


def not_allowed(t: Translator) -> str:
    return t("The console is for the staff of the centres and desks: you are not a member of "
             "any centre's or desk's group. Ask your administrator to add you.")


def signed_in(t: Translator, places: Sequence[str]) -> str:
    return t("✅ You are signed in to the console in your browser, for: {places}.\n"
             "If that was not you, tell your administrator at once.",
             places=user_html("、".join(places)))


def nudge(t: Translator, ticket: Ticket, centre: str, name: str, note: str) -> str:
    text = t("📣 <b>{centre}</b> ({name}) asks about No. {number}: please take it on or say "
             "what is holding it up.", centre=user_html(centre), name=user_html(name),
             number=ticket.number)
    return f"{text}\n{user_html(note)}" if note else text


def signin_prompt(t: Translator) -> str:
    return t("Scan the code with your phone, or open the link in Telegram, and press Start.")


def code_expired(t: Translator) -> str:
    return t("This code has expired. Ask for a new one.")


def refused(t: Translator) -> str:
    return t("The console is for the staff of the centres and desks: the person who pressed "
             "Start is not in any centre's or desk's group.")


def signed_out(t: Translator) -> str:
    return t("You are signed out. Sign in again through the bot.")


def no_longer_member(t: Translator) -> str:
    return t("You are no longer in any centre's or desk's group, so you were signed out.")


def forbidden_origin(t: Translator) -> str:
    return t("This request did not come from the console page. Please reload the page.")


def bad_request(t: Translator) -> str:
    return t("That could not be understood. Please reload the page.")
