"""Scheduler cost as the data grows: the tick that finds and claims due tasks, with 10 000,
100 000 and 1 000 000 tickets (and their scheduled tasks) in the database.

    python bench/scheduler_tick.py [--quick] [--sizes 10000,100000,1000000]
                                   [--backend sqlite,postgresql] [--repeat 200]

For each size a fresh database (SQLite in a temporary folder; PostgreSQL in a throwaway schema
of the machine's server, as the tests use) gets the demo district and then, bulk-inserted,
three years of a district's tickets with the scheduled_task rows their lives leave behind:
each report's two draft checks, the claim timers, the deadline timers and the follow-up
survey's ask, reminder and give-up, done or cancelled for the old tickets, pending in the
future for the open ones, plus one batch (50 tasks, the ticker's batch size) due now.

It then times, with the real code (storage.repositories.tasks and scheduler.ticker):

* claim: one transaction of TaskRepository.claim_due, which finds the due batch and leases
  it, and its commit;
* idle tick: Ticker.tick when nothing is due, what every tick between events costs;
* tick of 50: Ticker.tick running the due batch with handlers that do nothing, so the
  ticker's own work per task (its own transaction, the lease check, marking it done) is
  what is measured.

After each repetition, untimed, the claimed batch is marked done (as running it would) and a
new batch falls due, so every repetition meets a fresh batch, as the ticker does.

Each is repeated (--repeat, fewer for the tick of 50) and reported as median and 95th
percentile. Then the claim query's plan: EXPLAIN QUERY PLAN on SQLite, EXPLAIN (ANALYZE,
BUFFERS) on PostgreSQL, to show it reads the (status, due_at) index and not the table.
SQLite gets no ANALYZE (gridgate never runs one); PostgreSQL gets VACUUM ANALYZE after the
load, as autovacuum would do on its own soon after.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, func, insert, select, text, update

from bot.clock import FakeClock
from bot.startup import prepare
from scheduler.ticker import Ticker
from storage import migrate
from storage.db import Database
from storage.models import OrgNode, ScheduledTask, Ticket
from storage.uow import UnitOfWork
from tests.conftest import fresh_database
from tests.harness import make_config

NOW = datetime.now(UTC).replace(microsecond=0)
HISTORY = timedelta(days=3 * 365)
BATCH = 50
LEASE = timedelta(minutes=2)
CATEGORIES = ("sanitation", "neighbour_dispute", "property_management", "infrastructure",
              "safety_hazard", "labour_dispute")
DESCRIPTION = "楼道里堆满了垃圾，已经一周没人清理了，请尽快处理。" * 2


# -- what a district's history looks like --------------------------------------------------------
#
# Rows are made by the database itself (INSERT … SELECT over a series of numbers): a million
# tickets and their ten million tasks would take Python many minutes to build and send. The
# statements are the same on both backends but for the few expressions below.


class Dialect:
    def __init__(self, sqlite: bool) -> None:
        self.sqlite = sqlite

    def series(self, size: int) -> str:
        if self.sqlite:
            return f"seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {size})"
        return f"seq(n) AS (SELECT generate_series(CAST(1 AS BIGINT), {size}))"

    def ts(self, epoch: str) -> str:
        """A UTC timestamp from seconds since 1970, as gridgate stores it (SQLite: text)."""
        if self.sqlite:
            return f"(datetime({epoch}, 'unixepoch') || '.000000')"
        return f"to_timestamp({epoch})"

    def iso(self, epoch: str) -> str:
        if self.sqlite:
            return f"strftime('%Y-%m-%dT%H:%M:%S+00:00', {epoch}, 'unixepoch')"
        return (f"to_char(to_timestamp({epoch}) AT TIME ZONE 'UTC', "
                f"'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"')")

    def json(self, value: str) -> str:
        return value if self.sqlite else f"CAST({value} AS JSON)"


def pick(r: str, table: tuple[tuple[str, float], ...]) -> str:
    """CASE choosing a status by the share of each, from r in 0..999."""
    whens, bound = [], 0.0
    for status, share in table[:-1]:
        bound += share
        whens.append(f"WHEN {r} < {round(bound * 1000)} THEN '{status}'")
    return f"CASE {' '.join(whens)} ELSE '{table[-1][0]}' END"


def generate_tickets(d: Dialect, size: int, grids: list[int]) -> str:
    """A temporary table `gen` of the tickets' story in seconds since 1970: three years of
    tickets, oldest first, up to NOW. Young tickets are still being worked on; old ones are
    closed (or were withdrawn)."""
    now, day, span = int(NOW.timestamp()), 86_400, int(HISTORY.total_seconds())
    young = pick("r", (("open", .35), ("claimed", .2), ("in_progress", .3), ("resolved", .15)))
    week = pick("r", (("open", .03), ("claimed", .05), ("in_progress", .3), ("resolved", .3),
                      ("closed", .3), ("withdrawn", .02)))
    month = pick("r", (("in_progress", .05), ("resolved", .05), ("closed", .87),
                       ("withdrawn", .03)))
    old = pick("r", (("closed", .97), ("withdrawn", .03)))
    grid = " ".join(f"WHEN {i} THEN {g}" for i, g in enumerate(grids))
    return f"""
