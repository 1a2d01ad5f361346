"""Durable scheduled tasks: due tasks run once, through restarts and beside a second ticker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import FakeClock
from scheduler.ticker import Ticker
from storage.db import Database
from storage.uow import UnitOfWork
from tests.harness import Flood

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def _schedule(db: Database, clock: FakeClock, kind: str, in_: timedelta, **kw) -> None:
    async with UnitOfWork(db) as uow:
        await uow.tasks.schedule(kind, clock.now() + in_, clock.now(), **kw)
        await uow.session.commit()


async def _statuses(db: Database) -> list[str]:
    async with UnitOfWork(db) as uow:
        return [t.status for t in await uow.tasks.pending()]


async def test_a_task_runs_once_when_due_and_not_before(db: Database) -> None:
    clock = FakeClock(NOW)
    ran: list[dict] = []

    async def note(uow, task) -> None:
        ran.append(task.payload)

    ticker = Ticker(db, clock, {"note": note})
    await _schedule(db, clock, "note", timedelta(minutes=30), payload={"n": 1})
    assert await ticker.tick() == 0
    clock.advance(timedelta(minutes=30))
    assert await ticker.tick() == 1
    assert await ticker.tick() == 0
    assert ran == [{"n": 1}]


async def test_tasks_due_while_down_run_once_after_a_restart(db: Database) -> None:
    clock = FakeClock(NOW)
    ran: list[int] = []

    async def note(uow, task) -> None:
        ran.append(task.payload["n"])

    for n in range(3):
        await _schedule(db, clock, "note", timedelta(minutes=n), payload={"n": n})
    clock.advance(timedelta(days=2))  # the bot was down for two days
    restarted = Ticker(db, clock, {"note": note}, batch_size=2)  # more than one batch
    assert await restarted.tick() == 3
    assert await Ticker(db, clock, {"note": note}).tick() == 0
    assert ran == [0, 1, 2]


async def test_a_keyed_task_is_re_armed_and_a_cancelled_one_never_runs(db: Database) -> None:
    clock = FakeClock(NOW)
    ran: list[str] = []

    async def note(uow, task) -> None:
        ran.append(task.kind)

    await _schedule(db, clock, "note", timedelta(minutes=5), key="draft:1")
    await _schedule(db, clock, "note", timedelta(minutes=50), key="draft:1")
    await _schedule(db, clock, "other", timedelta(minutes=5), ticket_id=None)
    async with UnitOfWork(db) as uow:
        assert await uow.tasks.cancel(["other"]) == 1
        await uow.session.commit()
    ticker = Ticker(db, clock, {"note": note, "other": note})
    clock.advance(timedelta(minutes=10))
    assert await ticker.tick() == 0  # re-armed for later
    clock.advance(timedelta(minutes=45))
    assert await ticker.tick() == 1
    assert ran == ["note"]


async def test_a_failing_task_backs_off_then_gives_up_and_others_still_run(db: Database) -> None:
    clock = FakeClock(NOW)
    ran: list[str] = []

    async def broken(uow, task) -> None:
        raise RuntimeError("boom")

    async def fine(uow, task) -> None:
        ran.append("fine")

    await _schedule(db, clock, "broken", timedelta(0))
    await _schedule(db, clock, "fine", timedelta(0))
    ticker = Ticker(db, clock, {"broken": broken, "fine": fine},
                    backoffs=(timedelta(minutes=1), timedelta(minutes=5)))
    assert await ticker.tick() == 1 and ran == ["fine"]
    clock.advance(timedelta(minutes=1))
    assert await ticker.tick() == 0
    clock.advance(timedelta(minutes=5))
    assert await ticker.tick() == 0
    clock.advance(timedelta(hours=1))
    assert await ticker.tick() == 0
    async with UnitOfWork(db) as uow:
        assert await uow.tasks.pending(kind="broken") == []


async def test_two_tickers_on_one_database_run_each_task_exactly_once(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("one writer at a time on SQLite; the PostgreSQL run races for real")
    clock = FakeClock(NOW)
    ran: list[int] = []

    async def slow(uow, task) -> None:
        await asyncio.sleep(0.005)  # let the other ticker try the same rows
        ran.append(task.payload["n"])

    for n in range(60):
        await _schedule(db, clock, "slow", timedelta(0), payload={"n": n})
    first = Ticker(db, clock, {"slow": slow}, batch_size=7)
    second = Ticker(db, clock, {"slow": slow}, batch_size=7)
    counts = await asyncio.gather(first.tick(), second.tick(), first.tick())
    assert sum(counts) == 60
    assert sorted(ran) == list(range(60))
    assert counts[0] > 0 and counts[1] > 0  # both really took part


async def test_a_tick_goes_before_the_updates_that_wait_for_their_turn(db: Database) -> None:
    """With every turn at the database taken and twenty updates waiting, a due task runs
    after at most one of them: the tick's claim is served first, and between the claim and
    the task's own transaction one update may take the turn the claim gave back. In arrival
    order the task would have run after all twenty, seconds late in a flood."""
    clock = FakeClock(NOW)
    async def note(uow, task) -> None:
        flood.order.append("task")

    ticker = Ticker(db, clock, {"note": note})
    await _schedule(db, clock, "note", timedelta(0))
    async with Flood(db, waiting=20) as flood:
        tick = asyncio.create_task(ticker.tick())
        await asyncio.sleep(0)  # the tick queues too, last
        flood.let_one_go()
        assert await tick == 1
    assert flood.order[:2] == ["update 0", "task"]
    assert flood.order[2:] == [f"update {n}" for n in range(1, 20)]
