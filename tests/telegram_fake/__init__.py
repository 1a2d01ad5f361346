"""The fake Telegram every test talks to; see transport.py and factories.py."""

from tests.telegram_fake.factories import Chat, UpdateFactory, User
from tests.telegram_fake.transport import (
    BOT_ID,
    BOT_USER,
    BOT_USERNAME,
    SPEC_PATH,
    TOKEN,
    ApiSpecViolation,
    Call,
    FakeTelegram,
    error_body,
    load_spec,
)

__all__ = [
    "BOT_ID",
    "BOT_USER",
    "BOT_USERNAME",
    "SPEC_PATH",
    "TOKEN",
    "ApiSpecViolation",
    "Call",
    "Chat",
    "FakeTelegram",
    "UpdateFactory",
    "User",
    "error_body",
    "load_spec",
]