CREATE TEMP TABLE gen AS
WITH RECURSIVE {d.series(size)},
base AS (SELECT n, {span} * ({size} - n) / {size} + 300 AS age, (n * 7919) % 1000 AS r,
                CASE n % {len(grids)} {grid} END AS grid, 600000000 + n % 250000 AS reporter
         FROM seq),
s AS (SELECT base.*, {now} - age AS created,
             CASE WHEN age < {day} THEN {young} WHEN age < {7 * day} THEN {week}
                  WHEN age < {30 * day} THEN {month} ELSE {old} END AS status
      FROM base),
c AS (SELECT s.*, CASE WHEN status = 'open' OR created + 300 + (n * 31 % 235) * 60 >= {now}
                       THEN NULL ELSE created + 300 + (n * 31 % 235) * 60 END AS claimed,
             created + 5 * {day} AS deadline
      FROM s),
r AS (SELECT c.*, CASE WHEN status NOT IN ('resolved', 'closed') THEN NULL
                       WHEN COALESCE(claimed, created) + (2 + n * 17 % 95) * 3600 > {now - 60}
                       THEN {now - 60}
                       ELSE COALESCE(claimed, created) + (2 + n * 17 % 95) * 3600 END AS resolved
      FROM c)
SELECT r.*, CASE WHEN status NOT IN ('closed', 'withdrawn') THEN NULL
                 WHEN COALESCE(resolved, created) + (1 + n * 13 % 72) * 3600 > {now}
                 THEN {now}
                 ELSE COALESCE(resolved, created) + (1 + n * 13 % 72) * 3600 END AS closed
FROM r"""


def insert_tickets(d: Dialect) -> str:
    columns = ("id, number, kind, category, status, urgent, description, node_id, grid_id, "
               "latitude, longitude, reporter_id, anonymous, reporter_name, reporter_phone, "
               "language, holder_id, holder_name, group_chat_id, card_message_id, deadline_at, "
               "resolution, created_at, updated_at, resolved_at, closed_at, claimed_at, "
               "on_time, missed_deadline, reopen_count, close_reason, details")
    categories = " ".join(f"WHEN {i} THEN '{c}'" for i, c in enumerate(CATEGORIES))
    return f"""
INSERT INTO ticket ({columns})
SELECT n, 'B-' || n, 'report', CASE n % {len(CATEGORIES)} {categories} END, status,
       n % 50 = 0, '{DESCRIPTION}', grid, grid,
       31.2 + (n % 1000) / 20000.0, 121.45 + (n % 997) / 20000.0, reporter, 1 = 0,
       '居民' || reporter, '+86 138 1234 5678', 'zh_Hans',
       CASE WHEN claimed IS NULL THEN NULL ELSE 700000 + n % 400 END,
       CASE WHEN claimed IS NULL THEN NULL ELSE '网格员' END, -1009000000000 - grid, n,
       {d.ts('deadline')}, CASE WHEN resolved IS NULL THEN NULL ELSE '已清理' END,
       {d.ts('created')}, {d.ts('COALESCE(closed, resolved, claimed, created)')},
       {d.ts('resolved')}, CASE WHEN status = 'closed' THEN {d.ts('closed')} END,
       {d.ts('claimed')}, CASE WHEN resolved IS NULL THEN NULL ELSE resolved <= deadline END,
       1 = 0, 0, CASE status WHEN 'closed' THEN 'rated' WHEN 'withdrawn' THEN 'withdrawn' END,
       {d.json("'{}'")}
