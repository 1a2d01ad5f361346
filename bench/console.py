"""The centre's console at the size of a real district: map, rates, trend and queue.

    python bench/console.py [--tickets 1000000] [--grids 586] [--runs 5]
                            [--backend sqlite,postgresql] [--no-explain]

Builds a fresh database (SQLite: a file in a temporary folder; PostgreSQL: a throwaway schema
of the machine's server, as the tests use), migrated as in production, with a district of
streets, communities and ``--grids`` grids (squares of about 400 m with ragged edges, as
imported boundaries have) and ``--tickets`` tickets spread over the year before the moment
measured: statuses, first claims, resolutions (with their ``ticket_resolution`` rows),
reopenings and follow-up answers in proportions like a working district's (bulk inserts:
executemany on SQLite, COPY on PostgreSQL). Then it times what the console's door calls
(``bot.services.console``), each inside a read-only unit of work as the door opens it, and
prints the median of ``--runs`` runs of each, and the plan of every statement each ran
(EXPLAIN QUERY PLAN on SQLite, EXPLAIN ANALYZE on PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import event, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.services import console
from bot.services import stats as stats_service
from storage import migrate
from storage.db import Database, create_database
from storage.uow import UnitOfWork
from tests.conftest import fresh_database
from tests.harness import make_config

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Sunday afternoon near the end of a month: "week" is nearly seven days, "month" nearly 29.
NOW = datetime(2026, 11, 29, 16, 0, tzinfo=SHANGHAI).astimezone(UTC)
TARGET_MS = 300.0
STREETS = 8
COMMUNITIES = 62
CELL = 0.004  # degrees: about 340 m east-west, 440 m north-south at Beijing's latitude
WEST, SOUTH = 116.30, 39.85


# -- the district ----------------------------------------------------------------------------

def _square(col: int, row: int, rnd: random.Random) -> str:
    """A square cell whose edges wander a little, with 8 points a side."""
    x0, y0 = WEST + col * CELL, SOUTH + row * CELL
    corners = [(x0, y0), (x0 + CELL, y0), (x0 + CELL, y0 + CELL), (x0, y0 + CELL)]
    ring = []
    for (ax, ay), (bx, by) in zip(corners, corners[1:] + corners[:1], strict=True):
        for k in range(8):
            f = k / 8
            jitter = 0 if k == 0 else rnd.uniform(-0.00006, 0.00006)
            ring.append([round(ax + (bx - ax) * f + (jitter if ay != by else 0), 7),
                         round(ay + (by - ay) * f + (jitter if ax != bx else 0), 7)])
    ring.append(ring[0])
    return json.dumps({"type": "Polygon", "coordinates": [ring]})


def build_tree(grids: int, rnd: random.Random):
    """Rows of org_node (id, code, level, parent_id, name, geometry) and, per grid id, its
    square (west, south)."""
    nodes, squares = [], {}
    nodes.append((1, "BD", "district", None, "演示区", None))
    nodes.append((2, "BD-DESK-LAW", "desk", 1, "法律服务窗口", None))
    nodes.append((3, "BD-DESK-ENT", "desk", 1, "企业服务窗口", None))
    next_id = 4
    street_ids = []
    for s in range(STREETS):
        nodes.append((next_id, f"BD-S{s:02d}", "street", 1, f"第{s + 1}街道", None))
        street_ids.append(next_id)
        next_id += 1
    communities = min(COMMUNITIES, grids)
    per, extra = divmod(grids, communities)
    columns = max(1, round(grids ** 0.5))
    g = 0
    for c in range(communities):
        street = street_ids[c % STREETS]
        community = next_id
        nodes.append((community, f"BD-C{c:03d}", "community", street, f"第{c + 1}社区", None))
        next_id += 1
        for _ in range(per + (1 if c < extra else 0)):
            col, row = g % columns, g // columns
            nodes.append((next_id, f"BD-G{g:04d}", "grid", community, f"第{g + 1}网格",
                          _square(col, row, rnd)))
            squares[next_id] = (WEST + col * CELL, SOUTH + row * CELL)
            next_id += 1
            g += 1
    return nodes, squares


TICKET_COLUMNS = ("id", "number", "kind", "category", "status", "urgent", "description",
                  "node_id", "grid_id", "latitude", "longitude", "reporter_id", "anonymous",
                  "language", "deadline_at", "created_at", "updated_at", "resolved_at",
                  "closed_at", "claimed_at", "claim_due_at", "on_time", "missed_deadline",
                  "reopen_count", "close_reason", "details")
RESOLUTION_COLUMNS = ("id", "ticket_id", "node_id", "resolved_at", "on_time")
SURVEY_COLUMNS = ("id", "ticket_id", "user_id", "round", "node_id", "status", "solved", "score",
                  "created_at", "asked_at", "answered_at")


def build_tickets(count: int, nodes, squares, categories: list[str], rnd: random.Random):
    """Tickets over the 364 days before NOW, as the life cycle would have left them."""
    grids = [n for n in nodes if n[2] == "grid"]
    parent = {n[0]: n[3] for n in nodes}
    desks = [n[0] for n in nodes if n[2] == "desk"]
    span = 364 * 86400.0
    start = NOW - timedelta(seconds=span)
    moments = sorted(start + timedelta(seconds=rnd.random() * span) for _ in range(count))
    per_day: dict[str, int] = {}
    tickets, resolutions, surveys = [], [], []
    for i, created in enumerate(moments, 1):
        local = created.astimezone(SHANGHAI)
        day = local.strftime("%m%d")
        per_day[day] = per_day.get(day, 0) + 1
        number = f"{day}-{per_day[day]:04d}"
        grid = rnd.choice(grids)[0]
        where = rnd.random()
        if where < 0.80:
            node = grid
        elif where < 0.90:
            node = parent[grid]                      # community
        elif where < 0.95:
            node = parent[parent[grid]]              # street
        elif where < 0.97:
            node = 1                                 # district
        else:
            node = rnd.choice(desks)
        urgent = rnd.random() < 0.03
        deadline = created + (timedelta(hours=24) if urgent else timedelta(days=3))
        claim_due = created + timedelta(hours=2)
        age = (NOW - created).total_seconds()
        # Most are claimed within the two hours; some late; a few never.
        claim_after = rnd.lognormvariate(7.0, 1.2)  # seconds; median ~18 min
        claimed = created + timedelta(seconds=claim_after) if claim_after < age else None
        withdrawn = rnd.random() < 0.02
        resolve_after = rnd.lognormvariate(11.3, 0.9)  # median ~22 h
        stuck = rnd.random() < 0.004  # forgotten: still open long after
        resolved = None
        if claimed is not None and not stuck and not withdrawn:
            moment = claimed + timedelta(seconds=resolve_after)
            if moment < NOW:
                resolved = moment
        status, closed, close_reason = "open", None, None
        if withdrawn:
            status, close_reason = "withdrawn", "withdrawn"
            closed = created + timedelta(hours=1) if age > 3600 else None
            if closed is None:
                status, close_reason = "open", None
        elif resolved is not None:
            closed_at = resolved + timedelta(days=1)
            if closed_at < NOW:
                status, closed, close_reason = "closed", closed_at, rnd.choice(
                    ("rated", "unanswered", "unanswered"))
            else:
                status = "resolved"
        elif claimed is not None:
            status = rnd.choice(("claimed", "in_progress"))
        on_time = None if resolved is None else resolved <= deadline
        reopen = 1 if resolved is not None and rnd.random() < 0.03 else 0
        located = rnd.random() < 0.7
        lat = lon = None
        if located:
            w, s = squares[grid]
            lon, lat = w + rnd.random() * CELL, s + rnd.random() * CELL
        updated = closed or resolved or claimed or created
        tickets.append((i, number, "report", rnd.choice(categories), status, urgent, "bench",
                        node, grid, lat, lon, 800_000_000 + rnd.randrange(200_000), False,
                        "zh_Hans", deadline, created, updated, resolved, closed, claimed,
                        claim_due, on_time, False, reopen, close_reason, "{}"))
        if resolved is not None:
            resolutions.append((len(resolutions) + 1, i, node, resolved, on_time))
            if rnd.random() < 0.45 and resolved + timedelta(hours=3) < NOW:
                score = rnd.choices((5, 4, 3, 2, 1), (70, 18, 6, 3, 3))[0]
                answered = resolved + timedelta(hours=3)
                surveys.append((len(surveys) + 1, i, 800_000_000 + i, reopen, node, "answered",
                                score >= 3, score, resolved, resolved + timedelta(hours=2),
                                answered))
    return tickets, resolutions, surveys


# -- loading ---------------------------------------------------------------------------------

def _sqlite_value(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def load_sqlite(path: str, nodes, tickets, resolutions, surveys) -> None:
    conn = sqlite3.connect(path)
    stamp = _sqlite_value(NOW)
    conn.executemany("INSERT INTO org_node (id, code, level, parent_id, name, geometry, "
                     "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     [(*n, stamp, stamp) for n in nodes])
    for table, columns, rows in (("ticket", TICKET_COLUMNS, tickets),
                                 ("ticket_resolution", RESOLUTION_COLUMNS, resolutions),
                                 ("ticket_survey", SURVEY_COLUMNS, surveys)):
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) "
               f"VALUES ({', '.join('?' * len(columns))})")
        conn.executemany(sql, ([_sqlite_value(v) for v in row] for row in rows))
    conn.commit()
    # No ANALYZE: gridgate never runs it on SQLite, so the planner works without statistics
    # there, as it does here. (PostgreSQL's autovacuum analyzes on its own; the load below
    # does it at once.)
    conn.close()


async def load_postgresql(db: Database, nodes, tickets, resolutions, surveys) -> None:
    async with db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        await raw.copy_records_to_table(
            "org_node", records=[(*n, NOW, NOW) for n in nodes],
            columns=("id", "code", "level", "parent_id", "name", "geometry", "created_at",
                     "updated_at"))
        for table, columns, rows in (("ticket", TICKET_COLUMNS, tickets),
                                     ("ticket_resolution", RESOLUTION_COLUMNS, resolutions),
                                     ("ticket_survey", SURVEY_COLUMNS, surveys)):
            await raw.copy_records_to_table(table, records=rows, columns=columns)
        for table in ("org_node", "ticket", "ticket_resolution", "ticket_survey"):
            await raw.execute(f"VACUUM ANALYZE {table}")
        await conn.commit()


# -- timing ----------------------------------------------------------------------------------

class Recorder:
    """The statements a call sends, with their parameters, to EXPLAIN them afterwards."""

    def __init__(self, db: Database) -> None:
        self.statements: list[tuple[str, object]] | None = None
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.statements is not None:
            self.statements.append((statement, parameters))


async def explain(db: Database, backend: str, statement: str, parameters) -> list[str]:
    prefix = "EXPLAIN QUERY PLAN " if backend == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
    async with db.engine.connect() as conn:
        result = await conn.exec_driver_sql(prefix + statement, parameters)
        rows = result.all()
    if backend == "sqlite":
        return [f"{'  ' * (0 if row[1] == 0 else 1)}{row[3]}" for row in rows]
    return [row[0] for row in rows]


@asynccontextmanager
async def database(backend: str, keep: str | None):
    """A fresh database, or with --keep on SQLite the file kept from an earlier run (built
    once, for trying indexes and queries on the same data)."""
    if backend == "sqlite" and keep:
        db = create_database(f"sqlite+aiosqlite:///{keep}")
        try:
            yield db
        finally:
            await db.dispose()
        return
    async with fresh_database(backend) as db:
        yield db


async def _has_tickets(db: Database) -> bool:
    async with db.engine.connect() as conn:
        return bool((await conn.execute(text("SELECT count(*) FROM ticket"))).scalar_one())


async def run_backend(backend: str, args: argparse.Namespace) -> list[tuple[str, float]]:
    config = make_config()
    rnd = random.Random(7)
    async with database(backend, args.keep) as db:
        await migrate.upgrade(db)
        if await _has_tickets(db):
            nodes, _ = build_tree(args.grids, rnd)
            print(f"\n== {backend}: the kept database {args.keep}", flush=True)
            return await measure(db, backend, args, config, nodes)
        began = time.perf_counter()
        nodes, squares = build_tree(args.grids, rnd)
        categories = [c.code for c in config.categories_of("report")] or ["sanitation"]
        tickets, resolutions, surveys = build_tickets(args.tickets, nodes, squares, categories,
                                                      rnd)
        built = time.perf_counter()
        if backend == "sqlite":
            await db.dispose()
            load_sqlite(db.engine.url.database, nodes, tickets, resolutions, surveys)
        else:
            await load_postgresql(db, nodes, tickets, resolutions, surveys)
        loaded = time.perf_counter()
        print(f"\n== {backend}: {len(nodes)} nodes ({args.grids} grids), {len(tickets)} tickets, "
              f"{len(resolutions)} resolutions, {len(surveys)} answers; generated in "
              f"{built - began:.0f} s, loaded in {loaded - built:.0f} s", flush=True)
        del tickets, resolutions, surveys
        return await measure(db, backend, args, config, nodes)


async def measure(db: Database, backend: str, args: argparse.Namespace, config,
              nodes) -> list[tuple[str, float]]:
    community = next(n[0] for n in nodes if n[2] == "community")
    street = next(n[0] for n in nodes if n[2] == "street")
    cases = build_cases(config, community, street)
    recorder = Recorder(db)
    results = []
    for name, call in cases:
        if args.only not in name:
            continue
        times = []
        for n in range(args.runs + 1):  # the first run warms the caches and is not counted
            recorder.statements = [] if n == 0 else None
            t0 = time.perf_counter()
            async with UnitOfWork(db) as uow:
                await call(uow)
            elapsed = (time.perf_counter() - t0) * 1000
            if n == 0:
                statements = recorder.statements
                recorder.statements = None
            else:
                times.append(elapsed)
        median = statistics.median(times)
        results.append((name, median))
        print(f"{name:<34} {median:8.1f} ms{'' if median <= TARGET_MS else '  OVER'}",
              flush=True)
        if args.explain:
            for statement, parameters in statements:
                if not statement.lstrip().upper().startswith("SELECT"):
                    continue
                plan = await explain(db, backend, statement, parameters)
                short = " ".join(statement.split())
                print(f"    -- {short[:160]}{'…' if len(short) > 160 else ''}")
                for line in plan:
                    print(f"       {line}")
    return results


def build_cases(config, community: int, street: int):
    district = 1
    cases = []

    def add(name, make):
        cases.append((name, make))

    add("map: district", lambda uow: console.grid_map(uow, district, NOW, config))
    add("map: community", lambda uow: console.grid_map(uow, community, NOW, config))
    for label, node in (("district", district), ("street", street), ("community", community)):
        for period in ("today", "week", "month"):
            p = console.period_of(period, NOW, config)
            add(f"rates: {label}, {period}",
                lambda uow, node=node, p=p: console.rates(uow, node, p, NOW, config))
    for rate in console.RATES:
        add(f"trend 30 d: district, {rate}",
            lambda uow, rate=rate: console.trend(uow, district, rate, 30, NOW, config))
    add("trend 30 d: community, response",
        lambda uow: console.trend(uow, community, "response", 30, NOW, config))
    for label, node in (("district", district), ("community", community)):
        for view in console.VIEWS:
            add(f"queue: {label}, {view}",
                lambda uow, node=node, view=view: console.queue(uow, node, view, now=NOW,
                                                                config=config))
    add("queue: district, number prefix",
        lambda uow: console.queue(uow, district, "all", number="1128-00", now=NOW,
                                  config=config))
    # What a digest of the same node costs, for comparison.
    p = stats_service.current_period(stats_service.Span.MONTH, NOW, config)
    add("digest report: district, month",
        lambda uow: stats_service.subtree_report(uow, district, p, NOW))
    return cases


async def main_async(args: argparse.Namespace) -> None:
    load = os.getloadavg()
    print(f"console bench: {args.tickets} tickets, {args.grids} grids, median of {args.runs} "
          f"runs; {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}")
    table = {}
    for backend in args.backend.split(","):
        table[backend] = dict(await run_backend(backend, args))
    names = list(next(iter(table.values())))
    if not names:
        return
    backends = list(table)
    print("\n| call | " + " | ".join(backends) + " |")
    print("| --- | " + " | ".join("---:" for _ in backends) + " |")
    for name in names:
        print(f"| {name} | " + " | ".join(f"{table[b][name]:.1f} ms" for b in backends) + " |")
    load = os.getloadavg()
    print(f"\nload average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--grids", type=int, default=586)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backend", default="sqlite,postgresql")
    parser.add_argument("--no-explain", dest="explain", action="store_false")
    parser.add_argument("--keep", metavar="FILE",
                        help="SQLite: build the database in FILE and reuse it on later runs")
    parser.add_argument("--only", default="",
                        help="time only the calls whose name contains this")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
