"""Conversation throughput, latency and CPU over real HTTP: gridgate as `gridgate run` in a
child process against the sandbox's Bot API server, next to a bare python-telegram-bot echo bot
(bench/http_echo_bot.py), also a child process, under the same residents and messages.

    python bench/http_conversation.py [--residents 50] [--pairs 3]
                                      [--backend sqlite,postgresql] [--mode polling,webhook]
                                      [--at-once K] [--profile DIR] [--no-spec]
                                      [--no-sql-counts]

The sandbox (bot/sandbox: the demo's world, its people and its HTTP Bot API, in this process)
is made afresh for every run. gridgate runs exactly as `gridgate demo` starts it
(`python -m bot run` with the usual configuration and the demo's overlay, plus a file of this
benchmark's: the webhook in webhook mode), on a fresh database: SQLite in a temporary folder,
or a PostgreSQL database `bench_http` created for the run (and upgraded with the project's
migrations, as `gridgate db upgrade` would) and dropped after it. As in the demo, the
administrator adds the bot to the demo's three groups and binds them with /bind; the
benchmark adds a group for each of the district's other grids, bound the same way, so every
report's card goes to a group.

N residents are at it at once (or --at-once of them at a time); each sends the seven updates
of a full report, each after the bot has answered the previous one (a person waits): /report,
a category button, the description, "skip photos", a shared location, "skip contact",
"submit". The echo bot gets the same updates in the same chats (its presses are on its own
last message). Runs alternate, gridgate then echo, --pairs times per backend and mode.

Per run: updates per second over the timed part (after a warm-up of a few residents); latency
per step, from the moment the resident's update is queued in the sandbox until the bot's answer
arrives there: for gridgate the message the resident needs for the next step (the next
question with its buttons; after "submit" the ticket's number), for the echo bot its echo or
its answer to the press; the CPU time (user + system, all threads, from /proc/PID/stat) the
bot's process spent over the timed part, per update.

Keeping up (gridgate): each card's latency, from the arrival of the submit's answer (the
message with the ticket's number) until the first message in a group with that number; the
scheduler's tick, timed inside the process by bench/sql_counter.py (each tick's start and end),
as the longest time in the timed part without a completed tick, set against
`[scheduler] tick_interval`, with APScheduler's "skipped" warnings counted in the log; and the
stop: right after the last resident's answer the bot is sent SIGTERM (as systemd does,
deploy/gridgate.service; SIGINT takes the same path), and the time until its process exits is
set against `[runtime] shutdown_timeout` (killed after 90 s). Cards still queued then are sent
by the stop's drain of the outbox; a card not in a group when the process has exited is counted
as missing (it stays in the outbox for the next start).

The sandbox's flood control (bot/sandbox/flood.py) is off: `demo_sandbox` makes a world
without rate limits, so the bot is never answered 429. gridgate's own sender keeps its own
limits ([delivery]: 30 messages a second overall, 20 a minute per group) for what goes through
its outbox; the residents' answers are sent at once by the handlers. In webhook mode the
sandbox, like Telegram, POSTs one update at a time, in order, each once the previous was
answered 2xx.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import itertools
import json
import os
import pstats
import re
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.conversation import CATEGORIES, DESCRIPTION, PLACES, capacity, steps  # noqa: E402
from bot.config import example_config_path  # noqa: E402
from bot.i18n import Catalogs  # noqa: E402
from bot.sandbox import demo  # noqa: E402
from bot.sandbox import server as sandbox_server  # noqa: E402
from bot.sandbox.people import Person  # noqa: E402
from bot.sandbox.server import Sandbox  # noqa: E402
from bot.sandbox.webhook import WebhookPusher  # noqa: E402

JSON = dict[str, Any]
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_DATABASE = "bench_http"
PG_URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DATABASE}"
FIRST_RESIDENT = 500_000_000
WARM_UP = 5  # residents before the timed part: imports, caches, pools, the first transactions
STEP_TIMEOUT = 120.0
CARDS_TIMEOUT = float(os.environ.get("BENCH_CARDS_TIMEOUT", "300"))
NUMBER = re.compile(r"\d{4}-\d{4}")
STEP_NAMES = ("/report", "category", "description", "skip photos", "location", "skip contact",
              "submit")
GRID_GROUPS_FROM = -1_002_000_000_000  # the benchmark's groups for the other grids
# gridgate's own sender keeps to Telegram's limits (20 messages a minute per group): most of
# the residents' places lie in one grid, so its cards would trickle out for minutes after the
# last answer. The sandbox limits nothing; neither does the sender here.
DELIVERY = """[delivery]
global_per_second = 1000
per_group_per_minute = 100000
per_private_chat_per_second = 1000
"""
STOP_SIGNAL = signal.SIGTERM  # what systemd sends (deploy/gridgate.service); SIGINT is the same
STOP_WAIT = 90.0  # then SIGKILL: long enough to see how far past shutdown_timeout a stop runs
CARD_TARGET = 2.0  # seconds from the submit's answer to the card in its group
TICK_TARGET = 2.0  # seconds a tick may come late (beyond its interval)
COUNTS = "sql-counts.json"  # bench/sql_counter.py writes gridgate's database work here
ADMIN = demo.CENTRE_STAFF  # the demo's administrator (the overlay's [general] admins)


# -- the bot processes -------------------------------------------------------------------------


def longest_gap(ends: list[float], began: float, ended: float) -> float:
    """The longest time within [began, ended] with none of `ends` (counted from the last one
    before `began`, and up to `ended` after the last one)."""
    ends = sorted(ends)
    before = [end for end in ends if end < began]
    points = ([before[-1]] if before else [began]) + \
        [end for end in ends if began <= end <= ended] + [ended]
    return max(b - a for a, b in itertools.pairwise(points))


def tick_gaps(ticks: list[list[float]], began: float, ended: float
              ) -> tuple[float, float | None]:
    """The longest time within [began, ended] with no tick completed, and the longest tick
    that ended in it."""
    within = [tick[1] - tick[0] for tick in ticks if began <= tick[1] <= ended]
    return longest_gap([tick[1] for tick in ticks], began, ended), max(within, default=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    name: str
    command: list[str]
    env: dict[str, str]
    folder: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.name}.log"

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *self.command, cwd=self.folder, env=self.env, stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=log)

    async def stop(self) -> int:
        process = self.process
        assert process is not None
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError(f"{self.name} did not stop within 60 s of SIGTERM") from None

    async def stop_timed(self, signum: int, wait: float) -> tuple[int, float | None]:
        """Signal the process, and the seconds until it exited (None: killed after `wait`)."""
        process = self.process
        assert process is not None
        started = time.perf_counter()
        process.send_signal(signum)
        try:
            status = await asyncio.wait_for(process.wait(), wait)
        except TimeoutError:
            process.kill()
            await process.wait()
            return 0, None  # a stop that overruns is a finding, not a failed run
        return status, time.perf_counter() - started

    @property
    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")


def child_env(token: str, address: str, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (
        "GRIDGATE_TIMEZONE", "GRIDGATE_WEBHOOK_URL", "GRIDGATE_WEBHOOK_SECRET")}
    env.update(PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=token, TELEGRAM_API_BASE_URL=address,
               PYTHONUNBUFFERED="1")
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def gridgate_child(folder: Path, token: str, address: str, database_url: str, mode: str,
                   profile: Path | None, count_sql: bool) -> Child:
    extra = folder / "bench.toml"
    text = DELIVERY
    if mode == "webhook":
        port = free_port()
        text += (f'\n[webhook]\nenabled = true\nurl = "http://127.0.0.1:{port}/telegram/webhook"'
                 f'\n\n[server]\nport = {port}\n')
    extra.write_text(text, "utf-8")
    configs = [Path(str(example_config_path())), demo.overlay_path(), extra]
    runner = [sys.executable, "-m", "cProfile", "-o", str(profile)] if profile else [
        sys.executable]
    bot = [str(ROOT / "bench" / "sql_counter.py"), str(folder / COUNTS)] if count_sql else [
        "-m", "bot"]
    command = [*runner, *bot, "run",
               *(arg for path in configs for arg in ("--config", str(path)))]
    return Child("gridgate", command, child_env(token, address, database_url), folder)


async def sql_counts(child: Child) -> dict[str, int]:
    """gridgate's transactions and statements so far (bench/sql_counter.py, on SIGUSR1)."""
    path = child.folder / COUNTS
    path.unlink(missing_ok=True)
    assert child.process is not None
    child.process.send_signal(signal.SIGUSR1)
    for _ in range(200):
        if path.is_file():
            return json.loads(path.read_text())
        await asyncio.sleep(0.01)
    raise RuntimeError("gridgate did not write its database counts within 2 s")


