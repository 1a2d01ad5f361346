"""gridgate's logs: text for people, one JSON object per line for log collectors, and a context
(the update being handled, the ticket it concerns) that every record logged inside it carries.

    configure_logging("json", "INFO", verbose=False)     # once, from the loaded configuration

    with log_context(update_id=update.update_id):       # around the handling of one update
        ...
        bind_log_context(ticket=ticket.number)          # once the ticket is known: the rest
        log.info("ticket %s claimed", ticket.number)    # of the update's lines carry it

The context lives in a ``contextvars.ContextVar``, so it follows the asyncio task (and the tasks
it starts) and never leaks into other chats' updates running beside it. A ``logging.Filter`` on
gridgate's handler copies it onto each record as attributes (``record.update_id``,
``record.ticket``) and as ``record.log_context``, which the formatters print.

What never reaches the logs: names, phone numbers, message texts, addresses and tokens.
gridgate's own lines name tickets by their public number and people only by id; the libraries
that would log personal data or the token are held above the levels where they do (see
``_FLOORS``).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, tzinfo
from types import MappingProxyType
from typing import IO, Literal

LogFormat = Literal["text", "json"]
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# Values allowed in the context: what a log collector can index.
ContextValue = str | int

# The fields JSON lines start with; a context field may not take one of these names.
_BASE_FIELDS = ("time", "level", "logger", "message", "exc_type", "traceback", "stack")
# Printed first, in this order, when set; any other context field follows in its own order.
_KNOWN_FIELDS = ("update_id", "ticket", "task", "outbox")
_RESERVED = frozenset(_BASE_FIELDS) | frozenset(vars(logging.LogRecord(
    "", 0, "", 0, "", None, None))) | {"message", "asctime", "log_context"}

# Loggers held at or above a level whatever level gridgate runs at:
# - httpx and httpcore log every request URL at INFO, and a Bot API URL holds the bot token;
# - python-telegram-bot logs whole updates and every call's parameters (names, phone numbers,
#   texts) and its URLs with the token at DEBUG;
# - SQLAlchemy logs every statement at INFO and every row it reads at DEBUG, and aiosqlite
#   every call with its values at DEBUG ([database] echo = true still shows the SQL);
# - APScheduler logs every run of every job at INFO: the scheduler's tick, every few seconds;
# - aiohttp's access log prints every request's path (a webhook path may hold a secret) and
#   every health probe; its client (the Bot API calls, bot.bot_api_client) may name a URL,
#   which holds the bot token;
# - matplotlib and Pillow (the digests' charts) fill DEBUG with font and file chatter;
# - Alembic says how it talks to the database on every command, at INFO (gridgate says
#   itself when it upgraded the schema, and from which revision).
_FLOORS = {
    "alembic": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "telegram": logging.INFO,
    "sqlalchemy": logging.WARNING,
    "aiosqlite": logging.INFO,
    "apscheduler": logging.WARNING,
    "aiohttp.access": logging.WARNING,
    "aiohttp.client": logging.WARNING,
    "matplotlib": logging.WARNING,
    "PIL": logging.INFO,
}

_context: ContextVar[Mapping[str, ContextValue]] = ContextVar(
    "gridgate_log_context", default=MappingProxyType({}))


def _merged(fields: Mapping[str, ContextValue | None]) -> Mapping[str, ContextValue]:
    for key, value in fields.items():
        if key in _RESERVED or not key.isidentifier():
            raise ValueError(f"{key!r} cannot be a log context field")
        if value is not None and (isinstance(value, bool)
                                  or not isinstance(value, str | int)):
            raise TypeError(f"log context field {key!r} must be a str or an int, "
                            f"not {type(value).__name__}")
    # A new mapping each time: tasks started inside share the old one, which must not change.
    return MappingProxyType({**_context.get(),
                             **{k: v for k, v in fields.items() if v is not None}})


@contextmanager
def log_context(**fields: ContextValue | None) -> Iterator[None]:
    """Every record logged inside the block (in this task and the tasks it starts) carries
    ``fields``, on top of any outer context. A field given as None is left as it was.
    On leaving, the context is what it was before, including anything bound inside."""
    token = _context.set(_merged(fields))
    try:
        yield
    finally:
        _context.reset(token)


def bind_log_context(**fields: ContextValue | None) -> None:
    """Add ``fields`` to the current context until the enclosing ``log_context`` ends: for a
    value learnt halfway through (the ticket an update turns out to be about). Outside any
    ``log_context`` it lasts as long as the current task, so use it only inside one."""
    _context.set(_merged(fields))


def current_log_context() -> dict[str, ContextValue]:
    return dict(_context.get())


class ContextFilter(logging.Filter):
    """Copies the current context onto each record: ``record.<field>`` for each field, and all
    of them as ``record.log_context``. A field the call gave itself (``extra={"ticket": n}``)
    wins over the context's."""

    def filter(self, record: logging.LogRecord) -> bool:
        if hasattr(record, "log_context"):  # already seen by another handler
            return True
        fields = dict(_context.get())
        for key in _KNOWN_FIELDS:
            explicit = record.__dict__.get(key)
            if explicit is not None:
                fields[key] = explicit
        for key, value in fields.items():
            setattr(record, key, value)
        record.log_context = _ordered(fields)
        return True


