"""Footprint: the memory of a gridgate process with 10 000 drafts in progress, and its
start-up time from `python -m bot run` to the first answered update.

    python bench/footprint.py [--drafts 10000] [--starts 3]

gridgate runs as an operator starts it: `python -m bot run` in a process of its own, long
polling over HTTP a Bot API server in this process (the tests' spec-checked fake Telegram
behind the sandbox's HTTP front, as tests/test_run_polling.py does), on a SQLite database in
a temporary folder, with the packaged configuration and the demo district.

Start-up: a resident's /start waits in the Bot API server before the process is started;
the time is from starting the process until the bot's answer reaches the server. Cold: a
new database, so the start includes creating the schema and loading the demo district;
warm: the database of the drafts below. Each is repeated --starts times (median shown).

Memory: resident set size (VmRSS, and VmHWM, the highest it has been, from /proc) of the
process:

1. just after the warm start, with the drafts in the database: residents' drafts are rows,
   not memory, so this is what the process costs with any number of them;
2. after one update from each of those residents: each sends the description their draft
   waits for, and the bot stores it and asks the next question. Updates go in waves of
   --wave (as the residents' messages arrive over time, not all in one burst), each wave
   answered before the next one comes. Whatever the process keeps per chat or per person
   (the update processor's locks, PTB's chat_data and user_data, caches) shows here.

The drafts: the first 100 are written with the report flow's own service calls (the person
noted, bot.services.reporting's begin, the category chosen, save), as /report and a category
button write them, and their first idle checks are run by the real scheduler tick, as they
would have been by the time the residents answer; the others are copies of those rows
(person, draft, its two idle-check tasks) with their own ids.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select

from bot.clock import SystemClock
from bot.i18n import Catalogs
from bot.runtime import Runtime
from bot.sandbox.api import add_bot_api
from bot.services import reporting, users
from bot.startup import prepare
from scheduler.handlers import task_handlers
from scheduler.ticker import Ticker
from storage.db import create_database
from storage.models import Draft, ScheduledTask, User
from storage.uow import UnitOfWork
from tests.harness import make_config
from tests.telegram_fake import TOKEN, FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
FIRST_RESIDENT = 500_000_000
VISITOR = 400_000_001  # sends /start at each start-up
DESCRIPTION = "楼道里堆满了垃圾，已经一周没人清理了，请尽快处理"


class BotApi:
    """The Bot API server the process polls, noting when each chat got its first answer."""

    def __init__(self) -> None:
        self.fake = FakeTelegram()
        self.server = self.fake.server
        self.server.keep_calls = 1000
        self.answered: dict[int, float] = {}
        self.update_ids = iter(range(1, 10**9))
        original = self.server.call

        async def call(method, params, uploads):
            result = await original(method, params, uploads)
            if method == "sendMessage" and result[0] == 200:
                self.answered.setdefault(int(params["chat_id"]), time.perf_counter())
            return result

        self.server.call = call

    async def start(self) -> str:
        app = web.Application()
        add_bot_api(app, self.server, TOKEN)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        return f"http://{host}:{port}"

    def send(self, user_id: int, text: str) -> None:
        message = {"message_id": self.fake.next_message_id(user_id), "date": int(time.time()),
                   "chat": {"id": user_id, "type": "private", "first_name": "居民"},
                   "from": {"id": user_id, "is_bot": False, "first_name": "居民",
                            "language_code": "zh-hans"},
                   "text": text}
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": len(text.split()[0])}]
        self.fake.queue_update({"update_id": next(self.update_ids), "message": message})

    async def wait_answered(self, chats: list[int], process: asyncio.subprocess.Process,
                            within: float) -> None:
        deadline = time.monotonic() + within
        while not all(chat in self.answered for chat in chats):
            if process.returncode is not None:
                raise SystemExit(f"gridgate stopped (exit status {process.returncode})")
            if time.monotonic() > deadline:
                missing = sum(chat not in self.answered for chat in chats)
                raise SystemExit(f"{missing} of {len(chats)} chats not answered in {within} s")
            await asyncio.sleep(0.01)


class Gridgate:
    """`python -m bot run` on a database in `folder`."""

    def __init__(self, address: str, folder: Path) -> None:
        self.address, self.folder = address, folder
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> float:
        env = {k: v for k, v in os.environ.items()
               if k not in ("GRIDGATE_TIMEZONE", "DATABASE_URL")}
        env.update(PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=TOKEN,
                   TELEGRAM_API_BASE_URL=self.address,
                   DATABASE_URL=f"sqlite+aiosqlite:///{self.folder / 'gridgate.db'}")
        self.log = (self.folder / "gridgate.log").open("ab")
        started = time.perf_counter()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--port", "0", cwd=self.folder, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        return started

    def memory(self) -> dict[str, int]:
        """VmRSS and VmHWM in bytes."""
        found = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) * 1024
        return found

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 60)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self.log.close()
        if self.process.returncode != 0:
            log = (self.folder / "gridgate.log").read_text("utf-8", errors="replace")
            raise SystemExit(f"gridgate exited with {self.process.returncode}:\n{log[-3000:]}")


async def start_up(api: BotApi, folder: Path) -> tuple[Gridgate, float]:
    """Start gridgate with a /start waiting; returns it and the time to the answer."""
    api.answered.pop(VISITOR, None)
    api.send(VISITOR, "/start")
    bot = Gridgate(api.address, folder)
    started = await bot.start()
    await api.wait_answered([VISITOR], bot.process, within=120)
    return bot, api.answered[VISITOR] - started


async def write_drafts(folder: Path, count: int, sample: int = 100) -> None:
    """`count` residents who chose a category and now owe the description.

    The first `sample` go through the report flow's own service calls, as /report and a
    category button make them (the person noted, the draft begun, the category chosen and
    saved), and the real scheduler tick then runs their first idle checks. The others are
    copies of those rows (person, draft, its two idle-check tasks) with their own ids, bulk
    inserted: the same rows, without a minute of waiting."""
    db = create_database(f"sqlite+aiosqlite:///{folder / 'gridgate.db'}")
    config, clock = make_config(), SystemClock()
    rt = Runtime(config=config, db=db, clock=clock, catalogs=Catalogs.load())
    try:
        await prepare(db, config, clock)
        async with UnitOfWork(db) as uow:
            for n in range(min(sample, count)):
                await users.private_language(uow, clock, user_id=FIRST_RESIDENT + n,
                                             telegram_code="zh-hans",
                                             default=config.default_language)
                row, report = await reporting.begin(uow, clock, FIRST_RESIDENT + n,
                                                    config=config)
                report.choose_category(config, "sanitation")
                await reporting.save(uow, clock, row, report)
            await uow.commit()
        await Ticker(db, clock, task_handlers(rt)).tick()
        async with db.sessions() as session:
            person = _columns(await session.get(User, FIRST_RESIDENT))
            draft = _columns(await session.scalar(select(Draft).where(
                Draft.user_id == FIRST_RESIDENT)))
            checks = [_columns(task) for task in (await session.scalars(
                select(ScheduledTask).where(ScheduledTask.user_id == FIRST_RESIDENT)
                .order_by(ScheduledTask.key))).all()]
            next_id = await session.scalar(select(func.max(Draft.id))) + 1
            for first in range(sample, count, 1000):
                people, drafts, tasks = [], [], []
                for n in range(first, min(count, first + 1000)):
                    user_id, draft_id = FIRST_RESIDENT + n, next_id + n - sample
                    people.append({**person, "id": user_id})
                    drafts.append({**draft, "id": draft_id, "user_id": user_id})
                    tasks.extend({**check, "id": None, "user_id": user_id,
                                  "payload": {**check["payload"], "draft_id": draft_id},
                                  "key": f"draft:{draft_id}:{check['key'].rsplit(':', 1)[1]}"}
                                 for check in checks)
                await session.execute(insert(User), people)
                await session.execute(insert(Draft), drafts)
                await session.execute(insert(ScheduledTask),
                                      [{k: v for k, v in t.items() if k != "id"} for t in tasks])
            await session.commit()
            drafts_now = await session.scalar(select(func.count()).select_from(Draft))
        assert drafts_now == count, drafts_now
    finally:
        await db.dispose()


def _columns(row) -> dict:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


def mb(value: int) -> str:
    return f"{value / 2**20:6.1f} MB"


async def run(args: argparse.Namespace) -> None:
    api = BotApi()
    api.address = await api.start()
    try:
        with tempfile.TemporaryDirectory() as temporary:
            base = Path(temporary)
            cold, cold_memory = [], []
            for i in range(args.starts):
                folder = base / f"cold{i}"
                folder.mkdir()
                bot, took = await start_up(api, folder)
                cold.append(took)
                cold_memory.append(bot.memory()["VmRSS"])
                await bot.stop()
            print(f"start-up, new database (schema, demo district): median "
                  f"{statistics.median(cold):.2f} s of {', '.join(f'{t:.2f}' for t in cold)};"
                  f" VmRSS then {mb(int(statistics.median(cold_memory)))}")

            folder = base / "drafts"
            folder.mkdir()
            started = time.perf_counter()
            await write_drafts(folder, args.drafts)
            print(f"{args.drafts} drafts written by the report flow's services in "
                  f"{time.perf_counter() - started:.0f} s")
            warm = []
            for _ in range(args.starts - 1):
                bot, took = await start_up(api, folder)
                warm.append(took)
                await bot.stop()
            bot, took = await start_up(api, folder)
            warm.append(took)
            print(f"start-up, database with {args.drafts} drafts: median "
                  f"{statistics.median(warm):.2f} s of {', '.join(f'{t:.2f}' for t in warm)}")
            try:
                await asyncio.sleep(2)  # the first ticks and the outbox sender settle
                at_start = bot.memory()
                print(f"memory with {args.drafts} drafts, after start-up: VmRSS "
                      f"{mb(at_start['VmRSS'])} (VmHWM {mb(at_start['VmHWM'])})")
                residents = [FIRST_RESIDENT + n for n in range(args.drafts)]
                started = time.perf_counter()
                quarters, marks = [], {len(residents) * q // 4 for q in (1, 2, 3)}
                for first in range(0, len(residents), args.wave):
                    wave = residents[first:first + args.wave]
                    for chat in wave:
                        api.send(chat, DESCRIPTION)
                    await api.wait_answered(wave, bot.process, within=300)
                    done = first + len(wave)
                    if any(first < mark <= done for mark in marks):
                        quarters.append(f"{done}: {mb(bot.memory()['VmRSS']).strip()}")
                took = time.perf_counter() - started
                await asyncio.sleep(2)
                after = bot.memory()
                grown = after["VmRSS"] - at_start["VmRSS"]
                print(f"memory after one update from each of the {len(residents)} residents "
                      f"({len(residents) / took:.0f} updates/s in waves of {args.wave}): "
                      f"VmRSS {mb(after['VmRSS'])} (VmHWM {mb(after['VmHWM'])}), "
                      f"{grown / 2**20:+.1f} MB, {grown / len(residents):+.0f} bytes a chat")
                print(f"  VmRSS on the way, after so many chats: {'; '.join(quarters)}")
            finally:
                await bot.stop()
    finally:
        await api.runner.cleanup()
    api.fake.assert_no_violations()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drafts", type=int, default=10_000)
    parser.add_argument("--starts", type=int, default=3, help="start-ups of each kind")
    parser.add_argument("--wave", type=int, default=200,
                        help="residents' updates sent at once")
    args = parser.parse_args()
    # The drafts' database is prepared here, without groups: nothing to warn about.
    logging.getLogger("bot.startup").setLevel(logging.ERROR)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