def echo_child(folder: Path, token: str, address: str, mode: str) -> Child:
    command = [sys.executable, str(ROOT / "bench" / "http_echo_bot.py")]
    if mode == "webhook":
        command += ["--webhook-port", str(free_port())]
    return Child("echo", command, child_env(token, address, None), folder)


# -- the databases -----------------------------------------------------------------------------


async def fresh_postgresql() -> None:
    """An empty database `bench_http`, migrated as `gridgate db upgrade` would."""
    import asyncpg

    from storage import migrate
    from storage.db import create_database

    await drop_postgresql()
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await admin.close()
    db = create_database(PG_URL)
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


async def drop_postgresql() -> None:
    import asyncpg

    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    finally:
        await admin.close()


# -- watching the sandbox ----------------------------------------------------------------------


def buttons(message: JSON) -> list[str]:
    return [b.get("callback_data") or "" for row in (message.get("reply_markup") or {})
            .get("inline_keyboard", []) for b in row]


def text_of(message: JSON) -> str:
    return message.get("text") or message.get("caption") or ""


@dataclass
class Waiter:
    test: Callable[[JSON, bool], bool]  # (the bot's message, edited) -> is it the answer
    future: asyncio.Future
    query_id: str | None = None  # the echo bot: the answer to this press


class Watch:
    """Listens to the sandbox's world: the bot's messages and answers to presses, as they
    arrive; wakes the resident waiting for one; collects the ticket numbers in the groups."""

    def __init__(self, sandbox: Sandbox, groups: set[int]) -> None:
        self.world = sandbox.world
        self.groups = groups
        self.waiting: dict[int, Waiter] = {}
        self.last_from_bot: dict[int, JSON] = {}
        self.group_numbers: set[str] = set()
        self.card_arrived: dict[str, float] = {}  # ticket number -> first seen in a group
        self.bind_answers: set[int] = set()
        self.calls: dict[str, int] = {}
        self.ready = asyncio.Event()
        self.numbers_changed = asyncio.Event()
        sandbox.world.listeners.append(self.on_event)

    def on_event(self, event: JSON) -> None:
        kind = event["event"]
        if kind == "call":
            method = event["method"]
            self.calls[method] = self.calls.get(method, 0) + 1
            if method in ("getUpdates", "setWebhook"):
                self.ready.set()
            return
        if kind == "answer":
            waiter = self.waiting.get(event.get("chat_id"))
            if waiter is not None and waiter.query_id == event["query_id"] and \
                    not waiter.future.done():
                waiter.future.set_result((time.perf_counter(), None))
            return
        if kind != "message":
            return
        chat_id = event["chat_id"]
        message = self.world.messages.get((chat_id, event["message_id"]))
        if message is None or not message.get("from", {}).get("is_bot"):
            return
        if not event["edited"]:
            self.last_from_bot[chat_id] = message
        if chat_id in self.groups:
            if (message.get("reply_to_message") or {}).get("text", "").startswith("/bind"):
                self.bind_answers.add(chat_id)
            found = NUMBER.findall(text_of(message))
            if found:
                now = time.perf_counter()
                for number in found:
                    self.card_arrived.setdefault(number, now)
                self.group_numbers.update(found)
                self.numbers_changed.set()
            return
        waiter = self.waiting.get(chat_id)
        if waiter is not None and waiter.query_id is None and not waiter.future.done() and \
                waiter.test(message, event["edited"]):
            waiter.future.set_result((time.perf_counter(), message))

    def expect(self, chat_id: int, test: Callable[[JSON, bool], bool],
               query_id: str | None = None) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiting[chat_id] = Waiter(test, future, query_id)
        return future


