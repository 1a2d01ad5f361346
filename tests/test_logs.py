"""Structured logs: the formats, the context, and a ticket's whole journey
through the real Application logged as JSON at DEBUG, with no personal data in any line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.logs import (
    bind_log_context,
    configure_logging,
    current_log_context,
    log_context,
)
from storage.models import Ticket
from tests.harness import ADMIN, BotEnv
from tests.telegram_fake import TOKEN, Chat, User
from tests.test_report_flow import press

log = logging.getLogger("tests.logs")


@dataclass
class Captured:
    stream: io.StringIO = field(default_factory=io.StringIO)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self, start: int = 0, end: int | None = None) -> list[str]:
        return self.text[start:end].splitlines()

    def records(self, start: int = 0, end: int | None = None) -> list[dict]:
        return [json.loads(line) for line in self.lines(start, end)]


@contextmanager
def captured(fmt: str = "json", level: str = "DEBUG", **options) -> Iterator[Captured]:
    """configure_logging as gridgate does, into a buffer; everything put back afterwards."""
    root = logging.getLogger()
    names = ("httpx", "httpcore", "telegram", "sqlalchemy", "aiosqlite", "apscheduler",
             "aiohttp.access", "matplotlib", "PIL", "alembic")
    levels = {name: logging.getLogger(name).level for name in names}
    root_level = root.level
    out = Captured()
    handler = configure_logging(fmt, level, stream=out.stream, capture_warnings=False,
                                **options)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(root_level)
        for name, value in levels.items():
            logging.getLogger(name).setLevel(value)


# -- the formats and the context ----------------------------------------------------------------


def test_json_lines_have_time_level_logger_message_and_the_context() -> None:
    with captured() as out:
        log.info("outside")
        with log_context(update_id=17):
            log.debug("handling %s", "it")
            bind_log_context(ticket="1205-0001")
            log.warning("ticket known")
            with log_context(task=5):
                log.info("inner")
            log.info("after inner")
        log.info("outside again")
    first, handling, known, inner, after, last = out.records()
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["time"].endswith("Z")
    assert datetime.fromisoformat(first["time"]).utcoffset() == timedelta(0)
    assert (first["level"], first["logger"], first["message"]) == ("INFO", "tests.logs",
                                                                   "outside")
    assert handling["message"] == "handling it" and handling["update_id"] == 17
    assert "ticket" not in handling
    assert known["ticket"] == "1205-0001" and known["level"] == "WARNING"
    assert (inner["update_id"], inner["ticket"], inner["task"]) == (17, "1205-0001", 5)
    assert "task" not in after and after["ticket"] == "1205-0001"
    # Leaving the block forgets what was bound inside it too.
    assert "update_id" not in last and "ticket" not in last
    assert current_log_context() == {}


def test_an_exception_is_its_type_and_traceback_in_one_line() -> None:
    with captured() as out:
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            log.exception("it failed")
        try:
            raise TimeoutError()
        except TimeoutError:
            log.error("timed out", exc_info=True)
    lines = out.lines()
    assert len(lines) == 2
    failed, timed_out = (json.loads(line) for line in lines)
    assert failed["exc_type"] == "ValueError" and failed["message"] == "it failed"
    assert failed["traceback"].startswith("Traceback (most recent call last):")
    assert "test_an_exception_is_its_type_and_traceback" in failed["traceback"]
    assert timed_out["exc_type"] == "TimeoutError"


def test_a_field_given_with_the_call_wins_over_the_context() -> None:
    with captured() as out, log_context(ticket="1205-0001"):
        log.info("other ticket", extra={"ticket": "1205-0002"})
    assert out.records()[0]["ticket"] == "1205-0002"


def test_text_lines_end_with_the_context() -> None:
    with captured("text", "INFO") as out:
        log.debug("not shown at INFO")
        log.info("plain")
        with log_context(update_id=3, ticket="1205-0007"):
            log.info("in context")
    plain, in_context = out.lines()
    assert plain.endswith(" INFO tests.logs: plain")
    assert in_context.endswith(" INFO tests.logs: in context [update_id=3 ticket=1205-0007]")


def test_text_lines_say_their_time_zone() -> None:
    """Tickets show times in the configured zone (+08:00); a log kept on a UTC server must not
    leave the reader to guess which of the two a line's time is."""
    before = datetime.now(UTC)
    with captured("text", "INFO", timezone=ZoneInfo("Asia/Shanghai")) as out:
        log.info("in Shanghai")
    with captured("text", "INFO") as local:
        log.info("the process's own zone")
    stamp = out.lines()[0].split(" INFO ")[0]
    at = datetime.fromisoformat(stamp)
    assert stamp.endswith("+08:00") and at.utcoffset() == timedelta(hours=8)
    assert -timedelta(seconds=1) < at - before < timedelta(minutes=1)  # to the millisecond
    assert datetime.fromisoformat(local.lines()[0].split(" INFO ")[0]).utcoffset() is not None


