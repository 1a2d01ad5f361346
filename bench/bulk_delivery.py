"""Bulk delivery: survey questions to N residents through the outbox, against Telegram's limits.

    python bench/bulk_delivery.py [--count 10000] [--backend sqlite,postgresql] [--every 10]

Each backend gets a fresh database (SQLite in a temporary folder; PostgreSQL in a throwaway
schema of the machine's server, as the tests use) with the demo district. N residents each
have a resolved ticket, and the survey's own timer (scheduler/surveys.py: the "survey_ask"
task handler, as the ticker runs it) writes their questions to the outbox: N sendMessage rows
with text and buttons, to N private chats. Then the real OutboxSender of the real Application
(``bot_data.sender_factory``, its background loop as ``gridgate run`` starts it) delivers
them over HTTP, through python-telegram-bot's own client, to the sandbox's Bot API with
Telegram's rate limits on (bot/sandbox/flood.py). The sandbox runs in a process of its own,
as Telegram runs elsewhere, and checks every call against the Bot API specification the
repository keeps (bot/sandbox/apispec/spec/bot-api-10.0.json).

Measured: the time from starting the sender until the last row is recorded sent, against the
limit's own time (N at 30 a second); sent/s every ``--every`` seconds; the 429s the sandbox
gave and the sender received. Passes when it is within 10 % of the limit's time and no 429
came. Quiet hours are switched off so the questions may go at any hour.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import sys
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import build_application
from bot.clock import FakeClock, SystemClock
from bot.config import Config, example_config_path, parse_config
from bot.i18n import Catalogs
from bot.runtime import Runtime
from bot.sandbox import api
from bot.sandbox.flood import RateLimits
from bot.sandbox.world import TOKEN, TelegramServer
from bot.services import routing, surveys
from bot.startup import prepare
from scheduler.surveys import survey_handlers
from storage import migrate
from storage.models import ScheduledTask, Ticket, User
from storage.uow import UnitOfWork
from tests.conftest import fresh_database
from tests.telegram_fake import spec_path

PER_SECOND = RateLimits().per_second
TARGET = 1.10  # within 10 % of the limit's own time
GRID = "SFQ-DH-01-G1"
FIRST_RESIDENT = 50_000_000
LANGUAGES = ("zh-hans", "zh-hant", "en")
BATCH = 500
DESCRIPTION = "楼道里堆满了杂物，影响通行，请尽快处理。"
RESOLUTION = "已清理完毕，并提醒住户不要在楼道堆放杂物。"


# -- the sandbox, in a process of its own --------------------------------------------------------

def _sandbox_process(conn, spec_file: str | None) -> None:
    asyncio.run(_serve_sandbox(conn, spec_file))


async def _serve_sandbox(conn, spec_file: str | None) -> None:
    from bot.sandbox.apispec import BotApiSpec

    spec = BotApiSpec.load(Path(spec_file)) if spec_file else None
    world = TelegramServer(spec, strict=False, rate_limits=RateLimits())
    world.keep_calls = 1000  # as the demo's sandbox keeps them: a bounded heap
    messages: list[int] = []

    def on_event(event: dict) -> None:
        if event["event"] == "message" and not event["edited"]:
            messages.append(event["chat_id"])

    world.listeners.append(on_event)
    app = web.Application()
    api.add_bot_api(app, world, TOKEN)

    async def stats(request: web.Request) -> web.Response:
        flood = world.flood
        return web.json_response({
            "messages": len(messages), "chats": len(set(messages)),
            "refused": dict(flood.refused) if flood else {},
            "violations": world.violations[:5], "violation_count": len(world.violations)})

    app.router.add_get("/bench/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    conn.send(f"http://{host}:{port}")
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
    await runner.cleanup()


class SandboxProcess:
    def __init__(self) -> None:
        path = spec_path()
        self.spec = str(path) if path.is_file() else None
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_sandbox_process, args=(child, self.spec),
                                       daemon=True)
        self.address = ""

    def __enter__(self) -> SandboxProcess:
        self.process.start()
        if not self.conn.poll(60):
            raise RuntimeError("the sandbox did not start")
        self.address = self.conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.send("stop")
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()

    async def stats(self, session: aiohttp.ClientSession) -> dict:
        async with session.get(f"{self.address}/bench/stats") as response:
            return await response.json()


# -- the outbox, filled as the survey timer fills it -----------------------------------------------

def bench_config(address: str) -> Config:
    with example_config_path().open("rb") as f:
        data = tomllib.load(f)
    data["telegram"].update(token=TOKEN, api_base_url=address)
    data["quiet_hours"]["enabled"] = False
    return parse_config(data, source="bench config")


async def fill(rt: Runtime, count: int) -> None:
    """N residents, each with a resolved ticket whose survey question is in the outbox."""
    clock, config = rt.clock, rt.config
    handler = survey_handlers(rt)[surveys.ASK]
    category = config.category("sanitation")
    for start in range(0, count, BATCH):
        residents = range(FIRST_RESIDENT + start, FIRST_RESIDENT + min(count, start + BATCH))
        async with UnitOfWork(rt.db) as uow:
            now = clock.now()
            grid = await uow.nodes.by_code(GRID)
            node = await routing.target_node(uow, category, grid)
            # The tickets are written as they stand when resolved (their way there, with its
            # own timers and events, is not what is measured); the survey is planned by the
            # service that plans it on a resolution.
            resolved = []
            for user_id in residents:
                uow.session.add(User(id=user_id, telegram_language_code=LANGUAGES[user_id % 3],
                                     created_at=now, updated_at=now))
                ticket = Ticket(
                    number=f"B-{user_id - FIRST_RESIDENT:06d}", kind=category.kind,
                    category=category.code, status="resolved", description=DESCRIPTION,
                    node_id=node.id, grid_id=grid.id, reporter_id=user_id, language="zh_Hans",
                    resolution=RESOLUTION, deadline_at=now + timedelta(days=3),
                    created_at=now - timedelta(days=1), updated_at=now, claimed_at=now,
                    resolved_at=now, on_time=True)
                uow.tickets.add(ticket)
                resolved.append(ticket)
            await uow.session.flush()
            for ticket in resolved:
                await surveys.plan(uow, clock, config, ticket)
            await uow.commit()
    # The survey delay is over: each ticket's "survey_ask" task runs, as the ticker runs it.
    clock.advance(config.timings.survey.delay + timedelta(minutes=1))
    while True:
        async with UnitOfWork(rt.db) as uow:
            tasks = (await uow.session.scalars(
                select(ScheduledTask).where(ScheduledTask.kind == surveys.ASK,
                                            ScheduledTask.status == "pending")
                .order_by(ScheduledTask.id).limit(BATCH))).all()
            if not tasks:
                break
            for task in tasks:
                await handler(uow, task)
                task.status, task.done_at = "done", clock.now()
            await uow.commit()


async def pending(rt: Runtime) -> int:
    async with UnitOfWork(rt.db) as uow:
        return await uow.outbox.backlog()


# -- delivering -----------------------------------------------------------------------------------

def received_429(rt: Runtime) -> int:
    return int(rt.metrics.outbox_failures.labels("RetryAfter")._value.get())


async def deliver(rt: Runtime, sandbox: SandboxProcess, count: int, every: float) -> dict:
    app = build_application(rt)
    await app.bot.initialize()
    sender = app.bot_data.sender_factory()
    limit_time = count / PER_SECOND
    deadline = 3 * limit_time + 60
    rows = []
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        sender.start()
        last_report, last_sent = started, 0
        finished = None
        while time.monotonic() - started < deadline:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            sent = int(rt.metrics.outbox_sent._value.get())
            if sent >= count and await pending(rt) == 0:
                finished = now
            if now - last_report >= every or finished:
                stats = await sandbox.stats(session)
                given = sum(stats["refused"].values())
                rows.append((now - started, (sent - last_sent) / (now - last_report), sent,
                             given, received_429(rt)))
                print(f"  {now - started:6.1f} s  {rows[-1][1]:5.1f} sent/s  {sent:6d} sent  "
                      f"429s given {given}, received {received_429(rt)}", flush=True)
                last_report, last_sent = now, sent
            if finished:
                break
        await sender.stop()
        stats = await sandbox.stats(session)
    await app.bot.shutdown()
    elapsed = (finished or time.monotonic()) - started
    return {"elapsed": elapsed, "limit_time": limit_time, "finished": finished is not None,
            "stats": stats, "received_429": received_429(rt), "rows": rows}


async def run(backend: str, count: int, every: float) -> bool:
    async def on(db) -> bool:
        await migrate.upgrade(db)
        with SandboxProcess() as sandbox:
            config = bench_config(sandbox.address)
            # Written on a clock a day behind (the survey delay is moved past on it), the
            # questions are due at once for the sender, which runs on the real time.
            clock = FakeClock(datetime.now(UTC) - timedelta(days=1))
            setup = Runtime(config=config, db=db, clock=clock, catalogs=Catalogs.load())
            await prepare(db, config, clock)
            began = time.monotonic()
            await fill(setup, count)
            waiting = await pending(setup)
            print(f"{backend}: {waiting} survey questions in the outbox for {count} residents "
                  f"(written in {time.monotonic() - began:.0f} s); sandbox "
                  f"{'with' if sandbox.spec else 'WITHOUT'} the Bot API spec; load average "
                  f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
            rt = Runtime(config=config, db=db, clock=SystemClock(), catalogs=setup.catalogs)
            result = await deliver(rt, sandbox, count, every)
        stats = result["stats"]
        given = sum(stats["refused"].values())
        ok = (result["finished"] and result["elapsed"] <= TARGET * result["limit_time"]
              and given == 0 and result["received_429"] == 0)
        print(f"{backend}: {stats['messages']} messages to {stats['chats']} chats in "
              f"{result['elapsed']:.1f} s = {stats['messages'] / result['elapsed']:.2f}/s; "
              f"the limit's own time {result['limit_time']:.1f} s (at {PER_SECOND}/s), "
              f"+{100 * (result['elapsed'] / result['limit_time'] - 1):.1f} %; 429s given "
              f"{given} {stats['refused'] or ''}, received {result['received_429']}; "
              f"{stats['violation_count']} Bot API violations; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}: "
              f"{'PASS' if ok else 'MISS'}", flush=True)
        if stats["violation_count"]:
            print("  violations:", stats["violations"])
        if stats["messages"] != count or stats["chats"] != count:
            print(f"  expected {count} messages to {count} chats, one each")
            ok = False
        return ok

    async with fresh_database(backend) as db:
        return await on(db)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000,
                        help="survey questions, one per resident (default 10000)")
    parser.add_argument("--backend", default="sqlite,postgresql")
    parser.add_argument("--every", type=float, default=10.0,
                        help="seconds between progress lines (default 10)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="  %(name)s: %(message)s")
    logging.getLogger("bot.startup").setLevel(logging.ERROR)  # the demo's groups are not bound
    results = [asyncio.run(run(backend, args.count, args.every))
               for backend in args.backend.split(",")]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