def with_button(prefix: str, after: int = 0) -> Callable[[JSON, bool], bool]:
    return lambda m, edited: m["message_id"] > after and any(
        d.startswith(prefix) for d in buttons(m))


def new_message(after: int, pattern: re.Pattern[str] | None = None
                ) -> Callable[[JSON, bool], bool]:
    return lambda m, edited: not edited and m["message_id"] > after and (
        pattern is None or bool(pattern.search(text_of(m))))


class TimedPusher(WebhookPusher):
    """The sandbox's webhook delivery, unchanged, with the time each POST took until the bot's
    answer (what holds up the next update: the sandbox sends one at a time).

    In polling mode it does not run at all. The sandbox's pusher waits on the same event as
    getUpdates and clears it whenever it wakes without a webhook; an update that arrives
    between a getUpdates' clear() and the start of its wait (wait_for runs the wait as a new
    task) is then not noticed until the long poll's timeout: 10 s for PTB's default. A bot
    that answers fast enough to have its next getUpdates and its answer in flight together
    (the echo bot) met it on about one update in a hundred."""

    acks: list[float] | None = None  # the run's list while it is timed
    delivering = True  # False in polling mode: no pusher, so no lost wake-ups

    async def run(self) -> None:
        if TimedPusher.delivering:
            await super().run()
        else:
            await asyncio.Event().wait()  # until the sandbox stops and cancels it

    async def _post(self, session, hook, update):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return await super()._post(session, hook, update)
        finally:
            if TimedPusher.acks is not None:
                TimedPusher.acks.append(time.perf_counter() - started)


