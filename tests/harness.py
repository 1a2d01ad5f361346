"""A running gridgate for tests: the real Application on a real database, talking to the
spec-checked fake Telegram. Updates go through the same update processor as in production."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import Application, ContextTypes

from bot.app import build_application
from bot.clock import FakeClock
from bot.config import Config, example_config_path, parse_config
from bot.i18n import Catalogs
from bot.runtime import Runtime
from bot.startup import prepare
from storage.db import Database
from storage.uow import DuplicateUpdate, UnitOfWork
from tests.telegram_fake import TOKEN, FakeTelegram, UpdateFactory, User

ADMIN = User(900_001, "Admin <b>&amp;</b>", username="district_admin", language_code="zh-hans")


def make_config(**sections: Mapping[str, Any]) -> Config:
    """The packaged example config, with an administrator, a token and any overrides."""
    with example_config_path().open("rb") as f:
        data = tomllib.load(f)
    data["general"]["admins"] = [ADMIN.id]
    data["telegram"]["token"] = TOKEN
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_config(data, source="test config")


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class BotEnv:
    app: Application
    fake: FakeTelegram
    updates: UpdateFactory
    runtime: Runtime
    errors: list[BaseException] = field(default_factory=list)
    lock_violations: list[str] = field(default_factory=list)
    monotonic: FakeMonotonic = field(default_factory=lambda: FakeMonotonic())

    @property
    def clock(self) -> FakeClock:
        return self.runtime.clock  # type: ignore[return-value]

    async def deliver(self) -> None:
        """Run the outbox sender until nothing is due, as the background loop would; rate
        limits run on a clock that sleeping moves, so tests never wait for real."""
        await self.app.bot_data.sender_factory(
            monotonic=self.monotonic, sleep=self.monotonic.sleep).drain()

    async def tick(self) -> int:
        """Run the scheduled tasks that are due at the fake clock's time, as the tick would."""
        return await self.app.bot_data.tick()

    async def send(self, update: Update) -> None:
        """Deliver an update the way the polling loop does, and wait until it is handled."""
        await self.app.update_processor.process_update(update, self.app.process_update(update))

    def texts(self, chat_id: int) -> list[str]:
        return self.fake.sent_texts(chat_id)

    def last_text(self, chat_id: int) -> str:
        texts = self.texts(chat_id)
        assert texts, f"nothing was sent to {chat_id}"
        return texts[-1]


async def start_bot(db: Database, catalogs: Catalogs, *, config: Config | None = None,
                    clock: FakeClock | None = None, fake: FakeTelegram | None = None,
                    first_update_id: int = 1) -> BotEnv:
    """Start gridgate; a restarted bot passes a higher first_update_id, as Telegram would."""
    config = config or make_config()
    clock = clock or FakeClock()
    fake = fake or FakeTelegram()
    rt = Runtime(config=config, db=db, clock=clock, catalogs=catalogs)
    await prepare(db, config, clock)
    app = build_application(rt, request=fake, get_updates_request=fake.linked())
    updates = UpdateFactory(app.bot, fake, first_update_id=first_update_id)
    env = BotEnv(app=app, fake=fake, updates=updates, runtime=rt)

    async def record(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        # A second delivery of an update is refused at its commit (DuplicateUpdate): that is
        # how it is dropped, not a handler's error.
        if type(context.error) is not DuplicateUpdate:
            env.errors.append(context.error)

    app.add_error_handler(record)
    _forbid_telegram_calls_inside_a_unit_of_work(env)
    await app.initialize()
    return env


# How many units of work the current task has open (tracked for tests only, see below).
_open_units: ContextVar[int] = ContextVar("open_units", default=0)


def _track_open_units() -> None:
    if getattr(UnitOfWork, "_tracked_for_tests", False):
        return
    enter, leave = UnitOfWork.__aenter__, UnitOfWork.__aexit__

    async def tracked_enter(self):
        self._open_token = _open_units.set(_open_units.get() + 1)
        return await enter(self)

    async def tracked_exit(self, *exc):
        try:
            return await leave(self, *exc)
        finally:
            _open_units.reset(self._open_token)

    UnitOfWork.__aenter__, UnitOfWork.__aexit__ = tracked_enter, tracked_exit
    UnitOfWork._tracked_for_tests = True


def _forbid_telegram_calls_inside_a_unit_of_work(env: BotEnv) -> None:
    """A handler must not wait for Telegram while its unit of work is open: on SQLite every
    transaction holds the single write lock from its start, so that wait would stall every
    other chat and the outbox. Each Bot API call checks the calling task has none open."""
    _track_open_units()
    server = env.fake.server
    original = server.call

    async def call(method, params, uploads):
        if _open_units.get():
            env.lock_violations.append(f"{method} inside an open unit of work")
        return await original(method, params, uploads)

    server.call = call


async def stop_bot(env: BotEnv) -> None:
    # A test that ran post_init started the background outbox sender: stop it like
    # run_polling would, or it would go on delivering other tests' rows.
    await env.app.post_stop(env.app)
    await env.app.shutdown()


class Flood:
    """Every turn at the database (storage.db.Turns) held by a unit of work of its own, and
    units of work queued behind them, as up to 64 updates handled at once are: each notes in
    ``order`` when its turn came. Used with ``async with``; a test ends the held ones one at a
    time (``let_one_go``), so who goes next is decided by the turns alone."""

    def __init__(self, db: Database, waiting: int,
                 label: Callable[[int], str] = "update {}".format) -> None:
        self._db = db
        self._waiting = waiting
        self._label = label
        self.order: list[str] = []
        self._holders: list[tuple[asyncio.Task, asyncio.Event]] = []
        self._queued: list[asyncio.Task] = []

    async def __aenter__(self) -> Flood:
        assert self._db.turns is not None
        for _ in range(self._db.turns.capacity):
            held, go = asyncio.Event(), asyncio.Event()
            self._holders.append((asyncio.create_task(self._hold(held, go)), go))
            await held.wait()
        for n in range(self._waiting):
            self._queued.append(asyncio.create_task(self._update(n)))
        await asyncio.sleep(0)  # each queues for its turn
        return self

    async def _hold(self, held: asyncio.Event, go: asyncio.Event) -> None:
        async with UnitOfWork(self._db):
            held.set()
            await go.wait()

    async def _update(self, n: int) -> None:
        async with UnitOfWork(self._db):
            self.order.append(self._label(n))

    def let_one_go(self) -> None:
        for _, go in self._holders:
            if not go.is_set():
                go.set()
                return

    async def __aexit__(self, *exc: object) -> None:
        for _, go in self._holders:
            go.set()
        await asyncio.gather(*(task for task, _ in self._holders), *self._queued)
