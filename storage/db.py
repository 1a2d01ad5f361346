"""Engine and session factory for the two supported databases.

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) is for scale. The same models
and queries run on both; the differences are confined to this module.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from dataclasses import dataclass, field

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    owner: asyncio.Task | None = None
    depth: int = 0


class WriteTurns:
    """First come, first served turns at SQLite's single write lock for this process's tasks.

    Every transaction here takes that lock (BEGIN IMMEDIATE). Left to SQLite, the waiting
    connections poll it with growing sleeps, up to 100 ms each, and whoever asks at the right
    moment gets it: under load an unlucky update waited seconds while later ones overtook it
    (bench/conversation.py: p99 of 4 s with 40 residents at once, against 1 s in turns).
    Units of work therefore queue here, in order, before they take a connection; SQLite's
    busy timeout still covers other processes. A task that already has the turn (a unit of
    work opened inside another) goes on as before. Waiting longer than the busy timeout fails
    as SQLite would ("database is locked").
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turn] = (
            weakref.WeakKeyDictionary())

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        turn = self._turns.get(loop)
        if turn is None:
            turn = self._turns[loop] = _Turn()
        task = asyncio.current_task()
        if turn.owner is task:
            turn.depth += 1
            return
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that arrives as the lock is granted, and the cancelled task (an
            # outbox sender being stopped) would then run on forever.
            async with asyncio.timeout(self._timeout):
                await turn.lock.acquire()
        except TimeoutError:
            raise OperationalError("BEGIN IMMEDIATE", None,
                                   sqlite3.OperationalError("database is locked")) from None
        turn.owner, turn.depth = task, 1

    def release(self) -> None:
        turn = self._turns[asyncio.get_running_loop()]
        turn.depth -= 1
        if turn.depth == 0:
            turn.owner = None
            turn.lock.release()


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # SQLite only: units of work take turns (see WriteTurns).
    write_turns: WriteTurns | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def dispose(self) -> None:
        await self.engine.dispose()


def create_database(
    url: str, *, echo: bool = False, busy_timeout_ms: int = 5000, connect_args: dict | None = None
) -> Database:
    parsed = make_url(url)
    # A database error's text quotes its statement's values (names, phones, message texts) and
    # ends up in logged tracebacks; only echo, a debugging aid, shows them.
    kwargs: dict = {"echo": echo, "hide_parameters": not echo}
    if parsed.get_backend_name() == "sqlite":
        # One file, many short transactions: WAL lets readers run beside the writer, and the busy
        # timeout makes a second writer wait instead of failing with "database is locked".
        kwargs["connect_args"] = {"timeout": busy_timeout_ms / 1000, **(connect_args or {})}
    else:
        kwargs["pool_pre_ping"] = True
        if connect_args:
            kwargs["connect_args"] = connect_args
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine, busy_timeout_ms)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    turns = WriteTurns(busy_timeout_ms / 1000) if parsed.get_backend_name() == "sqlite" else None
    return Database(engine=engine, sessions=sessions, write_turns=turns)


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # pragma: no cover - exercised by tests
        # pysqlite's own transaction handling would defer BEGIN and break SAVEPOINTs; let
        # SQLAlchemy emit BEGIN itself (the documented recipe for serializable SQLite).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn) -> None:  # pragma: no cover - exercised by tests
        # IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout instead of
        # one failing later with SQLITE_BUSY when it upgrades a read lock.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