# -- the residents -----------------------------------------------------------------------------


@dataclass
class Run:
    bot: str
    backend: str
    mode: str
    residents: int
    updates: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    by_step: dict[int, list[float]] = field(default_factory=dict)
    cards_after: float | None = None  # seconds from the last answer until the last card
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    sandbox_cpu: float = 0.0  # this process (sandbox and residents) over the timed part
    acks: list[float] = field(default_factory=list)  # webhook POSTs, timed part
    calls: dict[str, int] = field(default_factory=dict)  # Bot API calls, timed part
    transactions: int | None = None  # gridgate's, over the timed part (--sql-counts)
    statements: int | None = None
    cards: list[float] = field(default_factory=list)  # submit's answer -> card in a group, s
    cards_missing: int = 0  # timed tickets whose card had not reached a group at the exit
    tick_gap: float | None = None  # longest time without a completed tick, timed part, s
    tick_longest: float | None = None  # the longest tick that ended in the timed part, s
    tasks: int = 0  # scheduled tasks that ended in the timed part
    task_gap: float | None = None  # longest time without a tick or a task ending, timed part
    ticks_skipped: int = 0  # APScheduler's "skipped" warnings in the log, whole run
    stop: float | None = None  # signal after the last answer -> the process's exit, s
    stop_warnings: list[str] = field(default_factory=list)  # the log's, after the signal

    @property
    def latencies(self) -> list[float]:
        return [s for times in self.by_step.values() for s in times]

    @property
    def rate(self) -> float:
        return self.updates / self.wall


class Residents:
    def __init__(self, sandbox: Sandbox, watch: Watch, gridgate: bool) -> None:
        self.sandbox, self.watch, self.gridgate = sandbox, watch, gridgate
        self.people, self.world = sandbox.people, sandbox.world
        self.numbers: dict[str, int] = {}  # ticket number -> resident (gridgate)
        self.answered: dict[str, float] = {}  # ticket number -> its answer's arrival (timed)

    def add(self, n: int) -> int:
        user_id = FIRST_RESIDENT + n
        if user_id not in self.people.persons:
            self.people.add(Person(user_id, f"居民{n}"))
        return user_id

    async def report(self, n: int, run: Run | None) -> None:
        chat = self.add(n)
        message: JSON | None = None  # the bot's message whose button is pressed next
        for step, (kind, arg) in enumerate(steps(n)):
            mark = self.world._message_ids.get(chat, 0)
            if self.gridgate:
                answer = self._gridgate_step(chat, step, kind, arg, message, mark)
            else:
                answer = self._echo_step(chat, kind, arg, mark)
            started = time.perf_counter()
            try:
                arrived, message = await asyncio.wait_for(answer, STEP_TIMEOUT)
            except TimeoutError:
                raise RuntimeError(f"resident {n}: no answer to step {STEP_NAMES[step]} within "
                                   f"{STEP_TIMEOUT:.0f} s") from None
            if run is not None:
                run.by_step.setdefault(step, []).append(arrived - started)
        if self.gridgate and message is not None:
            number = NUMBER.search(text_of(message))[0]
            self.numbers[number] = n
            if run is not None:
                self.answered[number] = arrived

    def _gridgate_step(self, chat: int, step: int, kind: str, arg: Any, message: JSON | None,
                       mark: int) -> asyncio.Future:
        # What the resident waits for before the next step (see the e2e tests' report()).
        expect = self.watch.expect
        nexts = {
            0: with_button(f"rp:cat:{CATEGORIES[(chat - FIRST_RESIDENT) % len(CATEGORIES)]}",
                           mark),
            1: with_button("rp:back:"),
            2: with_button("rp:skip:media", mark),
            3: new_message(mark),
            4: with_button("rp:skip:contact", mark),
            5: with_button("rp:submit", mark),
            6: new_message(mark, NUMBER),
        }
        answer = expect(chat, nexts[step])
        if kind in ("command", "text"):
            self.people.say(chat, chat, arg)
        elif kind == "location":
            self.people.send_location(chat, chat, *arg)
        else:
            assert message is not None
            data = next(d for d in buttons(message) if d.startswith(arg))
            self.people.press(chat, message["message_id"], chat, data)
        return answer

    def _echo_step(self, chat: int, kind: str, arg: Any, mark: int) -> asyncio.Future:
        if kind in ("command", "text", "location"):
            answer = self.watch.expect(chat, new_message(mark))
            if kind == "location":
                self.people.send_location(chat, chat, *arg)
            else:
                self.people.say(chat, chat, arg)
            return answer
        # A press on the echo bot's last message (which has no buttons: the sandbox's people
        # only press real buttons, so the query is made here as People.press makes it).
        world = self.world
        message = self.watch.last_from_bot[chat]
        query_id = world.unique(str(world.bot_id))
        user = self.people.person(chat).user()
        world.callback_queries[query_id] = {"from": user, "answer": None, "chat_id": chat,
                                            "message_id": message["message_id"]}
        answer = self.watch.expect(chat, lambda m, e: False, query_id)
        world.push_update({"callback_query": {
            "id": query_id, "from": user, "message": copy.deepcopy(message),
            "chat_instance": str(chat), "data": arg}})
        return answer