def test_alembic_says_nothing_at_info() -> None:
    with captured("text", "INFO") as out:
        logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
        logging.getLogger("alembic.runtime.migration").warning("a real problem")
    assert [line.split(": ", 1)[1] for line in out.lines()] == ["a real problem"]


def test_tasks_started_inside_a_context_keep_it_and_do_not_change_it() -> None:
    async def child() -> None:
        bind_log_context(ticket="1205-0009")
        log.info("child")

    async def main() -> None:
        with log_context(update_id=1):
            await asyncio.create_task(child())
            log.info("parent")

    with captured() as out:
        asyncio.run(main())
    child_line, parent_line = [r for r in out.records() if r["logger"] == "tests.logs"]
    assert (child_line["update_id"], child_line["ticket"]) == (1, "1205-0009")
    assert parent_line["update_id"] == 1 and "ticket" not in parent_line


def test_context_fields_must_not_shadow_the_record_or_the_line() -> None:
    for name in ("message", "msg", "level", "time", "name", "exc_type"):
        with pytest.raises(ValueError), log_context(**{name: 1}):
            pass
    with pytest.raises(TypeError), log_context(ticket=object()):  # type: ignore[arg-type]
        pass
    with log_context(ticket=None):  # None leaves a field as it was
        assert current_log_context() == {}


def test_a_second_configuration_replaces_the_first_and_libraries_stay_quiet() -> None:
    with captured() as first:
        with captured() as second:
            log.info("once")
            # At DEBUG, PTB would log whole updates and Bot API URLs with the token.
            logging.getLogger("telegram.ext.Application").debug("Processing update %s", "…")
            logging.getLogger("httpx").info("HTTP Request: POST https://…/bot%s/getMe", TOKEN)
            logging.getLogger("sqlalchemy.engine.Engine").info("INSERT INTO …")
            logging.getLogger("aiosqlite").debug("executing …")
            logging.getLogger("telegram.ext.Application").info("Application started")
        assert first.text == ""
    assert [r["message"] for r in second.records()] == ["once", "Application started"]


def test_unknown_formats_and_levels_are_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("xml", "INFO", stream=io.StringIO())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="log level"):
        configure_logging("json", "LOUD", stream=io.StringIO())


# -- a ticket's journey, logged -----------------------------------------------------------------

# Personal data the test types in; none of it may reach a log line.
RESIDENT = User(710_001, "林秀兰", last_name="欧阳", username="lin_xiulan_88",
                language_code="zh-hans")
PHONE = "+86 139 8765 4321"
PHONE_FORMS = ("139 8765 4321", "13987654321", "8765 4321", "87654321")
DESCRIPTION = "东门路灯坏了三天，晚上很黑，老人摔了一跤"
WORKER_A = User(710_101, "钱网格员", username="qian_grid")
WORKER_B = User(710_102, "孙网格员", username="sun_grid")
WORKER_REPLY = "我们下午带梯子过来修"
RESIDENT_REPLY = "好的，我在家等你们"
RESOLUTION = "已更换灯泡并检查线路"
GROUP = Chat(-1007100000001, "supergroup", title="东湖一社区第1网格")
INSIDE = (31.2301, 121.4202)  # SFQ-DH-01-G1
PERSONAL = (RESIDENT.first_name, RESIDENT.last_name, RESIDENT.username, *PHONE_FORMS,
            DESCRIPTION, DESCRIPTION[:6], WORKER_A.first_name, WORKER_B.first_name,
            WORKER_A.username, WORKER_B.username, WORKER_REPLY, RESIDENT_REPLY, RESOLUTION,
            str(INSIDE[0]), str(INSIDE[1]), TOKEN, TOKEN.split(":")[1])


def _log_each_task(bot: BotEnv) -> None:
    ticker = bot.app.bot_data.tick.__self__

    def logged(kind, handler):
        async def run(uow, task) -> None:
            log.info("running a %s task", kind)
            await handler(uow, task)
        return run

    ticker._handlers = {kind: logged(kind, h) for kind, h in ticker._handlers.items()}


