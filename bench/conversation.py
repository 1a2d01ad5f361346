"""Conversation throughput and latency: residents completing a report through the real bot,
next to a bare python-telegram-bot echo bot measured the same way in the same run.

    python bench/conversation.py [--residents 200] [--concurrency 200,1]
                                 [--backend sqlite,postgresql] [--profile FILE]

Each resident sends the seven updates of a full report, each one after the bot has answered
the previous one (a closed loop, as a person waits for the answer): /report, a category
button, a description, "skip photos", a shared location, "skip contact", "submit".

gridgate runs as in production: the real Application from bot.app.build_application with its
per-chat ordered update processor, the outbox sender and the scheduler tick running beside it,
on a fresh database (SQLite in a temporary folder; PostgreSQL in a throwaway schema of the
machine's server, as the tests use) holding the demo district with a group bound to every
grid. Telegram is the tests' spec-checked fake (tests/telegram_fake), in this process.

The bare bot is a plain Application (PTB's own update processor, as many updates at once as
gridgate's workers) with one MessageHandler that echoes each message and one
CallbackQueryHandler that answers each press; it gets the same updates from the same number
of residents at once, on the same fake Telegram.

Per update it measures the latency, from handing the update to the Application's update
processor until its handling is over (what a resident waits for, less the network), and the
handling itself: from the moment the handlers start on it (after any wait for a worker or
for the chat's previous update) to their end. Updates per second is all updates over the
wall time of the run. Levels of --concurrency say how many residents are at it at once; 1
gives the cost of an update without any queueing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import itertools
import json
import logging
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shapely.geometry import Point, shape
from sqlalchemy import event, func, select
from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.app import build_application
from bot.clock import SystemClock
from bot.i18n import Catalogs
from bot.runtime import Runtime
from bot.startup import prepare
from storage import migrate
from storage.db import Database, create_database
from storage.models import Ticket
from tests.conftest import fresh_database
from tests.harness import ADMIN, make_config
from tests.telegram_fake import TOKEN, FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
DESCRIPTION = "楼道里堆满了垃圾，已经一周没人清理了，请尽快处理"
# Categories a grid handles, none of them an emergency: residents take turns among them, so
# that with the places below no report is ever within 250 m of an open one of its kind (the
# bot would offer to join it instead, a different flow).
CATEGORIES = ("sanitation", "neighbour_dispute", "property_management", "infrastructure")
FIRST_RESIDENT = 500_000_000
WARM_UP = 10  # residents per bot before the timed run: imports, caches, pools
# Unique in the process: gridgate drops an update_id it has handled before.
UPDATE_IDS = itertools.count(1)
QUERY_IDS = itertools.count(1)


# -- the residents ------------------------------------------------------------------------------


def places() -> list[tuple[float, float]]:
    """Points inside the demo district's grids, about 400 m apart."""
    data = json.loads((ROOT / "bot" / "data" / "demo_district.geojson").read_text("utf-8"))
    grids = [shape(f["geometry"]) for f in data["features"]
             if f.get("geometry") and f["properties"]["code"].count("-") == 3]
    west, south, east, north = (min(g.bounds[0] for g in grids), min(g.bounds[1] for g in grids),
                                max(g.bounds[2] for g in grids), max(g.bounds[3] for g in grids))
    points = []
    lat = south + 0.001
    while lat < north:
        lon = west + 0.001
        while lon < east:
            if any(g.contains(Point(lon, lat)) for g in grids):
                points.append((round(lat, 6), round(lon, 6)))
            lon += 0.0042
        lat += 0.0036
    return points


PLACES = places()