# -- one run -----------------------------------------------------------------------------------


def extra_groups(sandbox: Sandbox) -> list[tuple[int, str]]:
    """A group for each grid the demo has none for, its administrator in it."""
    codes = [f["properties"]["code"] for f in demo.demo_map()["features"]
             if f["properties"].get("level") == "grid"]
    bound = {code for _, _, _, code in demo.GROUPS}
    made = []
    for i, code in enumerate(sorted(c for c in codes if c not in bound)):
        chat_id = GRID_GROUPS_FROM - i
        sandbox.people.add_group(chat_id, f"{code} 网格员群", {ADMIN: "administrator"})
        made.append((chat_id, code))
    return made


async def one_run(bot: str, backend: str, mode: str, residents: int, spec: Any,
                  catalogs: Catalogs, profile: Path | None, count_sql: bool,
                  at_once: int | None = None, stop_at_once: bool = True) -> Run:
    run = Run(bot, backend, mode, residents, load_before=os.getloadavg())
    folder = Path(tempfile.mkdtemp(prefix=f"gg-bench-http-{bot}-"))
    sandbox = demo.demo_sandbox(demo.new_token(), spec=spec, catalogs=catalogs)
    assert sandbox.world.rate_limits is None  # no flood control: the bot's cost, not Telegram's
    groups = {chat_id for chat_id, _, _, _ in demo.GROUPS}
    if bot == "gridgate":
        extra = extra_groups(sandbox)
        groups |= {chat_id for chat_id, _ in extra}
        demo.bind_groups(sandbox)  # the updates wait in the sandbox for the bot
        for chat_id, code in extra:
            sandbox.people.add_bot(chat_id, ADMIN)
            sandbox.people.say(chat_id, ADMIN, f"/bind {code}")
    watch = Watch(sandbox, groups)
    TimedPusher.delivering = mode == "webhook"
    address = await sandbox.start()
    if bot == "gridgate":
        database_url = f"sqlite+aiosqlite:///{folder / 'gridgate.db'}"
        if backend == "postgresql":
            await fresh_postgresql()
            database_url = PG_URL
        child = gridgate_child(folder, sandbox.token, address, database_url, mode, profile,
                               count_sql)
    else:
        child = echo_child(folder, sandbox.token, address, mode)
    people = Residents(sandbox, watch, bot == "gridgate")
    status: int | None = None
    try:
        await child.start()
        await asyncio.wait_for(watch.ready.wait(), 60)
        if bot == "gridgate":
            deadline = time.monotonic() + 60
            while watch.bind_answers != groups:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"groups not bound: {groups - watch.bind_answers}")
                await asyncio.sleep(0.05)
        await asyncio.gather(*(people.report(n, None) for n in range(WARM_UP)))
        assert child.process is not None
        pid = child.process.pid
        counting = count_sql and bot == "gridgate"
        counts_before = await sql_counts(child) if counting else {}
        cpu_before, ours_before = cpu_seconds(pid), time.process_time()
        calls_before = dict(watch.calls)
        started, started_wall = time.perf_counter(), time.time()
        TimedPusher.acks = run.acks
        todo = iter(range(WARM_UP, WARM_UP + residents))

        async def one_after_another() -> None:
            for n in todo:
                await people.report(n, run)

        try:
            await asyncio.gather(*(one_after_another() for _ in range(at_once or residents)))
        finally:
            TimedPusher.acks = None
        run.wall = time.perf_counter() - started
        ended_wall = time.time()
        run.cpu = cpu_seconds(pid) - cpu_before
        run.sandbox_cpu = time.process_time() - ours_before
        run.calls = {method: count - calls_before.get(method, 0)
                     for method, count in watch.calls.items()
                     if count > calls_before.get(method, 0)}
        if counting:
            counts = await sql_counts(child)
            run.transactions = counts["transactions"] - counts_before["transactions"]
            run.statements = counts["statements"] - counts_before["statements"]
            run.tick_gap, run.tick_longest = tick_gaps(counts["ticks"], started_wall,
                                                       ended_wall)
            run.tasks = sum(1 for end in counts["tasks"] if started_wall <= end <= ended_wall)
            run.task_gap = longest_gap(counts["tasks"] + [t[1] for t in counts["ticks"]],
                                       started_wall, ended_wall)
        run.updates = sum(len(times) for times in run.by_step.values())
        ended = time.perf_counter()
        if stop_at_once:
            # Stopped right after the flood, as an operator's restart would: the cards still
            # queued are sent by the drain of the outbox during the stop.
            log_before = len(child.log)
            status, run.stop = await child.stop_timed(STOP_SIGNAL, STOP_WAIT)
            run.stop_warnings = [ln for ln in child.log[log_before:].splitlines()
                                 if "WARNING" in ln or "ERROR" in ln]
        if bot == "gridgate":
            deadline = time.monotonic() + CARDS_TIMEOUT
            while len(watch.group_numbers) < WARM_UP + residents:
                if stop_at_once:
                    break  # the process is gone: what did not arrive stays in its outbox
                if time.monotonic() > deadline:
                    missing = sorted(set(people.numbers) - watch.group_numbers)
                    raise RuntimeError(f"{len(watch.group_numbers)} tickets reached a group, "
                                       f"{WARM_UP + residents} were submitted; missing "
                                       f"{missing[:10]} (bot's folder kept: {folder})")
                watch.numbers_changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watch.numbers_changed.wait(), 1)
            arrived = [watch.card_arrived[n] for n in people.numbers if n in watch.card_arrived]
            run.cards_after = max(arrived) - ended if arrived else None
            run.cards = [watch.card_arrived[n] - at for n, at in people.answered.items()
                         if n in watch.card_arrived]
            run.cards_missing = len(people.answered) - len(run.cards)
            run.ticks_skipped = child.log.count("skipped: maximum number of running instances")
    finally:
        if child.process is not None and child.process.returncode is None:
            status = await child.stop()
        await sandbox.stop()
        if bot == "gridgate" and backend == "postgresql":
            await drop_postgresql()
    log = child.log
    if status != 0 or "Traceback" in log:
        print(log[-3000:], file=sys.stderr)
        raise RuntimeError(f"{bot} exited with {status} or logged a traceback; log above")
    if sandbox.world.violations:
        raise RuntimeError(f"{bot}: Bot API violations: {sandbox.world.violations[:5]}")
    shutil.rmtree(folder, ignore_errors=True)
    return run