FROM gen"""


# The tasks a ticket's life leaves behind, numbered within the ticket (task id = n*10 + k).
TASK_KINDS = ("draft_check", "draft_check", "claim_remind", "claim_escalate", "deadline_remind",
              "deadline_overdue", "deadline_escalate", "survey_ask", "survey_remind",
              "survey_give_up")


def insert_tasks(d: Dialect) -> str:
    """The report's draft had its idle check run once (done) and the other key cancelled;
    the claim timers ran or were cancelled by the claim, or wait for an open ticket; the
    deadline timers wait while it is worked on; a resolution's survey asked, then reminded or
    gave up, or waits. Pending timers that would have fired already wait for later."""
    now, day = int(NOW.timestamp()), 86_400
    kinds = ", ".join(f"({k}, '{kind}')" for k, kind in enumerate(TASK_KINDS))
    working = "status IN ('open', 'claimed', 'in_progress')"
    asked = f"(status = 'closed' OR resolved + 7200 < {now})"
    deadline_payload = (f"'{{\"node_id\": ' || grid || ', \"deadline\": \"' || "
                        f"{d.iso('deadline')} || '\"}}'")
    return f"""
WITH kinds(k, kind) AS (VALUES {kinds}),
t AS (
  SELECT gen.*, k, kind,
         CASE k WHEN 0 THEN created - 240 WHEN 1 THEN created + 3600
                WHEN 2 THEN created + 7200 WHEN 3 THEN created + 28800
                WHEN 4 THEN deadline - {day} WHEN 5 THEN deadline WHEN 6 THEN deadline + {day}
                WHEN 7 THEN resolved + 7200 WHEN 8 THEN resolved + 7200 + {day}
                ELSE resolved + 7200 + {7 * day} END AS due,
         CASE WHEN k = 0 THEN 'done' WHEN k = 1 THEN 'cancelled'
              WHEN k = 2 THEN CASE WHEN status = 'open' THEN 'pending'
                                   WHEN claimed - created > 7200 THEN 'done'
                                   ELSE 'cancelled' END
              WHEN k = 3 THEN CASE WHEN status = 'open' THEN 'pending' ELSE 'cancelled' END
              WHEN k <= 6 THEN CASE WHEN {working} THEN 'pending' ELSE 'cancelled' END
              WHEN k = 7 THEN CASE WHEN {asked} THEN 'done' ELSE 'pending' END
              WHEN k = 8 THEN CASE WHEN status = 'resolved' THEN 'pending'
                                   WHEN n % 3 = 0 THEN 'done' ELSE 'cancelled' END
              ELSE CASE WHEN status = 'resolved' THEN 'pending' ELSE 'cancelled' END
         END AS state
  FROM gen CROSS JOIN kinds
  WHERE k <= 3 OR (k <= 6 AND (status <> 'withdrawn' OR claimed IS NOT NULL))
        OR (k = 7 AND resolved IS NOT NULL) OR (k > 7 AND resolved IS NOT NULL AND {asked}))
INSERT INTO scheduled_task (id, kind, due_at, status, ticket_id, user_id, payload, key,
                            attempts, created_at, done_at)
SELECT n * 10 + k, kind,
       {d.ts(f"CASE WHEN state = 'pending' AND due <= {now} "
             f"THEN {now} + 60 + (n * (k + 1) * 37 % 10080) * 60 ELSE due END")},
       state, CASE WHEN k <= 1 THEN NULL ELSE n END,
       CASE WHEN k <= 1 THEN reporter END,
       {d.json(f'''CASE WHEN k <= 1 THEN '{{"draft_id": ' || n || '}}'
                        WHEN k <= 3 THEN '{{"node_id": ' || grid || '}}'
                        WHEN k <= 6 THEN {deadline_payload}
                        ELSE '{{"round": 0}}' END''')},
       CASE k WHEN 0 THEN 'draft:' || n || ':a' WHEN 1 THEN 'draft:' || n || ':b'
              WHEN 7 THEN 'survey_ask:' || n || ':0' WHEN 8 THEN 'survey_remind:' || n || ':0'
              WHEN 9 THEN 'survey_give_up:' || n || ':0' END,
       0, {d.ts("CASE WHEN due < created THEN due ELSE created END")},
       CASE WHEN state = 'done' THEN {d.ts('due')} END