class Windows:
    """Where in the log each update's handling starts and ends."""

    def __init__(self, bot: BotEnv, out: Captured) -> None:
        self.spans: list[tuple[frozenset[int], int, int]] = []
        self._bot, self._out = bot, out
        self._send = bot.send
        bot.send = self.send  # press() and the steps below go through here

    async def send(self, update) -> None:
        start = len(self._out.text)
        await self._send(update)
        self.spans.append((frozenset({update.update_id}), start, len(self._out.text)))

    async def together(self, *updates) -> None:
        start = len(self._out.text)
        await asyncio.gather(*(self._send(u) for u in updates))
        self.spans.append((frozenset(u.update_id for u in updates), start, len(self._out.text)))


async def test_a_ticket_journey_logs_json_with_its_update_and_no_personal_data(
        bot: BotEnv, db) -> None:
    with captured("json", "DEBUG") as out:
        windows = Windows(bot, out)
        await bot.send(bot.updates.command(GROUP, "/bind", "SFQ-DH-01-G1", user=ADMIN))
        for worker in (WORKER_A, WORKER_B):
            bot.fake.set_member(GROUP.id, worker.id, "member")

        await bot.send(bot.updates.command(RESIDENT, "/start"))
        await press(bot, RESIDENT, "rp:new")
        await press(bot, RESIDENT, "rp:cat:infrastructure")
        await bot.send(bot.updates.private_text(RESIDENT, DESCRIPTION))
        await bot.send(bot.updates.photo(RESIDENT))
        await bot.send(bot.updates.location(RESIDENT, *INSIDE))
        await bot.send(bot.updates.contact(RESIDENT, PHONE, user_id=RESIDENT.id))
        await press(bot, RESIDENT, "rp:submit")
        async with db.sessions() as session:
            ticket = await session.scalar(select(Ticket).where(Ticket.reporter_id == RESIDENT.id))
        assert ticket is not None
        await bot.deliver()
        card = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                    if c.params["chat_id"] == GROUP.id and c.params.get("reply_markup"))
        assert "139****4321" in card.params["text"]  # the workers see it; the log does not

        claim = f"tk:claim:{ticket.id}"
        await windows.together(bot.updates.callback(WORKER_A, claim, card.result),
                               bot.updates.callback(WORKER_B, claim, card.result))
        async with db.sessions() as session:
            held = await session.get(Ticket, ticket.id)
        holder = WORKER_A if held.holder_id == WORKER_A.id else WORKER_B
        await bot.deliver()
        await bot.send(bot.updates.group_text(GROUP, holder, WORKER_REPLY, reply_to=card.result))
        await bot.deliver()
        to_resident = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                           if c.params["chat_id"] == RESIDENT.id)
        await bot.send(bot.updates.private_text(RESIDENT, RESIDENT_REPLY,
                                                reply_to=to_resident.result))
        await bot.deliver()
        await bot.send(bot.updates.callback(holder, f"tk:resolve:{ticket.id}", card.result))
        prompt = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                      if c.params["chat_id"] == GROUP.id
                      and c.params.get("reply_markup", {}).get("force_reply"))
        await bot.send(bot.updates.group_text(GROUP, holder, RESOLUTION, reply_to=prompt.result))
        await bot.deliver()
        # The survey's timer: what a task logs names the task and its ticket.
        _log_each_task(bot)
        bot.clock.advance(timedelta(days=1))
        assert await bot.tick() >= 1
        await bot.deliver()
        async with db.sessions() as session:
            done = await session.get(Ticket, ticket.id)
        assert done.status == "resolved"

    # Every line is one JSON object with the four fields.
    records = out.records()
    assert len(records) == len(out.lines()) > 10
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record

    # What was logged while an update was handled carries its update_id.
    assert len(windows.spans) >= 14
    during = 0
    for ids, start, end in windows.spans:
        for record in out.records(start, end):
            assert record.get("update_id") in ids, (sorted(ids), record)
            during += 1
    assert during >= 4  # the binding, the new ticket, the relay both ways at least

    # Lines about the ticket carry its public number, never its database id.
    number = ticket.number
    created = [r for r in records if "created from a report draft" in r["message"]]
    assert created and created[0]["ticket"] == number and number in created[0]["message"]
    assert created[0].get("update_id") is not None
    assert any(r.get("outbox") and r.get("ticket") == number for r in records)
    tasks = [r for r in records if r["message"].startswith("running a ")]
    assert tasks and all(r.get("task") and r.get("ticket") == number for r in tasks), tasks

    # And no personal data anywhere: names, the phone in any spelling, texts, the place.
    for needle in PERSONAL:
        leaks = [line for line in out.lines() if needle in line]
        assert not leaks, (needle, leaks[:3])
