"""The fake Telegram every test talks to; see transport.py and factories.py."""

from pathlib import Path

from tests.telegram_fake.factories import Chat, UpdateFactory, User
from tests.telegram_fake.transport import (
    BOT_ID,
    BOT_USER,
    BOT_USERNAME,
    TOKEN,
    ApiSpecViolation,
    Call,
    FakeTelegram,
    error_body,
    load_spec,
    spec_path,
)


def __getattr__(name: str) -> Path:
    """``SPEC_PATH``: where the spec is (``spec_path()``), worked out when it is read."""
    if name == "SPEC_PATH":
        return spec_path()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "spec_path",
]
