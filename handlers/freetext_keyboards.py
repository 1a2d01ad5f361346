"""The offer's buttons as Telegram markup, for handlers.relay (the buttons themselves are
in bot.views.freetext)."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup

from bot.delivery.render import reply_markup
from bot.i18n import Translator
from bot.views import View
from bot.views.freetext import PREFIX  # noqa: F401
from bot.views.freetext import report_instead as _report_instead


def report_instead(t: Translator, token: str) -> InlineKeyboardMarkup:
    """Under "that ticket is closed": report the same words as a new problem."""
    return reply_markup(View("", _report_instead(t, token)))