FROM t"""


async def load(db: Database, size: int, grids: list[int]) -> int:
    """Loads the history as a bulk load would: the indexes dropped meanwhile and built again
    afterwards (the same definitions, read from the database), foreign keys not checked row
    by row (the rows are made consistent; on PostgreSQL only when connected as a superuser).
    Returns the tasks' count."""
    d = Dialect(db.is_sqlite)
    async with db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        if d.sqlite:  # outside a transaction, where these pragmas take effect
            cache = (await (await raw.execute("PRAGMA cache_size")).fetchone())[0]
            await raw.execute("PRAGMA foreign_keys = OFF")
            await raw.execute("PRAGMA cache_size = -500000")  # 500 MB, for the load only
        try:
            async with conn.begin():
                if d.sqlite:
                    rows = await conn.exec_driver_sql(
                        "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                        "AND sql IS NOT NULL AND tbl_name IN ('ticket', 'scheduled_task')")
                else:
                    if await conn.scalar(text("SELECT rolsuper FROM pg_roles "
                                              "WHERE rolname = current_user")):
                        await conn.exec_driver_sql(
                            "SET LOCAL session_replication_role = replica")
                    await conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
                    rows = await conn.exec_driver_sql(
                        "SELECT i.indexname, i.indexdef FROM pg_indexes i "
                        "LEFT JOIN pg_constraint c ON c.conname = i.indexname "
                        "WHERE i.schemaname = current_schema() AND c.conname IS NULL "
                        "AND i.tablename IN ('ticket', 'scheduled_task')")
                indexes = list(rows.all())
                for name, _ in indexes:
                    await conn.exec_driver_sql(f'DROP INDEX "{name}"')
                await conn.exec_driver_sql(generate_tickets(d, size, grids))
                await conn.exec_driver_sql(insert_tickets(d))
                await conn.exec_driver_sql(insert_tasks(d))
                await conn.exec_driver_sql("DROP TABLE gen")
                for _, definition in indexes:
                    await conn.exec_driver_sql(definition)
                if not d.sqlite:
                    for table in ("ticket", "scheduled_task"):
                        await conn.exec_driver_sql(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))")
                count = (await conn.exec_driver_sql(
                    "SELECT count(*) FROM scheduled_task")).scalar()
        finally:
            if d.sqlite:  # the connection goes back to the pool as the bot configures it
                await raw.execute("PRAGMA foreign_keys = ON")
                await raw.execute(f"PRAGMA cache_size = {cache}")
        if d.sqlite:
            await raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:  # outside a transaction: VACUUM refuses to run in one
            await raw.execute("VACUUM ANALYZE ticket")
            await raw.execute("VACUUM ANALYZE scheduled_task")
    return count


# -- timing ------------------------------------------------------------------------------------


