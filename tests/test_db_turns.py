"""Two things bench/ measured and fixed in storage: SQLite's writers take turns in arrival
order, and the ticker claims a batch of due tasks with one statement."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from storage.db import Database
from storage.models import ScheduledTask, User
from storage.uow import UnitOfWork

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def _note(uow: UnitOfWork, user_id: int) -> None:
    uow.session.add(User(id=user_id, language=None, telegram_language_code=None,
                         unreachable=False, created_at=NOW, updated_at=NOW))
    await uow.session.flush()


async def test_a_writer_that_waits_is_not_overtaken_on_sqlite(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("PostgreSQL runs the two side by side")
    finished: list[str] = []
    busy = asyncio.Event()

    async def busy_writer() -> None:
        # One transaction after another, as a flood of updates does: with SQLite polling its
        # lock, the waiting writer found it taken each time it looked, for seconds on end.
        for n in range(30):
            async with UnitOfWork(db) as uow:
                await _note(uow, 1000 + n)
                busy.set()
                await asyncio.sleep(0.005)  # the transaction takes a moment
                await uow.session.commit()
            finished.append(f"busy {n}")

    async def waiting_writer() -> None:
        await busy.wait()  # arrives while the busy writer's first transaction is open
        async with UnitOfWork(db) as uow:
            await _note(uow, 2000)
            await uow.session.commit()
        finished.append("waiting")

    await asyncio.gather(busy_writer(), waiting_writer())
    assert finished[:2] == ["busy 0", "waiting"]


async def test_a_unit_of_work_opened_inside_another_goes_on(db: Database) -> None:
    async with UnitOfWork(db) as outer:
        async with UnitOfWork(db) as inner:
            await _note(inner, 3000)
            await inner.session.commit()
        assert await outer.session.get(User, 3000) is not None
    async with UnitOfWork(db) as uow:  # and the turn was given back
        assert await uow.session.get(User, 3000) is not None


async def test_a_batch_is_claimed_with_one_statement(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        for n in range(20):
            await uow.tasks.schedule("note", NOW - timedelta(minutes=n), NOW)
        await uow.session.commit()
    updates: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            updates.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with UnitOfWork(db) as uow:
            claimed = await uow.tasks.claim_due(NOW, 50, timedelta(minutes=2))
            await uow.session.commit()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert len(claimed) == 20 and len(updates) == 1
    async with UnitOfWork(db) as uow:
        leased = (await uow.session.scalars(select(ScheduledTask))).all()
    assert {(t.id, t.lease) for t in leased} == set(claimed)
    assert {t.leased_until for t in leased} == {NOW + timedelta(minutes=2)}
    async with UnitOfWork(db) as uow:  # leased: nobody else claims them meanwhile
        assert await uow.tasks.claim_due(NOW, 50, timedelta(minutes=2)) == []


async def test_a_task_cancelled_as_its_turn_comes_stops_and_passes_the_turn_on() -> None:
    """Cancelled at the very moment the turn is handed to it, a waiting task must still end
    cancelled (an outbox sender being stopped); on Python 3.11, asyncio.wait_for returned
    the granted lock instead and the cancelled sender ran on forever. The turn goes to the
    next in line."""
    from storage.db import Turns

    turns = Turns(5)
    await turns.acquire()  # this test holds the turn
    waiter = asyncio.create_task(turns.acquire())
    await asyncio.sleep(0)  # the waiter queues for the turn
    turns.release()  # the turn is handed to the waiter ...
    waiter.cancel()  # ... and the waiter is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await waiter
    async with asyncio.timeout(1):  # the turn was passed on, not lost
        await turns.acquire()
    turns.release()



@pytest.mark.parametrize("capacity", [1, 3])  # SQLite's one writer, a PostgreSQL pool
async def test_first_in_line_goes_before_every_unit_of_work_that_waits(capacity: int) -> None:
    """The scheduler's tick and the outbox sender (storage.db.first_in_line) must not wait
    behind the updates that queued before them; among themselves, and among the others,
    arrival order holds."""
    from storage.db import Turns, first_in_line

    turns = Turns(5, capacity=capacity)
    order: list[str] = []
    go = asyncio.Event()

    async def one(name: str, *, first: bool = False) -> None:
        if first:
            with first_in_line():
                await turns.acquire()
        else:
            await turns.acquire()
        order.append(name)
        turns.release()

    async def hold() -> None:
        await turns.acquire()
        await go.wait()
        turns.release()

    holders = [asyncio.create_task(hold()) for _ in range(capacity)]
    await asyncio.sleep(0)  # every turn is taken
    queued = [asyncio.create_task(one("update 1")), asyncio.create_task(one("update 2")),
              asyncio.create_task(one("tick", first=True)), asyncio.create_task(one("update 3")),
              asyncio.create_task(one("sender", first=True))]
    await asyncio.sleep(0)
    go.set()
    await asyncio.gather(*holders, *queued)
    assert order == ["tick", "sender", "update 1", "update 2", "update 3"]
