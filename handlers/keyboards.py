"""Callback data of the menus (bot.views.menu), and the binding's buttons
(handlers.binding)."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import Translator
from bot.views.menu import (  # noqa: F401  (bot.app routes these)
    CHECKUP_NEW,
    ENTERPRISE,
    LANGUAGE_PREFIX,
    MENU_HELP,
    MENU_LANGUAGE,
    MY_TICKETS,
)

BIND_MOVE_PREFIX = "bind:move:"
BIND_KEEP = "bind:keep"


def bind_confirmation(t: Translator, node_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(t("Move it here"), callback_data=f"{BIND_MOVE_PREFIX}{node_id}"),
        InlineKeyboardButton(t("Cancel"), callback_data=BIND_KEEP),
    ]])


def add_to_group(t: Translator, url: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(t("Add me to a group"), url=url)]])