def summary(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"median {statistics.median(ms):7.2f} ms, p95 {p95:7.2f} ms ({len(ms)} runs)"


async def due_now(db: Database, size: int) -> None:
    """A batch (BATCH tasks) that fell due in the last ten minutes, on the newest tickets;
    each repetition below gets a new one, as the ticker meets one new batch after another."""
    kinds = ("claim_remind", "deadline_overdue", "survey_ask", "claim_escalate")
    async with db.sessions() as session:
        await session.execute(insert(ScheduledTask), [
            {"kind": kinds[k % len(kinds)], "due_at": NOW - timedelta(seconds=600 - 11 * k),
             "status": "pending", "ticket_id": size - k % min(size, 500), "payload": {},
             "attempts": 0, "created_at": NOW - timedelta(hours=3)} for k in range(BATCH)])
        await session.commit()


async def done(db: Database, ids: list[int]) -> None:
    """What running the claimed tasks ends with (untimed here)."""
    async with db.sessions() as session:
        await session.execute(update(ScheduledTask).where(ScheduledTask.id.in_(ids))
                              .values(status="done", done_at=NOW, lease=None))
        await session.commit()


async def time_claim(db: Database, size: int, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        async with UnitOfWork(db) as uow:
            claimed = await uow.tasks.claim_due(NOW, BATCH, LEASE)
            await uow.session.commit()
        times.append(time.perf_counter() - started)
        if len(claimed) != BATCH:
            raise AssertionError(f"claimed {len(claimed)} of the {BATCH} due tasks")
        await done(db, [task_id for task_id, _ in claimed])
        await due_now(db, size)
    return times


async def time_ticks(db: Database, size: int, repeat: int, *, idle: bool) -> list[float]:
    async def nothing(uow, task) -> None:
        pass

    kinds = ("claim_remind", "claim_escalate", "deadline_remind", "deadline_overdue",
             "deadline_escalate", "survey_ask", "survey_remind", "survey_give_up",
             "draft_check")
    # Idle: a moment before the batch fell due, when nothing is due.
    clock = FakeClock(NOW - timedelta(minutes=15) if idle else NOW)
    ticker = Ticker(db, clock, {kind: nothing for kind in kinds}, batch_size=BATCH, lease=LEASE)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        count = await ticker.tick()
        times.append(time.perf_counter() - started)
        if count != (0 if idle else BATCH):
            raise AssertionError(f"the tick ran {count} tasks")
        if not idle:
            await due_now(db, size)
    return times


async def claim_sql(db: Database) -> tuple[str, dict]:
    """The claim query exactly as claim_due sends it, with its parameters."""
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "scheduled_task" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with UnitOfWork(db) as uow:
            await uow.tasks.claim_due(NOW, BATCH, LEASE)  # rolled back on leaving
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    return seen[0]


async def explain(db: Database) -> list[str]:
    statement, parameters = await claim_sql(db)
    async with db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        if db.is_sqlite:
            rows = await (await raw.execute(f"EXPLAIN QUERY PLAN {statement}",
                                            parameters)).fetchall()
            return [statement.replace("\n", " "), *(f"  {row[-1]}" for row in rows)]
        async with raw.transaction():  # FOR UPDATE locks rows; the transaction rolls back
            rows = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *parameters)
            plan = [statement.replace("\n", " "), *(f"  {row[0]}" for row in rows)]
            raise _RollBack(plan)


class _RollBack(Exception):
    def __init__(self, plan: list[str]) -> None:
        self.plan = plan


async def measure(db: Database, backend: str, size: int, repeat: int) -> None:
    config = make_config()
    await prepare(db, config, FakeClock(NOW))
    async with db.sessions() as session:
        grids = list((await session.scalars(select(OrgNode.id).where(
            OrgNode.level == "grid").order_by(OrgNode.id))).all())
    started = time.perf_counter()
    tasks = await load(db, size, grids)
    await due_now(db, size)
    loaded = time.perf_counter() - started
    print(f"{backend}, {size:,} tickets, {tasks + BATCH:,} scheduled tasks "
          f"(loaded in {loaded:.0f} s):")
    async with db.sessions() as session:
        pending = await session.scalar(select(func.count()).select_from(ScheduledTask)
                                       .where(ScheduledTask.status == "pending"))
        tickets = await session.scalar(select(func.count()).select_from(Ticket))
    assert tickets == size, tickets
    print(f"  {pending:,} pending, {BATCH} of them due now")
    await time_claim(db, size, 5)  # warm up: connections, statement caches
    print(f"  claim {BATCH}:     {summary(await time_claim(db, size, repeat))}")
    print(f"  idle tick:    {summary(await time_ticks(db, size, repeat, idle=True))}")
    print(f"  tick of {BATCH}:   "
          f"{summary(await time_ticks(db, size, max(10, repeat // 5), idle=False))}")
    try:
        plan = await explain(db)
    except _RollBack as rolled_back:
        plan = rolled_back.plan
    print("  plan of the claim query:")
    for row in plan:
        print(f"  {row}")
    sys.stdout.flush()


async def run(backend: str, size: int, repeat: int) -> None:
    async with fresh_database(backend) as db:
        if backend != "sqlite":
            await migrate.upgrade(db)
        await measure(db, backend, size, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="numbers of tickets, comma-separated")
    parser.add_argument("--quick", action="store_true", help="10 000 and 100 000 only")
    parser.add_argument("--backend", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    # The demo district comes without groups; the scheduler does not need them.
    logging.getLogger("bot.startup").setLevel(logging.ERROR)
    sizes = [10_000, 100_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    for backend in args.backend.split(","):
        for size in sizes:
            asyncio.run(run(backend, size, args.repeat))


if __name__ == "__main__":
    main()
