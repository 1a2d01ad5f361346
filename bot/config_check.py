"""`gridgate config check`: the configuration gridgate would run with, and where each value
came from (a file, an environment variable, or gridgate's default), secrets masked.

The listing is TOML as far as TOML goes, so a line can be copied into gridgate.toml; where each
value came from is the comment at its end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, time, timedelta
from enum import Enum
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.config import Config
from bot.config_types import show

DEFAULT = "default"
# Keys whose values are secrets: what is shown of them says only whether they are set.
_MASKED = {"telegram.token", "webhook.secret_token"}
# URLs whose path may be a secret: the bot's HTTP server takes Telegram's calls at the webhook
# URL's path, and PTB's examples put the bot token there.
_SECRET_PATH = {"webhook.url"}
_HIDDEN = "***"
_COMMENT_AT = 48


def lines(config: Config) -> Iterator[str]:
    """The effective configuration, section by section."""
    yield f"# from {config.source}, then the environment"
    lists = []
    for name in Config.model_fields:
        value = getattr(config, name)
        if isinstance(value, BaseModel):
            yield from _table(config, name, value)
        else:
            lists.append(name)
    for name in lists:
        items = getattr(config, name)
        codes = ", ".join(str(getattr(item, "code", "?")) for item in items) or "none"
        origin = config.origin(name) or DEFAULT
        yield ""
        yield _with_comment(f"# [[{name}]]: {len(items)} ({codes})", origin)


def warnings(config: Config) -> Iterator[str]:
    """What is allowed but probably not meant, for a configuration about to serve people."""
    if not config.admins:
        yield ("[general] admins is empty: nobody can /bind the groups; put your Telegram "
               "user id there")
    if not config.telegram.token:
        yield ("there is no bot token (TELEGRAM_BOT_TOKEN or [telegram] token): `gridgate run` "
               "would start the demo, or refuse")


def _table(config: Config, path: str, section: BaseModel) -> Iterator[str]:
    scalars, tables = [], []
    for name in type(section).model_fields:
        value = getattr(section, name)
        key = f"{path}.{name}"
        if isinstance(value, BaseModel):
            tables.append((key, value))
        elif isinstance(value, dict) and any(isinstance(v, BaseModel) for v in value.values()):
            tables += [(f"{key}.{sub}", v) for sub, v in value.items()]
        else:
            scalars.append((name, key, value))
    yield ""
    yield f"[{path}]"
    for name, key, value in scalars:
        origin = config.origin(key) or DEFAULT
        if value is None:
            yield _with_comment(f"# {name} is not set", origin)
            continue
        yield _with_comment(f"{name} = {_value(key, value)}", origin)
    for key, value in tables:
        yield from _table(config, key, value)


def _value(key: str, value: Any) -> str:
    if key in _MASKED:
        return '"(set, not shown)"'
    if key == "database.url":
        try:
            return json.dumps(make_url(value).render_as_string(hide_password=True))
        except ArgumentError:  # not expected of a checked configuration; masked all the same
            return '"(set, not shown)"'
    if isinstance(value, str) and (shown := _url(key, value)) is not None:
        return json.dumps(shown)
    return _toml(value)


def _url(key: str, value: str) -> str | None:
    """A URL as it may be shown: never a user name or password, nor the path (query and
    fragment included) where that may be a secret. None when ``value`` is not a URL."""
    try:
        parts = urlsplit(value.strip())
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    netloc = host if "@" not in parts.netloc else f"{_HIDDEN}@{host}"
    rest = parts.path + (f"?{parts.query}" if parts.query else "") + (
        f"#{parts.fragment}" if parts.fragment else "")
    if key in _SECRET_PATH and rest.strip("/"):
        rest = f"/{_HIDDEN}"
    return f"{parts.scheme}://{netloc}{rest}"


def _toml(value: Any) -> str:
    if isinstance(value, ZoneInfo):
        return json.dumps(value.key)
    if isinstance(value, Enum):
        return _toml(value.value)
    if isinstance(value, timedelta | time):  # written as strings: "30m", "08:30"
        return json.dumps(show(value))
    if isinstance(value, str | bool | date):
        return show(value)
    if isinstance(value, set | frozenset):
        return "[" + ", ".join(_toml(v) for v in sorted(value, key=str)) + "]"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, BaseModel):
        return _toml({k: v for k, v in value.model_dump().items() if v is not None})
    return show(value)


def _with_comment(line: str, origin: str) -> str:
    return f"{line.ljust(_COMMENT_AT)}  # {origin}"
