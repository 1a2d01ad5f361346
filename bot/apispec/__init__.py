"""The Telegram Bot API spec as a checker: shared by the test fake and the local sandbox."""

from bot.apispec.html import ParsedHtml, html_violations, html_visible_text, parse_html, utf16_len
from bot.apispec.validate import BotApiSpec, FieldRule, OwnerRule

__all__ = [
    "BotApiSpec",
    "FieldRule",
    "OwnerRule",
    "ParsedHtml",
    "html_violations",
    "html_visible_text",
    "parse_html",
    "utf16_len",
]