def steps(n: int) -> list[tuple[str, Any]]:
    """The seven updates of resident n's report."""
    category = CATEGORIES[n % len(CATEGORIES)]
    lat, lon = PLACES[(n // len(CATEGORIES)) % len(PLACES)]
    return [("command", "/report"), ("press", f"rp:cat:{category}"), ("text", DESCRIPTION),
            ("press", "rp:skip:media"), ("location", (lat, lon)), ("press", "rp:skip:contact"),
            ("press", "rp:submit")]


def capacity() -> int:
    return len(PLACES) * len(CATEGORIES)


class Transport:
    """The fake Telegram, plus what residents need to press buttons: the newest message the
    bot sent each chat, and the newest one with inline buttons. Also counts the time spent in
    the fake (spec checks and its answers), which is the transport's cost, not the bot's."""

    def __init__(self) -> None:
        self.fake = FakeTelegram()
        self.last: dict[int, dict] = {}
        self.buttons: dict[int, tuple[dict, list[str]]] = {}
        self.seconds = 0.0
        self.calls = 0
        server = self.fake.server
        original = server.call

        async def call(method, params, uploads):
            started = time.perf_counter()
            try:
                code, body = await original(method, params, uploads)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1
            result = body.get("result") if code == 200 else None
            if isinstance(result, dict) and "chat" in result:
                chat = result["chat"]["id"]
                self.last[chat] = result
                markup = params.get("reply_markup") or {}
                if "inline_keyboard" in markup:
                    self.buttons[chat] = (result, [b.get("callback_data") for row in
                                                   markup["inline_keyboard"] for b in row])
            return code, body

        server.call = call
        # A long run would otherwise keep every call and message it ever saw.
        server.keep_calls = 1000


class Updates:
    """Update objects as getUpdates would deliver them (cheaply: no spec check per update, so
    the client takes as little of the CPU the figures measure as it can)."""

    def __init__(self, app: Application, transport: Transport) -> None:
        self.bot = app.bot
        self.transport = transport
        self.ids = UPDATE_IDS
        self.queries = QUERY_IDS

    @staticmethod
    def user(n: int) -> dict:
        return {"id": FIRST_RESIDENT + n, "is_bot": False, "first_name": f"居民{n}",
                "language_code": "zh-hans"}

    def message(self, n: int, **content: Any) -> Update:
        user = self.user(n)
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        message = {"message_id": self.transport.fake.next_message_id(user["id"]),
                   "date": int(time.time()), "chat": chat, "from": user, **content}
        return Update.de_json({"update_id": next(self.ids), "message": message}, self.bot)

    def build(self, n: int, kind: str, arg: Any, *, find_button: bool) -> Update:
        if kind == "command":
            return self.message(n, text=arg, entities=[
                {"type": "bot_command", "offset": 0, "length": len(arg)}])
        if kind == "text":
            return self.message(n, text=arg)
        if kind == "location":
            return self.message(n, location={"latitude": arg[0], "longitude": arg[1]})
        assert kind == "press"
        chat = FIRST_RESIDENT + n
        if find_button:
            message, data = self.transport.buttons[chat]
            pressed = next((d for d in data if d and d.startswith(arg)), None)
            if pressed is None:
                raise AssertionError(f"resident {n}: no {arg!r} button in {data}")
        else:
            message, pressed = self.transport.last[chat], arg
        query = {"id": str(next(self.queries)), "from": self.user(n),
                 "chat_instance": str(chat * 7919), "message": message, "data": pressed}
        return Update.de_json({"update_id": next(self.ids), "callback_query": query}, self.bot)


# -- one timed run -----------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    updates: int = 0
    wall: float = 0.0
    latency: list[float] = field(default_factory=list)
    handling: list[float] = field(default_factory=list)
    transport: float = 0.0
    errors: list[BaseException] = field(default_factory=list)
    by_step: dict[int, list[float]] = field(default_factory=dict)  # latencies
    transactions: int = 0  # database transactions and statements (gridgate, timed part)
    statements: int = 0
    cpu: float = 0.0  # the process's CPU time (all threads) over the timed part


async def drive(app: Application, transport: Transport, residents: range, concurrency: int,
                run: Run | None, *, find_button: bool) -> None:
    """Residents complete their reports, `concurrency` of them at a time."""
    updates = Updates(app, transport)
    todo = iter(residents)

    async def handling(coroutine: Awaitable[Any]) -> None:
        started = time.perf_counter()
        try:
            await coroutine
        finally:
            if run is not None:
                run.handling.append(time.perf_counter() - started)

    async def resident() -> None:
        for n in todo:
            for step, (kind, arg) in enumerate(steps(n)):
                update = updates.build(n, kind, arg, find_button=find_button)
                started = time.perf_counter()
                await app.update_processor.process_update(
                    update, handling(app.process_update(update)))
                if run is not None:
                    run.latency.append(time.perf_counter() - started)
                    run.by_step.setdefault(step, []).append(run.latency[-1])

    await asyncio.gather(*(resident() for _ in range(concurrency)))


async def timed(app: Application, transport: Transport, run: Run, residents: range,
                concurrency: int, profile: cProfile.Profile | None) -> None:
    gc.collect()
    spent_before = transport.seconds
    rt = getattr(app.bot_data, "runtime", None)  # the bare bot's bot_data is a plain dict
    engine = rt.db.engine.sync_engine if rt else None

    def began(conn) -> None:
        run.transactions += 1

    def statement(conn, cursor, text, parameters, context, executemany) -> None:
        run.statements += 1

    if engine is not None:
        event.listen(engine, "begin", began)
        event.listen(engine, "before_cursor_execute", statement)
    started, cpu = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    try:
        await drive(app, transport, residents, concurrency, run,
                    find_button=run.name == "gridgate")
    finally:
        if profile is not None:
            profile.disable()
        if engine is not None:
            event.remove(engine, "begin", began)
            event.remove(engine, "before_cursor_execute", statement)
    run.wall = time.perf_counter() - started
    run.cpu = time.process_time() - cpu
    run.updates = len(run.latency)
    run.transport = transport.seconds - spent_before


# -- gridgate ----------------------------------------------------------------------------------


async def bind_groups(app: Application, transport: Transport, db: Database) -> None:
    """A worker group bound to every grid and to the district centre, by the administrator,
    through the bot (untimed)."""
    from storage.models import OrgNode
    async with db.sessions() as session:
        codes = list((await session.scalars(select(OrgNode.code).where(
            OrgNode.level.in_(("grid", "district"))))).all())
    for i, code in enumerate(sorted(codes)):
        chat = {"id": -1009000000000 - i, "type": "supergroup", "title": f"{code} 网格群"}
        text = f"/bind@{app.bot.username} {code}"
        message = {"message_id": transport.fake.next_message_id(chat["id"]),
                   "date": int(time.time()), "chat": chat, "from": ADMIN.to_dict(),
                   "text": text, "entities": [{"type": "bot_command", "offset": 0,
                                               "length": len(text.split()[0])}]}
        update = Update.de_json({"update_id": next(UPDATE_IDS), "message": message}, app.bot)
        await app.update_processor.process_update(update, app.process_update(update))


async def gridgate_run(backend: str, residents: int, concurrency: int,
                       catalogs: Catalogs, profile: cProfile.Profile | None) -> Run:
    run = Run("gridgate")

    async def on(db: Database) -> None:
        if not db.is_sqlite:
            await migrate.upgrade(db)
        config = make_config()
        clock = SystemClock()
        rt = Runtime(config=config, db=db, clock=clock, catalogs=catalogs)
        await prepare(db, config, clock)
        transport = Transport()
        app = build_application(rt, request=transport.fake,
                                get_updates_request=transport.fake.linked())

        async def record(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
            run.errors.append(context.error)

        app.add_error_handler(record)
        await app.initialize()
        await app.post_init(app)  # starts the outbox sender, as run_polling would
        await app.job_queue.start()  # the scheduler tick
        try:
            await bind_groups(app, transport, db)
            await drive(app, transport, range(WARM_UP), min(concurrency, WARM_UP), None,
                        find_button=True)
            await timed(app, transport, run, range(WARM_UP, WARM_UP + residents), concurrency,
                        profile)
        finally:
            await app.job_queue.stop()
            await app.post_stop(app)
            await app.shutdown()
        async with db.sessions() as session:
            tickets = await session.scalar(select(func.count()).select_from(Ticket))
        if tickets != WARM_UP + residents:
            raise AssertionError(f"{tickets} tickets for {WARM_UP + residents} residents")
        transport.fake.assert_no_violations()

    if backend == "sqlite-threads":  # SQLite on aiosqlite's threads, to compare
        with tempfile.TemporaryDirectory() as folder:
            db = create_database(f"sqlite+aiosqlite:///{folder}/bench.db", sqlite_inline=False)
            try:
                await on(db)
            finally:
                await db.dispose()
        return run
    async with fresh_database(backend) as db:
        await on(db)
    return run


# -- the bare bot ------------------------------------------------------------------------------


async def bare_run(residents: int, concurrency: int, workers: int) -> Run:
    run = Run("bare PTB")
    transport = Transport()
    app = (ApplicationBuilder().token(TOKEN).request(transport.fake)
           .get_updates_request(transport.fake.linked()).concurrent_updates(workers).build())

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        await message.chat.send_message(message.text or "received")

    async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.callback_query.answer()

    async def record(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        run.errors.append(context.error)

    app.add_handler(MessageHandler(filters.ALL, echo))
    app.add_handler(CallbackQueryHandler(answer))
    app.add_error_handler(record)
    await app.initialize()
    try:
        await drive(app, transport, range(WARM_UP), min(concurrency, WARM_UP), None,
                    find_button=False)
        await timed(app, transport, run, range(WARM_UP, WARM_UP + residents), concurrency, None)
    finally:
        await app.shutdown()
    transport.fake.assert_no_violations()
    return run


class _SkippedTicks(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "maximum number of running instances" in record.getMessage():
            self.count += 1
            return False
        return True


SKIPPED_TICKS = _SkippedTicks()


# -- report ------------------------------------------------------------------------------------


def percentiles(seconds: list[float]) -> tuple[float, float, float]:
    ms = sorted(s * 1000 for s in seconds)

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, int(p * len(ms)))]

    return statistics.median(ms), pct(0.95), pct(0.99)


def line(run: Run) -> str:
    lat = percentiles(run.latency)
    hand = percentiles(run.handling)
    return (f"  {run.name:9} {run.updates:5} updates in {run.wall:6.2f} s = "
            f"{run.updates / run.wall:6.0f}/s | latency p50 {lat[0]:6.1f} p95 {lat[1]:6.1f} "
            f"p99 {lat[2]:6.1f} ms | handling p50 {hand[0]:5.1f} p95 {hand[1]:6.1f} "
            f"p99 {hand[2]:6.1f} ms | in fake Telegram {run.transport / run.wall:4.0%} of wall"
            f" | CPU {run.cpu * 1000 / max(1, run.updates):5.1f} ms/update")


async def level(backend: str, residents: int, concurrency: int, catalogs: Catalogs,
                profile: cProfile.Profile | None) -> None:
    skipped = SKIPPED_TICKS.count
    ours = await gridgate_run(backend, residents, concurrency, catalogs, profile)
    skipped = SKIPPED_TICKS.count - skipped
    workers = make_config().runtime.max_concurrent_updates
    bare = await bare_run(residents, concurrency, workers)
    print(f"{backend}, {residents} residents, {concurrency} at once "
          f"({len(steps(0))} updates each):")
    print(line(ours))
    print(line(bare))
    ratio = (ours.updates / ours.wall) / (bare.updates / bare.wall)
    print(f"  gridgate's throughput is {ratio:.1%} of the bare bot's; gridgate used "
          f"{ours.transactions / ours.updates:.1f} database transactions and "
          f"{ours.statements / ours.updates:.1f} statements an update (with the outbox "
          f"sender's and the scheduler's, which run beside it)")
    if skipped:
        print(f"  the scheduler's tick (every 5 s) was skipped {skipped} times: the previous "
              f"one was still running, its tasks queued behind the residents' updates")
    names = ("/report", "category", "description", "skip photos", "location", "skip contact",
             "submit")
    print("  gridgate by step, latency p50/p99 ms: " + ", ".join(
        f"{names[step]} {percentiles(times)[0]:.0f}/{percentiles(times)[2]:.0f}"
        for step, times in sorted(ours.by_step.items())))
    for run in (ours, bare):
        if run.errors:
            raise SystemExit(f"{run.name}: handlers raised {run.errors[:3]!r}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=200)
    parser.add_argument("--concurrency", default="200,1",
                        help="residents at it at once, a comma-separated list of levels "
                             "(capped at --residents)")
    parser.add_argument("--backend", default="sqlite,postgresql",
                        help="sqlite, postgresql, or sqlite-threads (SQLite with a thread per "
                             "connection, as aiosqlite runs it, to compare)")
    parser.add_argument("--profile", metavar="FILE",
                        help="cProfile gridgate's timed runs into FILE and print the top")
    args = parser.parse_args()
    if args.residents + WARM_UP > capacity():
        parser.error(f"at most {capacity() - WARM_UP} residents (distinct places)")
    catalogs = Catalogs.load()
    # Each database starts without groups; they are bound right after (bind_groups).
    logging.getLogger("bot.startup").setLevel(logging.ERROR)
    # APScheduler says so when a tick is skipped because the previous one still runs: counted.
    logging.getLogger("apscheduler.scheduler").addFilter(SKIPPED_TICKS)
    logging.getLogger("apscheduler.executors.default").addFilter(SKIPPED_TICKS)
    profile = cProfile.Profile() if args.profile else None
    for backend in args.backend.split(","):
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            asyncio.run(level(backend, args.residents, min(concurrency, args.residents),
                              catalogs, profile))
    if profile is not None:
        profile.dump_stats(args.profile)
        with contextlib.redirect_stdout(sys.stdout):
            pstats.Stats(profile).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