# -- report ------------------------------------------------------------------------------------


def pct(seconds: list[float], p: float) -> float:
    ms = sorted(s * 1000 for s in seconds)
    return statistics.median(ms) if p == 0.5 else ms[min(len(ms) - 1, int(p * len(ms)))]


def line(run: Run) -> str:
    lat = run.latencies
    cards = f" | cards in groups {run.cards_after:4.1f} s after" if run.cards_after is not None \
        else ""
    calls = sorted(run.calls.items(), key=lambda item: -item[1])
    cards += f" | Bot API calls an update {sum(run.calls.values()) / run.updates:.2f} (" + \
        ", ".join(f"{method} {count / run.updates:.2f}" for method, count in calls[:5]) + ")"
    if run.acks:
        cards += (f" | webhook POST answered in p50 {pct(run.acks, 0.5):.1f} p99 "
                  f"{pct(run.acks, 0.99):.1f} ms")
    if run.transactions is not None:
        cards += (f" | {run.transactions / run.updates:.1f} transactions, "
                  f"{run.statements / run.updates:.1f} statements an update")
    if run.bot == "gridgate":
        cards += "\n" + keeping_up(run)
    if run.stop is not None or run.bot == "gridgate":
        cards += f"\n    stop: {stopping(run)}"
    return (f"  {run.bot:8} {run.updates:5} updates in {run.wall:6.2f} s = {run.rate:6.1f}/s | "
            f"p50 {pct(lat, 0.5):6.1f} p99 {pct(lat, 0.99):7.1f} ms | CPU "
            f"{run.cpu / run.updates * 1000:5.2f} ms/update ({run.cpu / run.wall:4.0%} of a core)"
            f" | sandbox+residents CPU {run.sandbox_cpu / run.wall:4.0%} | load before "
            f"{run.load_before[0]:.2f}{cards}")


