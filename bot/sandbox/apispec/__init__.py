"""The Telegram Bot API spec as a checker: shared by the test fake and the local sandbox."""

from pathlib import Path

from bot.sandbox.apispec.html import (
    ParsedHtml,
    html_violations,
    html_visible_text,
    parse_html,
    utf16_len,
)
from bot.sandbox.apispec.validate import BotApiSpec, FieldRule, OwnerRule

# The published spec, kept in the package so that the tests and the demo check every call
# without anything outside the repository.
BUNDLED_SPEC = Path(__file__).resolve().parent / "spec" / "bot-api-10.0.json"

__all__ = [
    "BUNDLED_SPEC",
    "BotApiSpec",
    "FieldRule",
    "OwnerRule",
    "ParsedHtml",
    "html_violations",
    "html_visible_text",
    "parse_html",
    "utf16_len",
]
