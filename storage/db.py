"""Engine and session factory for the two supported databases.

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) is for scale. The same models
and queries run on both; the differences are confined to this module.

SQLite runs on the event loop's thread. aiosqlite hands every statement to a thread of its own
and waits for the answer: two thread switches per statement, which were 39 % of the CPU of a
busy bot (about 50 hand-offs per update), while the statement itself takes microseconds on a
small local file. So SQLAlchemy's aiosqlite dialect is given, through ``async_creator``, a
connection with aiosqlite's async API (``InlineConnection``) that runs each sqlite3 call where
it is awaited. Two things could hold the loop there:

* A lock held by someone else. SQLite's own busy handler would sleep inside the call; instead
  the connection's busy timeout is 0 and a statement refused with SQLITE_BUSY is tried again
  after an asyncio sleep (1 ms, growing to 25 ms), until ``busy_timeout_ms`` has passed — the
  same wait as SQLite's, with the loop free meanwhile. Within the process the units of work take
  turns anyway (``Turns``); this covers other processes (a ``gridgate`` command run beside
  the service) and the few transactions outside a unit of work.
* Waiting for the disk. The database is in WAL mode with ``synchronous=NORMAL`` by default: a
  commit appends to the write-ahead log and does not wait for the disk (fsync); only a
  checkpoint, which copies the log into the database about every 1000 pages (4 MB) written,
  syncs, and holds the loop for that sync, once every few thousand updates. On a power cut (or
  an operating-system crash; a crash of gridgate alone loses nothing) NORMAL may lose the last
  transactions committed before it, and the database stays consistent: those updates were
  answered and are not handled again, so a resident may have to repeat the last step.
  ``[database] synchronous = "full"`` syncs the log at every commit: nothing committed is lost,
  at the price of one fsync per commit, which holds the loop (docs/deployment.md, "SQLite: what
  a commit is worth").

``create_database(..., sqlite_inline=False)`` keeps aiosqlite's thread per connection (what
bench/unit_of_work.py and bench/conversation.py --backend sqlite-threads compare against).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

_first_in_line: ContextVar[bool] = ContextVar("first_in_line", default=False)


@contextmanager
def first_in_line() -> Iterator[None]:
    """Units of work opened within (in this task and the tasks it starts) get their turn
    before every update's that waits (``Turns``): the scheduler's tick and the outbox sender,
    whose work would otherwise wait behind a flood of updates."""
    token = _first_in_line.set(True)
    try:
        yield
    finally:
        _first_in_line.reset(token)


@dataclass
class _Line:
    held: int = 0
    # Tasks holding a turn, and how many units of work each has open (nested ones go on).
    owners: dict[asyncio.Task, int] = field(default_factory=dict)
    first: deque[asyncio.Future] = field(default_factory=deque)
    waiting: deque[asyncio.Future] = field(default_factory=deque)


class Turns:
    """Turns at the database for this process's units of work: ``capacity`` at once, served
    in arrival order, except that units of work opened under ``first_in_line`` go before
    every other that waits.

    SQLite (capacity 1): every transaction takes the single write lock (BEGIN IMMEDIATE).
    Left to SQLite, the waiting connections poll it with growing sleeps, up to 100 ms each,
    and whoever asks at the right moment gets it: under load an unlucky update waited seconds
    while later ones overtook it (bench/conversation.py: p99 of 4 s with 40 residents at
    once, against 1 s in turns). Units of work therefore queue here, in order, before they
    take a connection; SQLite's busy timeout still covers other processes.

    PostgreSQL (capacity: ``[database] transactions_at_once``): a unit of work waits here
    rather than in the pool's own queue, which knows no one first. Not one per update worker:
    the server works on a few transactions at a time, on its own cores, and more at once only
    wait inside it, each on a connection of its own that prepares every statement again
    (bench/README.md: 4 or 8 at once took 30-40 % more updates a second than 68, on the
    same machine).

    First in line: with up to 64 updates handled at once, a turn in arrival order came after
    up to 64 other transactions, and the scheduler's tick and the outbox sender (a ticket's
    card) waited as long as each update: ticks seconds late, cards seconds after the submit
    (bench/README.md). They are few tasks, each a transaction at a time between calls or
    tasks, so going first delays the updates behind them by a few transactions at most and
    cannot starve them: a tick running task after task gives its turn away between two, and
    an update waiting then takes it.

    A task that already has a turn (a unit of work opened inside another) goes on as before.
    Waiting longer than ``timeout`` fails as SQLite would ("database is locked"). That is a
    minute at least, not the busy timeout: the line is this process's own work, served in
    order, and under a flood (hundreds of residents at once on a busy machine) a turn came
    after more than the 5 s busy timeout, and updates failed that waiting a little longer
    would have handled.
    """

    def __init__(self, timeout: float, capacity: int = 1) -> None:
        self._timeout = timeout
        self._capacity = capacity
        self._lines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Line] = (
            weakref.WeakKeyDictionary())

    @property
    def capacity(self) -> int:
        return self._capacity

    def _line(self) -> _Line:
        loop = asyncio.get_running_loop()
        line = self._lines.get(loop)
        if line is None:
            line = self._lines[loop] = _Line()
        return line

    async def acquire(self) -> None:
        line = self._line()
        task = asyncio.current_task()
        assert task is not None
        depth = line.owners.get(task)
        if depth:
            line.owners[task] = depth + 1
            return
        if line.held < self._capacity and not line.first and not line.waiting:
            line.held += 1
            line.owners[task] = 1
            return
        granted = asyncio.get_running_loop().create_future()
        queue = line.first if _first_in_line.get() else line.waiting
        queue.append(granted)
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that arrives as the turn is granted, and the cancelled task (an
            # outbox sender being stopped) would then run on forever.
            async with asyncio.timeout(self._timeout):
                try:
                    await granted
                except asyncio.CancelledError:
                    if granted.done() and not granted.cancelled():
                        # Granted as it was cancelled: the turn goes to the next in line.
                        line.held -= 1
                        self._grant(line)
                    else:
                        queue.remove(granted)
                    raise
        except TimeoutError:
            raise OperationalError("BEGIN IMMEDIATE", None,
                                   sqlite3.OperationalError("database is locked")) from None
        line.owners[task] = 1

    def release(self) -> None:
        line = self._line()
        task = asyncio.current_task()
        assert task is not None
        depth = line.owners[task] - 1
        if depth:
            line.owners[task] = depth
            return
        del line.owners[task]
        line.held -= 1
        self._grant(line)

    def _grant(self, line: _Line) -> None:
        # The turn passes to the one waiting first (the counted turn goes with it).
        while line.held < self._capacity and (line.first or line.waiting):
            granted = (line.first or line.waiting).popleft()
            if not granted.done():
                granted.set_result(None)
                line.held += 1


# -- SQLite on the loop's thread ----------------------------------------------------------------

_BUSY_FIRST_PAUSE = 0.001
_BUSY_LONGEST_PAUSE = 0.025


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    # SQLITE_BUSY and its extended codes, but not BUSY_SNAPSHOT: that one means a read
    # transaction must start again, which repeating the statement cannot do.
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return "database is locked" in str(exc)
    return code & 0xFF == sqlite3.SQLITE_BUSY and code != _SQLITE_BUSY_SNAPSHOT


_SQLITE_BUSY_SNAPSHOT = 517


class _RunNow:
    """Stands for aiosqlite's queue to its thread: what is put in runs at once (SQLAlchemy's
    dialect sets isolation_level through the queue)."""

    @staticmethod
    def put_nowait(item: tuple[asyncio.Future | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


class InlineCursor:
    """aiosqlite's Cursor API over a sqlite3 cursor, run on the caller's thread."""

    __slots__ = ("_connection", "_cursor")

    def __init__(self, connection: InlineConnection, cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    def __await__(self):  # aiosqlite's cursor() may be awaited as well as entered
        yield from ()
        return self

    @property
    def description(self):
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        await self._connection._run(self._cursor.execute, sql,
                                    () if parameters is None else parameters)
        return self

    async def executemany(self, sql: str, parameters: Any) -> InlineCursor:
        await self._connection._run(self._cursor.executemany, sql, parameters)
        return self

    async def fetchone(self):
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None):
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self):
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """aiosqlite's Connection API (what SQLAlchemy's aiosqlite dialect uses) over a sqlite3
    connection, each call run where it is awaited instead of on a thread of its own. A
    statement refused because another connection holds the lock is tried again after an
    asyncio sleep, for up to ``busy_timeout`` seconds (the sqlite3 connection itself never
    waits: its own timeout is 0)."""

    def __init__(self, connection: sqlite3.Connection, busy_timeout: float) -> None:
        self._connection: sqlite3.Connection | None = connection
        self._busy_timeout = busy_timeout
        self._tx = _RunNow()

    def __await__(self):
        yield from ()
        return self

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        try:
            return function(*args)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or self._busy_timeout <= 0:
                raise
        # Someone else holds the lock: wait for it as SQLite's busy handler would, but
        # without holding the event loop.
        give_up = time.monotonic() + self._busy_timeout
        pause = _BUSY_FIRST_PAUSE
        while True:
            await asyncio.sleep(min(pause, max(0.0, give_up - time.monotonic())))
            pause = min(pause * 2, _BUSY_LONGEST_PAUSE)
            try:
                return function(*args)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= give_up:
                    raise

    def cursor(self) -> InlineCursor:
        return InlineCursor(self, self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        await self._run(self._conn.commit)

    async def rollback(self) -> None:
        await self._run(self._conn.rollback)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    async def create_function(self, name: str, num_params: int, func: Callable,
                              deterministic: bool = False) -> None:
        self._conn.create_function(name, num_params, func, deterministic=deterministic)

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value

    @property
    def total_changes(self) -> int:
        return self._conn.total_changes


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # Units of work take turns (see Turns): SQLite's one writer at a time, PostgreSQL's pool.
    turns: Turns | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def dispose(self) -> None:
        await self.engine.dispose()


Synchronous = Literal["normal", "full"]
MIN_TURN_WAIT = 60.0  # seconds a unit of work waits for its turn at least (Turns)
# PostgreSQL: connections opened beyond the pool in a burst, and closed again. Few: every
# instance's connections count against the server's max_connections (100 by default).
POOL_OVERFLOW = 4


def create_database(
    url: str, *, echo: bool = False, busy_timeout_ms: int = 5000, connect_args: dict | None = None,
    synchronous: Synchronous = "normal", sqlite_inline: bool = True,
    transactions_at_once: int | None = None,
) -> Database:
    """``transactions_at_once`` (PostgreSQL): this process's units of work that run at once;
    the others wait their turn (``Turns``). The pool keeps that many connections open and a
    few more (``pool_size_for``), and opens some beyond them in a burst, closing them again.
    Without it, SQLAlchemy's default pool (5 and 10 in a burst), for tools and tests."""
    parsed = make_url(url)
    # A database error's text quotes its statement's values (names, phones, message texts) and
    # ends up in logged tracebacks; only echo, a debugging aid, shows them.
    kwargs: dict = {"echo": echo, "hide_parameters": not echo}
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        # One file, many short transactions: WAL lets readers run beside the writer, and the busy
        # timeout makes a second writer wait instead of failing with "database is locked".
        args = {"timeout": busy_timeout_ms / 1000, **(connect_args or {})}
        if sqlite_inline:
            engine_ref: list[AsyncEngine] = []

            async def connect() -> InlineConnection:
                cargs, cparams = engine_ref[0].sync_engine.dialect.create_connect_args(parsed)
                # Every call is made on the loop's thread; the pool may still close a
                # connection from elsewhere (garbage collection), which sqlite3 allows once
                # told so.
                cparams = {**cparams, **args, "timeout": 0, "check_same_thread": False}
                return InlineConnection(sqlite3.connect(*cargs, **cparams),
                                        busy_timeout_ms / 1000)

            kwargs["async_creator"] = connect
        else:
            kwargs["connect_args"] = args
    else:
        # No ping before every checkout (a round trip each time): a connection the server closed
        # is noticed by asyncpg as it happens and refused at checkout (_drop_closed), and a
        # failure on a connection that broke unnoticed discards the whole pool, so the next
        # unit of work gets a fresh one.
        if transactions_at_once is not None:
            kwargs["pool_size"] = pool_size_for(transactions_at_once)
            kwargs["max_overflow"] = POOL_OVERFLOW
        # The connection used last is taken first: asyncpg prepares each statement once per
        # connection, and handed out in turn every connection of the pool prepared every
        # statement again; taken from the top, a few warm connections serve the load.
        kwargs["pool_use_lifo"] = True
        if connect_args:
            kwargs["connect_args"] = connect_args
    engine = create_async_engine(url, **kwargs)
    if sqlite:
        if sqlite_inline:
            engine_ref.append(engine)
        _configure_sqlite(engine, 0 if sqlite_inline else busy_timeout_ms, synchronous)
    else:
        event.listen(engine.sync_engine, "checkout", _drop_closed)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    wait = max(busy_timeout_ms / 1000, MIN_TURN_WAIT)
    if sqlite:
        turns = Turns(wait)
    else:
        # Without a number: as many at once as SQLAlchemy's default pool has connections,
        # its burst included.
        turns = Turns(wait, capacity=15 if transactions_at_once is None
                      else transactions_at_once)
    return Database(engine=engine, sessions=sessions, turns=turns)


def pool_size_for(transactions_at_once: int) -> int:
    """PostgreSQL connections kept open by an instance: one for each unit of work that may run
    at once, and two for what does not take turns (the health check, migrations)."""
    return transactions_at_once + 2


def _drop_closed(dbapi_connection, _record, _proxy) -> None:
    # asyncpg marks a connection closed as soon as the server ends it (a restart,
    # pg_terminate_backend, an idle timeout): no round trip to find out. The pool then
    # discards it and checks out another.
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this connection")


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int,
                      synchronous: Synchronous) -> None:
    level = {"normal": "NORMAL", "full": "FULL"}[synchronous]

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # pragma: no cover - exercised by tests
        # pysqlite's own transaction handling would defer BEGIN and break SAVEPOINTs; let
        # SQLAlchemy emit BEGIN itself (the documented recipe for serializable SQLite).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # See the module's docstring for what NORMAL and FULL may lose on a power cut.
        cursor.execute(f"PRAGMA synchronous={level}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn) -> None:  # pragma: no cover - exercised by tests
        # IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout instead of
        # one failing later with SQLITE_BUSY when it upgrades a read lock.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