def keeping_up(run: Run) -> str:
    """The cards' latency after the submit's answer and the scheduler's tick, one run."""
    text = "    cards after the submit's answer: "
    if run.cards:
        late = sum(1 for c in run.cards if c > CARD_TARGET)
        text += (f"p50 {pct(run.cards, 0.5):.0f} p99 {pct(run.cards, 0.99):.0f} max "
                 f"{max(run.cards) * 1000:.0f} ms, {late} of {len(run.cards)} over "
                 f"{CARD_TARGET:.0f} s")
    else:
        text += "none arrived"
    if run.cards_missing:
        text += f", {run.cards_missing} not in a group when the process exited"
    if run.tick_gap is None:
        text += " | ticks: not timed (--no-sql-counts)"
    else:
        late = run.tick_gap - TICK_INTERVAL
        text += (f" | longest time without a tick {run.tick_gap:.1f} s (interval "
                 f"{TICK_INTERVAL:.0f} s: {max(0.0, late):.1f} s late, "
                 f"{'over' if late > TICK_TARGET else 'within'} {TICK_TARGET:.0f} s), longest "
                 f"tick {'-' if run.tick_longest is None else f'{run.tick_longest * 1000:.0f}'}"
                 f" ms, APScheduler skipped {run.ticks_skipped}; {run.tasks} tasks ran, "
                 f"longest time without a tick or a task ending {run.task_gap:.1f} s")
    return text


def stopping(run: Run) -> str:
    name = signal.Signals(STOP_SIGNAL).name
    if run.stop is None:
        text = f"still running {STOP_WAIT:.0f} s after {name}, killed"
    else:
        text = f"exited {run.stop:.1f} s after {name}"
    if run.bot == "gridgate":
        text += f" (shutdown_timeout {SHUTDOWN_TIMEOUT:.0f} s)"
    if run.stop_warnings:
        text += f"; it logged: {' / '.join(w[-160:] for w in run.stop_warnings[:3])}"
    return text


def summary(runs: list[Run]) -> None:
    ours = [r for r in runs if r.bot == "gridgate"]
    echo = [r for r in runs if r.bot == "echo"]
    first = runs[0]
    ratio = statistics.median(r.rate for r in ours) / statistics.median(r.rate for r in echo)
    cpu_ours = statistics.median(r.cpu / r.updates for r in ours)
    cpu_echo = statistics.median(r.cpu / r.updates for r in echo)
    print(f"  {first.backend}/{first.mode}, {first.residents} residents, medians of "
          f"{len(ours)} pairs: gridgate {statistics.median(r.rate for r in ours):.1f}/s, "
          f"echo {statistics.median(r.rate for r in echo):.1f}/s, ratio gridgate/echo "
          f"{ratio:.1%}; CPU per update gridgate {cpu_ours * 1000:.2f} ms, echo "
          f"{cpu_echo * 1000:.2f} ms ({cpu_ours / cpu_echo:.1f}x)")
    for name, group in (("gridgate", ours), ("echo", echo)):
        steps_ms = []
        for step, step_name in enumerate(STEP_NAMES):
            times = [s for r in group for s in r.by_step.get(step, [])]
            steps_ms.append(f"{step_name} {pct(times, 0.5):.0f}/{pct(times, 0.99):.0f}")
        print(f"  {name} by step, p50/p99 ms (all pairs): " + ", ".join(steps_ms))
    cards = [c for r in ours for c in r.cards]
    if cards:
        print(f"  gridgate cards after the submit's answer (all pairs): p50 "
              f"{pct(cards, 0.5):.0f} p99 {pct(cards, 0.99):.0f} max {max(cards) * 1000:.0f} ms; "
              f"not arrived by the exit {sum(r.cards_missing for r in ours)}")
    gaps = [r.tick_gap for r in ours if r.tick_gap is not None]
    if gaps:
        print(f"  gridgate longest time without a tick: {', '.join(f'{g:.1f}' for g in gaps)} s"
              f" (interval {TICK_INTERVAL:.0f} s); APScheduler skipped "
              f"{', '.join(str(r.ticks_skipped) for r in ours)}")
    stops = [r for r in runs if r.bot == "gridgate"]
    print("  gridgate stop after the flood: " + ", ".join(
        "killed" if r.stop is None else f"{r.stop:.1f} s" for r in stops) +
          f" (shutdown_timeout {SHUTDOWN_TIMEOUT:.0f} s); echo: " + ", ".join(
        "killed" if r.stop is None else f"{r.stop:.1f} s" for r in echo))
    sys.stdout.flush()


