"""Bringing the database to a usable state before the bot or a command uses it."""

from __future__ import annotations

import errno
import logging
import socket
import sqlite3
import ssl
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text as sql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.clock import Clock
from bot.config import Config
from bot.services import grids
from storage import migrate
from storage.db import Database, create_database
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# pg_advisory_xact_lock's key for preparing the database (any constant; "gridgate" in ASCII).
PREPARE_LOCK = 0x67726964_67617465


class StartupError(Exception):
    """The database cannot be used as it is; the message says what the operator must do."""


class NotMigrated(StartupError):
    """The PostgreSQL schema is behind the code; an operator must run `gridgate db upgrade`."""


def open_database(config: Config) -> Database:
    path = sqlite_file(config.database.url)
    if path is not None and not path.parent.is_dir():
        # Said before SQLite fails on it: aiosqlite's worker thread, failing to open the
        # file, may outlive the event loop and print a traceback of its own.
        raise StartupError(f"cannot open {where(config.database.url)}: there is no folder "
                           f"{path.parent.resolve()}")
    return create_database(config.database.url, echo=config.database.echo,
                           busy_timeout_ms=config.database.sqlite_busy_timeout_ms,
                           synchronous=config.database.synchronous,
                           transactions_at_once=config.database.transactions_at_once)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL and for an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def where(url: str) -> str:
    """The database as a person recognises it, never with its password."""
    parsed = make_url(url)
    path = sqlite_file(url)
    if path is not None:
        return f"the SQLite database {path.resolve()}"
    if parsed.get_backend_name() == "sqlite":
        return "the in-memory SQLite database"
    return (f"the PostgreSQL database {parsed.database or '?'} on "
            f"{parsed.host or 'localhost'}:{parsed.port or 5432}")


async def open_for_reading(config: Config) -> Database | None:
    """The database for a command that only reads it, or None when nothing is there yet.

    Unlike ``prepare`` it never creates, migrates or loads anything: a SQLite file that does
    not exist stays absent, an empty database stays empty. A schema other than this
    gridgate's cannot be read reliably, so that is refused with what to do.
    """
    path = sqlite_file(config.database.url)
    if path is not None and not path.exists():
        return None
    db = open_database(config)
    try:
        revision = await migrate.current_revision(db)
        if revision is None:
            await db.dispose()
            return None
        if revision != migrate.head_revision():
            newer = revision not in migrate.known_revisions()
            raise StartupError(
                f"{where(config.database.url)} is at schema revision {revision}, "
                + ("newer than this gridgate knows; install the gridgate that wrote it"
                   if newer else f"older than this gridgate's {migrate.head_revision()}; "
                   "run `gridgate db upgrade` first"))
    except BaseException:
        await db.dispose()
        raise
    return db


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        each = todo.pop(0)
        if each is None or id(each) in seen:
            continue
        seen.add(id(each))
        yield each
        orig = getattr(each, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None, each.__cause__,
                 each.__context__]


_DRIVERS = ("asyncpg", "aiosqlite", "sqlalchemy", "sqlite3")


def _from_database(exc: BaseException) -> bool:
    """Raised by the database or its drivers? asyncpg lets a refused connection or an unknown
    host out as the plain OSError, so where it was raised tells as much as what it is."""
    if isinstance(exc, SQLAlchemyError | sqlite3.Error) or type(exc).__module__.startswith(
            _DRIVERS):
        return True
    trace = exc.__traceback__
    while trace is not None:
        if str(trace.tb_frame.f_globals.get("__name__", "")).startswith(_DRIVERS):
            return True
        trace = trace.tb_next
    return False