def _ordered(fields: Mapping[str, object]) -> dict[str, object]:
    known = {key: fields[key] for key in _KNOWN_FIELDS if key in fields}
    return known | {key: value for key, value in fields.items() if key not in known}


def _fields(record: logging.LogRecord) -> Mapping[str, object]:
    return getattr(record, "log_context", None) or {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, then the
    context (update_id, ticket, …), then exc_type and traceback for an exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info and record.exc_info[0] is not None:
            kind = record.exc_info[0]
            entry["exc_type"] = (kind.__qualname__ if kind.__module__ == "builtins"
                                 else f"{kind.__module__}.{kind.__qualname__}")
            entry["traceback"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``2026-01-05 08:30:00.123+08:00 INFO handlers.report: ticket 0105-0001 created
    [update_id=17 ticket=0105-0001]``: the usual line, with the context at the end when there
    is one. The time is in ``timezone`` (gridgate's configured one, which tickets and
    deadlines show too; the process's own when None), and always says its offset: a server
    kept on UTC would otherwise log times eight hours from the ones on the tickets."""

    def __init__(self, timezone: tzinfo | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._timezone = timezone

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        at = datetime.fromtimestamp(record.created, self._timezone)
        if self._timezone is None:
            at = at.astimezone()
        return at.isoformat(sep=" ", timespec="milliseconds")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = _fields(record)
        if fields:
            line += " [" + " ".join(f"{key}={value}" for key, value in fields.items()) + "]"
        return line


def configure_logging(fmt: LogFormat = "text", level: str | int = "INFO",
                      verbose: bool = False, *, stream: IO[str] | None = None,
                      capture_warnings: bool = True,
                      timezone: tzinfo | None = None) -> logging.Handler:
    """Send all logs to ``stream`` (standard error) as text or JSON lines, at ``level``
    (DEBUG with ``verbose``), and Python's warnings with them. Text lines give their time in
    ``timezone`` with its offset; JSON lines in UTC. Calling it again replaces the
    handler it installed before and leaves any other handler (pytest's, say) alone. Returns
    the handler it installed."""
    if fmt not in ("text", "json"):
        raise ValueError(f"unknown log format {fmt!r} (use text or json)")
    number = logging.DEBUG if verbose else _level_number(level)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(timezone))
    handler.addFilter(ContextFilter())
    handler.gridgate = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "gridgate", False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(number)
    for name, floor in _FLOORS.items():
        logging.getLogger(name).setLevel(max(floor, number))
    if capture_warnings:  # so that a JSON log stays all JSON
        logging.captureWarnings(True)
    return handler


def _level_number(level: str | int) -> int:
    if isinstance(level, int):
        return level
    if level.upper() not in LEVELS:
        raise ValueError(f"unknown log level {level!r} (use {', '.join(LEVELS)})")
    return logging.getLevelNamesMapping()[level.upper()]