TICK_INTERVAL = 0.0  # gridgate's [scheduler] tick_interval and [runtime] shutdown_timeout,
SHUTDOWN_TIMEOUT = 0.0  # seconds, from the configuration it runs with (set by main_async)


def configured() -> tuple[float, float]:
    from bot.config import load_config

    config = load_config([Path(str(example_config_path())), demo.overlay_path()],
                         environ={"TELEGRAM_BOT_TOKEN": demo.new_token()})
    return (config.scheduler.tick_interval.total_seconds(),
            config.runtime.shutdown_timeout.total_seconds())


async def main_async(args: argparse.Namespace) -> None:
    global TICK_INTERVAL, SHUTDOWN_TIMEOUT
    TICK_INTERVAL, SHUTDOWN_TIMEOUT = configured()
    spec = None
    if args.spec:
        from tests.telegram_fake import load_spec
        spec = load_spec()
    catalogs = Catalogs.load()
    sandbox_server.WebhookPusher = TimedPusher  # type: ignore[misc]  # the same, timed
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, Python {sys.version.split()[0]}, "
          f"Bot API checks against the specification: {'on' if spec else 'off'}")
    profiles = Path(args.profile) if args.profile else None
    if profiles:
        profiles.mkdir(parents=True, exist_ok=True)
    for backend in args.backend.split(","):
        for mode in args.mode.split(","):
            print(f"{backend}, {mode}, {args.residents} residents, "
                  f"{args.at_once or args.residents} at once, "
                  f"{len(STEP_NAMES)} updates each:")
            runs = []
            for pair in range(args.pairs):
                for bot in ("gridgate", "echo"):
                    profile = profiles / f"gridgate-{backend}-{mode}-{pair}.prof" \
                        if profiles and bot == "gridgate" else None
                    run = await one_run(bot, backend, mode, args.residents, spec, catalogs,
                                        profile, args.sql_counts, args.at_once)
                    runs.append(run)
                    print(line(run), flush=True)
                    if profile is not None:
                        stats = pstats.Stats(str(profile))
                        stats.sort_stats("tottime").print_stats(25)
            summary(runs)
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=50)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--at-once", type=int,
                        help="residents at it at once (default: all of them); 1 gives the "
                             "time of an update with nothing queued")
    parser.add_argument("--backend", default="sqlite,postgresql")
    parser.add_argument("--mode", default="polling,webhook")
    parser.add_argument("--spec", action=argparse.BooleanOptionalAction, default=True,
                        help="check every Bot API call against the specification (the "
                             "sandbox's work, in this process; default on)")
    parser.add_argument("--sql-counts", action=argparse.BooleanOptionalAction, default=True,
                        help="count gridgate's transactions and statements (bench/sql_counter.py "
                             "runs `python -m bot` with SQLAlchemy listeners; default on)")
    parser.add_argument("--profile", metavar="DIR",
                        help="run gridgate under cProfile, one file per run in DIR, and print "
                             "its top functions")
    args = parser.parse_args()
    if args.residents + WARM_UP > capacity():
        parser.error(f"at most {capacity() - WARM_UP} residents (distinct places)")
    assert DESCRIPTION and PLACES
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
