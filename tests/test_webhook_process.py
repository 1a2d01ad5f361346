"""`gridgate run --webhook` as an operator runs it: a real process behind the sandbox's webhook
pusher (Telegram's side), on SQLite. The secret token, health and metrics over HTTP, and a
SIGTERM in the middle of a burst: the process stops taking updates, finishes what it holds,
sends what its outbox has due, exits 0, and the next process handles the rest — each update
once."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
from sqlalchemy import select

from bot.clock import SystemClock
from bot.sandbox import demo
from bot.sandbox.people import Person
from bot.web import SECRET_HEADER
from storage.db import create_database
from storage.models import OutboxMessage
from storage.uow import UnitOfWork
from tests.sandbox_client import BotProcess, Residents, free_port, text_of, until
from tests.telegram_fake import load_spec

# Enough that the burst is still under way when the stop comes (the webhook leases an update
# as it stores it, so a dozen were all answered before it).
RESIDENTS = 40



def write_settings(path: Path, port: int) -> Path:
    path.write_text(f"""
[webhook]
enabled = true
url = "http://127.0.0.1:{port}/telegram/hook"
secret_token = "the-secret"

[runtime]
shutdown_timeout = "15s"
""", "utf-8")
    return path


async def test_webhook_process_secret_health_and_a_clean_stop_mid_burst(tmp_path: Path,
                                                                       catalogs) -> None:
    sandbox = demo.demo_sandbox(demo.new_token(), spec=load_spec(), catalogs=catalogs)
    residents = [Person(6000 + i, f"居民{i}", language_code="zh-hans") for i in range(RESIDENTS)]
    for person in residents:
        sandbox.people.add(person)
    demo.bind_groups(sandbox)
    address = await sandbox.start()
    port = free_port()
    settings = write_settings(tmp_path / "webhook.toml", port)
    people = Residents(sandbox)
    first = BotProcess(address, sandbox.token, tmp_path, settings, name="first",
                       args=("--port", str(port)))
    second = BotProcess(address, sandbox.token, tmp_path, settings, name="second",
                        args=("--port", str(port)))
    base = f"http://127.0.0.1:{port}"
    try:
        await first.start()
        for chat_id, *_ in demo.GROUPS:
            await people.wait_for(chat_id, lambda m: "/bind" in text_of(
                m.get("reply_to_message", {})), "answer to /bind")
        assert sandbox.world.webhook["url"] == f"{base}/telegram/hook"
        async with aiohttp.ClientSession() as session:
            update = {"update_id": 999_999, "message": {
                "message_id": 1, "date": 0, "chat": {"id": 6000, "type": "private"},
                "from": {"id": 6000, "is_bot": False, "first_name": "x"}, "text": "/start"}}
            for headers in ({}, {SECRET_HEADER: "wrong"}):
                async with session.post(f"{base}/telegram/hook", json=update,
                                        headers=headers) as response:
                    assert response.status == 403
            async with session.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with session.get(f"{base}/readyz") as response:
                ready = await response.json()
                assert response.status == 200, ready
            async with session.get(f"{base}/metrics") as response:
                metrics = await response.text()
            assert 'gridgate_webhook_requests_total{outcome="forbidden"} 2.0' in metrics
            assert 'gridgate_updates_total{type="message"} 3.0' in metrics  # the /binds

            # A burst, and SIGTERM while it is under way.
            for person in residents:
                sandbox.people.say(person.id, person.id, "/start")
            await until(lambda: sum(bool(people.bot_messages(p.id)) for p in residents) >= 2,
                        "the first answers")
            # Notices the bot owes (as a resolved ticket's would be), due as it stops.
            await queue_notices(tmp_path / "gridgate.db", [p.id for p in residents[:4]])
            first.process.send_signal(signal.SIGTERM)
            status = await first.stop()
            assert status == 0, first.log[-2000:]
            answered_before = sum(bool(people.bot_messages(p.id)) for p in residents)
            assert await outbox_statuses(tmp_path / "gridgate.db") == ["sent"] * 4

            await second.start()
            # Ready before it is stopped, even when the first one answered the whole burst
            # before its stop (a fast machine): a process stopped while still starting
            # would not exit cleanly, and would say nothing of this.
            await until_ready(session, base)
            await until(lambda: all(people.bot_messages(p.id) for p in residents),
                        "every resident answered", 60)
            await asyncio.sleep(1)
            assert answered_before < RESIDENTS, "the stop came after the burst"
            # Each /start answered once (the forged one from 6000 was never read), plus the
            # four notices.
            assert [len(people.bot_messages(p.id)) for p in residents] == (
                [2] * 4 + [1] * (RESIDENTS - 4))
    finally:
        status_second = await second.stop() if second.process else 0
        if first.process and first.process.returncode is None:
            first.process.kill()
        await sandbox.stop()
    assert status_second == 0, second.log[-2000:]
    log = first.log
    assert "stopping: finishing the work in hand" in log and "stopped" in log
    assert "Traceback" not in log + second.log
    assert "the-secret" not in log and sandbox.token not in log
    assert sandbox.world.violations == []
    print(f"\n{answered_before} of {RESIDENTS} answered before the stop, the rest after")


async def until_ready(session: aiohttp.ClientSession, base: str, within: float = 60) -> None:
    for _ in range(int(within * 10)):
        try:
            async with session.get(f"{base}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass  # not listening yet
        await asyncio.sleep(0.1)
    raise AssertionError(f"the second process was not ready within {within} s")


async def queue_notices(path: Path, chat_ids: list[int]) -> None:
    db = create_database(f"sqlite+aiosqlite:///{path}")
    try:
        async with UnitOfWork(db) as uow:
            now = SystemClock().now()
            for chat_id in chat_ids:
                uow.outbox.add(chat_id=chat_id, method="sendMessage", now=now,
                               params={"chat_id": chat_id, "text": "您的事项已办结"})
            await uow.session.commit()
    finally:
        await db.dispose()


async def outbox_statuses(path: Path) -> list[str]:
    db = create_database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.sessions() as session:
            return list((await session.scalars(
                select(OutboxMessage.status).order_by(OutboxMessage.id))).all())
    finally:
        await db.dispose()
