"""The durable floor of one conversation step: a unit of work that reads a resident's draft,
writes it back and records the update id, then commits — what every private-chat step costs the
database at least — many chats at once, through gridgate's own engine (storage.db).

    python bench/unit_of_work.py [--steps 3000] [--concurrency 50] [--backend sqlite,postgresql]

On SQLite it compares the engine's two ways of running statements: on the event loop's thread
(InlineConnection, the default) and on aiosqlite's thread per connection (one hand-off per
statement), with `synchronous` NORMAL and FULL.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import migrate
from storage.db import Database, create_database
from storage.models import Draft, ProcessedUpdate
from storage.uow import UnitOfWork

NOW = datetime(2026, 12, 7, tzinfo=UTC)
IDS = itertools.count(1)


async def step(db: Database, user_id: int) -> None:
    async with UnitOfWork(db) as uow:
        draft = await uow.drafts.get(user_id, "report")
        draft.data = {**draft.data, "n": draft.data.get("n", 0) + 1}
        draft.updated_at = NOW
        uow.session.add(ProcessedUpdate(update_id=next(IDS), processed_at=NOW))
        await uow.session.commit()


async def run(db: Database, steps: int, concurrency: int) -> tuple[float, float]:
    """Steps a second (wall time) and CPU milliseconds a step (all of the process's threads:
    the figure a loaded, shared machine disturbs least)."""
    await migrate.upgrade(db)
    async with UnitOfWork(db) as uow:
        for user in range(concurrency):
            uow.session.add(Draft(user_id=user, flow="report", step="describe", data={},
                                  created_at=NOW, updated_at=NOW))
        await uow.session.commit()
    for user in range(concurrency):  # warm up
        await step(db, user)

    async def chat(user: int) -> None:
        for _ in range(steps // concurrency):
            await step(db, user)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(chat(user) for user in range(concurrency)))
    done = (steps // concurrency) * concurrency
    return (done / (time.perf_counter() - started),
            (time.process_time() - cpu) * 1000 / done)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--backend", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved; the best is shown")
    args = parser.parse_args()
    best: dict[str, tuple[float, float]] = {}

    def note(name: str, figures: tuple[float, float]) -> None:
        old = best.get(name)
        best[name] = figures if old is None else (max(old[0], figures[0]),
                                                  min(old[1], figures[1]))

    for _ in range(args.rounds):
        for backend in args.backend.split(","):
            if backend == "sqlite":
                for inline, sync in ((True, "normal"), (False, "normal"), (True, "full"),
                                     (False, "full")):
                    with tempfile.TemporaryDirectory() as folder:
                        db = create_database(f"sqlite+aiosqlite:///{folder}/uow.db",
                                             sqlite_inline=inline, synchronous=sync)
                        try:
                            figures = await run(db, args.steps, args.concurrency)
                        finally:
                            await db.dispose()
                    how = "loop's thread" if inline else "aiosqlite thread"
                    note(f"SQLite, {how}, synchronous={sync}", figures)
            else:
                from tests.conftest import pg_schema
                async with pg_schema() as db:
                    note("PostgreSQL (asyncpg)", await run(db, args.steps, args.concurrency))
    for name, (rate, cpu) in best.items():
        print(f"{name:45} {rate:7.0f} steps/s {cpu:6.2f} ms CPU/step")


if __name__ == "__main__":
    asyncio.run(main())
