"""Inline keyboards and their callback data (each callback_data stays within 64 bytes)."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import LANGUAGE_NAMES, LANGUAGES, Translator
from handlers.report_keyboards import NEW as REPORT_NEW
from handlers.report_keyboards import NEW_CONSULTATION as CONSULTATION_NEW
from handlers.report_keyboards import NEW_ENTERPRISE_MATTER as ENTERPRISE_MATTER_NEW

MY_TICKETS = "my:list"  # handled by handlers.my_tickets
CHECKUP_NEW = "ck:new"  # handled by handlers.booking
ENTERPRISE = "en:menu"  # handled by handlers.enterprise

MENU_HELP = "menu:help"
MENU_LANGUAGE = "menu:lang"
LANGUAGE_PREFIX = "lang:"


def main_menu(t: Translator) -> InlineKeyboardMarkup:
    # Only flows that exist get an entry; new flows add their buttons here.
    return InlineKeyboardMarkup([
        [InlineKeyboardButton(t("📝 Report a problem"), callback_data=REPORT_NEW)],
        [InlineKeyboardButton(t("⚖️ Legal consultation"), callback_data=CONSULTATION_NEW)],
        [InlineKeyboardButton(t("🏭 Enterprise matter"), callback_data=ENTERPRISE_MATTER_NEW)],
        [InlineKeyboardButton(t("📋 My tickets"), callback_data=MY_TICKETS)],
        [InlineKeyboardButton(t("🏢 My enterprise"), callback_data=ENTERPRISE)],
        [InlineKeyboardButton(t("📅 Legal check-up for enterprises"),
                              callback_data=CHECKUP_NEW)],
        [InlineKeyboardButton(t("🌐 Language"), callback_data=MENU_LANGUAGE),
         InlineKeyboardButton(t("❓ Help"), callback_data=MENU_HELP)],
    ])


def language_menu(current: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(("✓ " if lang == current else "") + LANGUAGE_NAMES[lang],
                             callback_data=LANGUAGE_PREFIX + lang)
        for lang in LANGUAGES
    ]])

