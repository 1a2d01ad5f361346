"""Several instances: two `gridgate run --webhook` processes on one PostgreSQL database,
behind one entry point that takes turns between them (as a load balancer does), serve the
sandbox's bot while residents report at the same time; one process is SIGKILLed mid-load.

What it proves, from what the people saw and what the database holds:
* no update is lost: every update Telegram pushed was handled, and every resident finished
  (a reply the killed process had not sent yet, after saving the answer, is the one thing it
  can take with it: the resident then does what a person would, /start and "Continue", and
  the test allows a few such recoveries, never most);
* no message is sent twice, except a row the killed process had handed to Telegram without
  recording the answer (counted by the survivor's gridgate_outbox_resent);
* drafts continue on whichever process gets the next update (the processes' logs say which
  handled what, and residents' updates were handled by both);
* each chat's updates are answered in the order they were sent, even in a burst that the
  entry point spreads over both processes;
* scheduled tasks run once: each ticket's group gets exactly one claim reminder.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web
from sqlalchemy import func, select

from bot.sandbox import demo
from bot.sandbox.people import Person
from bot.views.menu import private_help_text as private_help
from bot.views.menu import welcome_text as welcome
from bot.web import SECRET_HEADER
from storage.db import create_database
from storage.models import InboundUpdate, ProcessedUpdate, Ticket
from tests.sandbox_client import ROOT, BotProcess, Residents, free_port, text_of, until
from tests.telegram_fake import load_spec

RESIDENTS = 16
PATIENCE = 15.0
NUMBER = re.compile(r"\d{4}-\d{4}")
HANDLED = re.compile(r"update (\d+) \(\w+\) handled")
JSON = dict


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A PostgreSQL database of its own on the machine's server, dropped afterwards."""
    name = f"gg_instances_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="test")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()



class EntryPoint:
    """One address in front of the instances: each call goes to the next one in turn; one that
    cannot be reached (killed) is skipped, as nginx's proxy_next_upstream does."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.turn = 0
        self.app = web.Application()
        self.app.router.add_post("/telegram/hook", self._forward)
        self.served: collections.Counter[int] = collections.Counter()
        self._session: aiohttp.ClientSession | None = None

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {SECRET_HEADER: request.headers.get(SECRET_HEADER, ""),
                   "Content-Type": "application/json"}
        assert self._session is not None
        for _ in range(len(self.ports)):
            port = self.ports[self.turn % len(self.ports)]
            self.turn += 1
            try:
                async with self._session.post(f"http://127.0.0.1:{port}/telegram/hook",
                                              data=body, headers=headers) as response:
                    self.served[port] += 1
                    return web.Response(status=response.status)
            except aiohttp.ClientConnectionError:
                continue
        return web.Response(status=502)

    async def start(self) -> int:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self._runner.cleanup()
        assert self._session is not None
        await self._session.close()


def write_settings(path: Path, entry_port: int) -> Path:
    """Both instances' settings: the webhook at the entry point, and short leases and timers
    so a dead instance's work is taken over within seconds."""
    path.write_text(f"""
[limits]
duplicate_radius_m = 0                 # everyone reports from the same spot: no "same as …?"

[webhook]
enabled = true
url = "http://127.0.0.1:{entry_port}/telegram/hook"

[runtime]
inbox_lease = "3s"
shutdown_timeout = "10s"

[delivery]
lease = "5s"
per_group_per_minute = 600             # the grid's group gets every card at once here

[scheduler]
tick_interval = "1s"
lease = "5s"

[timings.claim]
remind_after = "6s"
escalate_after = "1h"
""", "utf-8")
    return path


def notable(bots: list[BotProcess]) -> str:
    """The instances' warnings and errors, for a failure's message."""
    return "\n".join(f"{bot.log_path.stem}: {line[:240]}" for bot in bots
                     for line in bot.log.splitlines()
                     if " WARNING " in line or " ERROR " in line or "Error" in line)


