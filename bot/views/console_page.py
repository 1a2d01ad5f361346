"""The console page's own words (its buttons, headings and hints), in the person's language."""

from __future__ import annotations

from collections.abc import Sequence

from bot.i18n import LANGUAGE_NAMES, LANGUAGES, Translator


def languages() -> Sequence[dict[str, str]]:
    return [{"code": code, "name": LANGUAGE_NAMES[code]} for code in LANGUAGES]


def page_strings(t: Translator) -> dict[str, str]:
    return {
        "title": t("Centre console"),
        "sign_in": t("Sign in through the bot"),
    }