def database_failure(exc: BaseException, url: str) -> str | None:
    """One line saying why the database cannot be used, for an operator; None when ``exc`` is
    not a database's failure. Never the URL as written (it may hold the password)."""
    parsed = make_url(url)
    address = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    known = where(url)
    causes = list(_causes(exc))
    if not any(_from_database(cause) for cause in causes):
        return None  # a file that cannot be read, say, is not the database's failure
    for cause in causes:
        kind = type(cause)
        if kind.__module__.startswith("asyncpg"):
            name = kind.__name__
            said = str(cause).splitlines()[0] if str(cause) else name
            if name == "InvalidCatalogNameError":
                return (f"{known} does not exist; create it (docs/deployment.md, section 3) "
                        "or correct DATABASE_URL or [database] url")
            if name in ("InvalidPasswordError", "InvalidAuthorizationSpecificationError"):
                return (f"PostgreSQL on {address} refused the login ({said}); check the user "
                        "and password in DATABASE_URL or [database] url")
            if hasattr(cause, "sqlstate"):  # the server's own words: they hold no password
                return f"{known} refused: {said}"
        if isinstance(cause, socket.gaierror):
            return (f"the database host {parsed.host!r} is not known (DNS); check DATABASE_URL "
                    "or [database] url")
        if isinstance(cause, ConnectionRefusedError) or (
                isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED):
            return (f"nothing answers on {address} (connection refused): is PostgreSQL "
                    "running there, and are DATABASE_URL or [database] url right?")
        if isinstance(cause, TimeoutError):
            return f"{address} does not answer (timed out): is the database reachable from here?"
        if isinstance(cause, ssl.SSLError):
            return f"the TLS connection to {address} failed ({cause.reason or 'TLS'})"
        if isinstance(cause, sqlite3.Error):
            said = str(cause)
            if "unable to open" in said:
                return (f"cannot open {known} (does its folder exist, and may this user write "
                        "there?)")
            return f"{known}: {said}"
    return f"{known} cannot be used ({type(exc).__name__})"


async def prepare(db: Database, config: Config, clock: Clock, *, demo: bool = True) -> None:
    """Migrate (SQLite) or check the schema (PostgreSQL), load the demo, sync the desks.

    The embedded SQLite database upgrades itself; a PostgreSQL database is shared by several
    instances and upgraded deliberately, once, by `gridgate db upgrade`. ``demo`` False never
    loads the demo district: a command such as `gridgate grids import` is about the
    operator's own district, which the demo would only stand in the way of.
    """
    if db.is_sqlite:
        before = await migrate.current_revision(db)
        await migrate.upgrade(db)
        after = await migrate.current_revision(db)
        if before != after:
            log.info("upgraded the database schema to revision %s (was %s)", after,
                     before or "empty")
    elif not await migrate.is_up_to_date(db):
        raise NotMigrated(
            "the database schema is not up to date; run `gridgate db upgrade` first")
    async with UnitOfWork(db) as uow:
        if not db.is_sqlite:
            # Several instances start at once on one PostgreSQL database: one at a time loads
            # the demo district and syncs the desks (SQLite's BEGIN IMMEDIATE does this
            # already). The lock ends with the transaction.
            await uow.session.execute(sql("SELECT pg_advisory_xact_lock(:key)"),
                                      {"key": PREPARE_LOCK})
        if demo and config.demo_district_when_empty and await uow.nodes.count() == 0:
            report = await grids.import_parsed(uow, clock, grids.demo_district())
            log.info("loaded the demo district (%d nodes)", report.created)
        try:
            await grids.sync_desks(uow, clock, [
                (desk.code, desk.names.zh_Hans, desk.names.zh_Hant, desk.names.en)
                for desk in config.desks])
        except grids.DeskCodeTaken as exc:
            raise StartupError(str(exc)) from exc
        await uow.commit()


async def warn_unbound_centre(db: Database) -> None:
    """Routing climbs to the district centre as a last resort: a bot about to take reports
    says early when the centre has no group to receive them. (Only the bot: the commands
    an operator runs to set things up would repeat it on every line of a session.)"""
    async with UnitOfWork(db) as uow:
        root = await uow.nodes.root()
        group = await uow.groups.for_node(root.id) if root else None
    if root is not None and (group is None or not group.active):
        log.warning("the district centre %s has no active group yet; an administrator "
                    "should send /bind %s in the district centre's group", root.code,
                    root.code)