def plain(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


async def test_two_instances_behind_one_entry_point_lose_nothing_and_repeat_nothing(
        tmp_path: Path, catalogs) -> None:
    sandbox = demo.demo_sandbox(demo.new_token(), spec=load_spec(), catalogs=catalogs)
    sandbox.world.keep_calls = None  # every call, to count what was sent twice
    residents = [Person(5000 + i, f"居民{i}号", language_code="zh-hans") for i in range(RESIDENTS)]
    for person in residents:
        sandbox.people.add(person)
    pushed: dict[int, list[int]] = collections.defaultdict(list)  # chat -> its update ids
    push = sandbox.world.push_update

    def recording_push(payload: JSON) -> JSON | None:
        update = push(payload)
        if update is not None:
            body = next(iter(payload.values()))
            chat = (body.get("message") or body).get("chat", {}).get("id")
            pushed[chat].append(update["update_id"])
        return update

    sandbox.world.push_update = recording_push  # type: ignore[method-assign]
    demo.bind_groups(sandbox)
    address = await sandbox.start()
    ports = [free_port(), free_port()]
    entry = EntryPoint(ports)
    entry_port = await entry.start()
    settings = write_settings(tmp_path / "instances.toml", entry_port)
    async with fresh_database() as url:
        db_url = url.replace("postgresql://", "postgresql+asyncpg://")
        # PostgreSQL is upgraded deliberately, once, before the instances start.
        upgrade = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "db", "upgrade",
            env={**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await upgrade.communicate()
        assert upgrade.returncode == 0, out.decode()
        bots = [BotProcess(address, sandbox.token, tmp_path, settings, database_url=url,
                           name=name, args=("--verbose", "--port", str(port)))
                for name, port in zip(("a", "b"), ports, strict=True)]
        people = Residents(sandbox)
        try:
            for bot in bots:
                await bot.start()
            for chat_id, *_ in demo.GROUPS:  # the groups' /bind went through
                await people.wait_for(chat_id, lambda m: "/bind" in text_of(
                    m.get("reply_to_message", {})), "answer to /bind")

            async def number_of(uid: int) -> str:
                db = create_database(db_url)
                try:
                    async with db.sessions() as session:
                        return await session.scalar(
                            select(Ticket.number).where(Ticket.reporter_id == uid))
                finally:
                    await db.dispose()

            async def resident_journey(person: Person) -> tuple[str, list[str]]:
                # Patience: past the inbox lease (3 s) and a takeover, a reply that has not
                # come was lost with the killed instance (see Residents.step).
                number = await people.report(person.id, f"第{person.id}号楼下垃圾桶满了很久",
                                             patience=PATIENCE, number_of=number_of)
                mark = people.mark(person.id)
                for command in ("/help", "/start", "/language"):  # a burst, not waiting
                    people.people.say(person.id, person.id, command)
                deadline = time.monotonic() + PATIENCE
                while True:
                    burst = [text_of(m) for m in people.bot_messages(person.id)
                             if m["message_id"] > mark]
                    if len(burst) >= 3 or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.05)
                if len(burst) < 3:
                    people.recoveries.append((person.id, "burst"))
                return number, burst

            journeys = [asyncio.create_task(resident_journey(p)) for p in residents]
            # Mid-load: once a third of all the updates the journeys make have been pushed.
            expected = RESIDENTS * 10
            await until(lambda: sum(len(pushed[p.id]) for p in residents) >= expected // 3,
                        "a third of the load")
            killed_at = time.monotonic()
            bots[0].process.send_signal(signal.SIGKILL)
            try:
                results = await asyncio.wait_for(asyncio.gather(*journeys), 120)
            except AssertionError as exc:  # say what the instances saw
                raise AssertionError(f"{exc}\n{notable(bots)}") from None
            took = time.monotonic() - killed_at

            numbers = [number for number, _ in results]
            assert len(set(numbers)) == RESIDENTS, (numbers, people.recoveries, notable(bots))
            zh = catalogs["zh_Hans"]
            in_order = [plain(private_help(zh)), plain(welcome(zh)), zh("Choose a language:")]
            for _, burst in results:  # answered in the order sent, each once
                assert burst == [text for text in in_order if text in burst], burst
            # A reply lost with the killed instance (saved, not sent: the one window
            # docs/instances.md owns to) is rare: a person in a few, never most.
            assert len(people.recoveries) <= 3, people.recoveries

            # Each ticket's group gets its one claim reminder (a task run once), and then
            # no second one however long the ticks go on.
            def reminders(number: str) -> list[JSON]:
                return [m for m in people.bot_messages(demo.GRID_GROUP)
                        if number in text_of(m) and text_of(m).startswith("⏰")]
            await until(lambda: all(reminders(n) for n in numbers), "every reminder", 40)
            await asyncio.sleep(3)
            assert [len(reminders(n)) for n in numbers] == [1] * RESIDENTS

            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{ports[1]}/metrics") as response:
                    metrics = await response.text()
            resent = float(re.search(r"^gridgate_outbox_resent_total (\S+)$", metrics,
                                     re.M)[1])
        finally:
            status = await bots[1].stop()
            if bots[0].process and bots[0].process.returncode is None:
                bots[0].process.kill()
            await entry.stop()
            await sandbox.stop()
        survivor = bots[1].log
        assert status == 0, survivor[-3000:]
        assert "Traceback" not in survivor, survivor[-3000:]
        assert sandbox.world.violations == [], sandbox.world.violations

        # Nothing sent twice but what the killed process had handed over unanswered.
        sent = collections.Counter(
            (call.params.get("chat_id"), call.params.get("text"))
            for call in sandbox.world.calls
            if call.method == "sendMessage" and call.error is None)
        repeated = sum(count - 1 for count in sent.values())
        assert repeated <= resent, [key for key, count in sent.items() if count > 1]

        # Every ticket exactly once; every pushed update handled; the inbox empty.
        db = create_database(db_url)
        try:
            async with db.sessions() as session:
                tickets = (await session.execute(select(Ticket.reporter_id, Ticket.number)))
                by_reporter = collections.Counter(r for r, _ in tickets.all())
                handled = set((await session.scalars(select(ProcessedUpdate.update_id))).all())
                waiting = await session.scalar(select(func.count()).select_from(InboundUpdate))
        finally:
            await db.dispose()
        assert by_reporter == {p.id: 1 for p in residents}
        everything = {u for ids in pushed.values() for u in ids}
        assert everything <= handled, sorted(everything - handled)[:10]
        assert waiting == 0

        # Drafts went on wherever the next update landed: residents' updates were handled by
        # both processes (the killed one until it died).
        logs = [bot.log for bot in bots]
        handled_by = [set(map(int, HANDLED.findall(log))) for log in logs]
        both = [p.id for p in residents
                if set(pushed[p.id]) & handled_by[0] and set(pushed[p.id]) & handled_by[1]]
        assert len(both) >= RESIDENTS // 2, (len(both), [len(h) for h in handled_by])
        assert entry.served[ports[0]] > 0 and entry.served[ports[1]] > 0
        print(f"\n{RESIDENTS} residents, {len(everything)} updates; after the kill the rest "
              f"took {took:.1f} s; {len(both)} residents' drafts moved between processes; "
              f"{repeated} message(s) sent twice, {resent:.0f} in doubt; replies lost with "
              f"the killed instance: {people.recoveries}")
