"""The engine under the units of work: SQLite on the event loop's thread without ever holding
the loop while waiting for a lock, its durability setting, and PostgreSQL recovering from a
connection the server closed without a ping before every checkout."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from bot.config import Config
from bot.startup import open_database
from storage import migrate
from storage.db import Database, InlineConnection, create_database, pool_size_for
from storage.models import User
from storage.uow import UnitOfWork
from tests.conftest import PG_URL, fresh_database
from tests.harness import make_config
from tests.telegram_fake import User as TgUser

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def _add_user(db: Database, user_id: int) -> None:
    async with UnitOfWork(db) as uow:
        uow.session.add(User(id=user_id, language=None, telegram_language_code=None,
                             unreachable=False, created_at=NOW, updated_at=NOW))
        await uow.session.commit()


def _hold_write_lock(path: str, seconds: float, held: threading.Event) -> None:
    """Another process's writer (a `gridgate` command beside the service): holds SQLite's write
    lock for a while."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        other.execute("ROLLBACK")
    finally:
        other.close()


async def _ticks_while(coro) -> tuple[object, int]:
    """Run ``coro``, counting how often a 5 ms timer fired meanwhile (a held loop: never)."""
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        return await coro, ticks
    finally:
        done.set()
        await task


async def test_sqlite_runs_on_the_loop_and_waits_for_a_lock_without_holding_it(tmp_path) -> None:
    path = str(tmp_path / "gridgate.db")
    db = create_database(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate.upgrade(db)
        async with db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert isinstance(raw.driver_connection, InlineConnection)
        held = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(path, 0.3, held))
        holder.start()
        held.wait()
        started = time.monotonic()
        _, ticks = await _ticks_while(_add_user(db, 1))
        waited = time.monotonic() - started
        holder.join()
        assert waited >= 0.25  # it did wait for the other writer ...
        assert ticks >= 20  # ... with the loop running meanwhile (about 60 ticks in 0.3 s)
        async with UnitOfWork(db) as uow:
            assert await uow.users.get(1) is not None
    finally:
        await db.dispose()


async def test_sqlite_gives_up_on_a_lock_after_the_busy_timeout(tmp_path) -> None:
    path = str(tmp_path / "gridgate.db")
    db = create_database(f"sqlite+aiosqlite:///{path}", busy_timeout_ms=200)
    try:
        await migrate.upgrade(db)
        held = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(path, 1.0, held))
        holder.start()
        held.wait()
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            await _add_user(db, 1)
        assert 0.15 <= time.monotonic() - started < 0.9
        holder.join()
        await _add_user(db, 1)  # the lock is free again: the same engine goes on
    finally:
        await db.dispose()


async def test_sqlite_on_aiosqlite_threads_still_works(tmp_path) -> None:
    db = create_database(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}", sqlite_inline=False)
    try:
        await migrate.upgrade(db)
        await _add_user(db, 5)
        async with db.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 5000
            raw = await conn.get_raw_connection()
            assert not isinstance(raw.driver_connection, InlineConnection)
    finally:
        await db.dispose()


@pytest.mark.parametrize(("setting", "pragma"), [("normal", 1), ("full", 2)])
async def test_sqlite_synchronous_comes_from_the_config(tmp_path, setting, pragma) -> None:
    config: Config = make_config(database={"url": f"sqlite:///{tmp_path / 'g.db'}",
                                           "synchronous": setting})
    db = open_database(config)
    try:
        async with db.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == pragma
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        await db.dispose()


def test_the_postgresql_pool_is_sized_from_the_transactions_at_once() -> None:
    config = make_config(database={"url": "postgresql://u:p@127.0.0.1:5432/x",
                                   "transactions_at_once": 6},
                         runtime={"max_concurrent_updates": 40})
    db = open_database(config)
    pool = db.engine.sync_engine.pool
    assert pool.size() == pool_size_for(6) == 8
    assert db.turns.capacity == 6  # the 40 workers' units of work wait their turn in order
    assert not db.engine.sync_engine.pool._pre_ping


async def _terminate_app_connections(db: Database) -> int:
    """Ends, from another session, every server process behind the connections in ``db``'s
    pool (as a server restart or an idle timeout would)."""
    pool = db.engine.sync_engine.pool
    drivers = [record.dbapi_connection.driver_connection
               for record in list(pool._pool._queue._queue) if record.dbapi_connection is not None]
    pids = [driver.get_server_pid() for driver in drivers]
    assert pids, "the pool holds no connection"
    other = create_database(PG_URL)
    try:
        async with other.engine.connect() as conn:
            for pid in pids:
                await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await other.dispose()
    for _ in range(200):  # the server's goodbye reaches asyncpg (at once, unless very busy)
        if all(driver.is_closed() for driver in drivers):
            break
        await asyncio.sleep(0.01)
    return len(pids)


async def test_postgresql_recovers_from_a_connection_the_server_closed(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL connections")
    await _add_user(db, 1)
    assert await _terminate_app_connections(db) >= 1
    # The next unit of work gets a connection that works, without a ping per checkout.
    await _add_user(db, 2)
    async with UnitOfWork(db) as uow:
        assert (await uow.session.scalars(select(User.id).order_by(User.id))).all() == [1, 2]


async def test_postgresql_next_update_is_handled_after_the_connection_dropped(
        db: Database, catalogs) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL connections")
    from tests.harness import start_bot, stop_bot

    env = await start_bot(db, catalogs)
    try:
        resident = TgUser(700_001, "Resident", language_code="en")
        await env.send(env.updates.command(resident, "/help"))
        answered = len(env.texts(resident.id))
        assert await _terminate_app_connections(db) >= 1
        await env.send(env.updates.command(resident, "/help"))
        assert len(env.texts(resident.id)) == answered + 1
        assert env.errors == []
    finally:
        await stop_bot(env)


async def test_fresh_sqlite_database_is_inline(tmp_path) -> None:
    async with fresh_database("sqlite") as db:
        async with db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert isinstance(raw.driver_connection, InlineConnection)
