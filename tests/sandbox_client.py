"""End-to-end helpers: the demo's sandbox served over HTTP in the test process, gridgate as a
real child process polling it, and the people acting through the page's own HTTP API.

Nothing here reaches into the bot: what a test knows, it reads from the chats, as a person
would; what the bot did, it did over HTTP.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from bot.config import example_config_path
from bot.sandbox import demo
from bot.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parent.parent
JSON = dict[str, Any]
# The demo's timers, shortened again so a test sees a survey in seconds.
FAST_SURVEY = """
[timings.survey]
delay = "2s"
remind_after = "1m"
give_up_after = "2m"

[scheduler]
tick_interval = "1s"
"""


TICKET_NUMBER = re.compile(r"\d{4}-\d{4}")
ADDRESS = re.compile(r"open (http://\S+?)/? in a browser")


@asynccontextmanager
async def gridgate(cwd: Path, *args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process,
                                                                  str, list[str]]]:
    """`gridgate ARGS` (demo, or run without a token) until it has printed where to go:
    the process, the sandbox's address and what it printed."""
    env = {k: v for k, v in os.environ.items() if k not in (
        "TELEGRAM_BOT_TOKEN", "DATABASE_URL", "TELEGRAM_API_BASE_URL", "GRIDGATE_BOT_API_SPEC")}
    env["PYTHONPATH"] = str(ROOT)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []
    try:
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            assert line, "gridgate stopped before printing an address: " + (
                await process.stderr.read()).decode()
            lines.append(line)
            if "Ctrl+C" in line:  # the end of what the demo prints as it starts
                break
        found = ADDRESS.search("".join(lines))
        assert found, lines
        yield process, found[1], lines
    finally:
        if process.returncode is None:  # a failed test: stop it as Ctrl+C would, then for good
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def stop(process: asyncio.subprocess.Process) -> str:
    process.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(process.communicate(), 45)
    assert process.returncode == 0, err.decode()
    assert "Traceback" not in err.decode() + out.decode()
    return err.decode()


async def running(people: People, within: float = 60) -> dict:
    for _ in range(int(within * 10)):
        state = await people.state()
        if state["bot_status"] == "running":
            return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"the bot is not running after {within} s: {state['bot_status']}")


class BotProcess:
    """`gridgate run` (python -m bot run) against a sandbox, as the demo starts it."""

    def __init__(self, address: str, token: str, folder: Path, *configs: Path,
                 args: tuple[str, ...] = (), database_url: str | None = None,
                 name: str = "bot") -> None:
        self.address, self.token, self.folder = address, token, folder
        self.configs = [Path(str(example_config_path())), demo.overlay_path(), *configs]
        self.args = args
        self.database_url = database_url or f"sqlite+aiosqlite:///{folder / 'gridgate.db'}"
        self.log_path = folder / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("GRIDGATE_TIMEZONE",)}
        env.update(PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=self.token,
                   TELEGRAM_API_BASE_URL=self.address, PYTHONUNBUFFERED="1",
                   DATABASE_URL=self.database_url)
        args = [arg for path in self.configs for arg in ("--config", str(path))]
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", *args, *self.args, cwd=self.folder,
                env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        process = self.process
        assert process is not None
        if process.returncode is None:
            process.send_signal(signum)
        try:
            return await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError("the bot did not stop within 30 s of " + signal.Signals(
                signum).name) from None

    @property
    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")


class People:
    """The page's HTTP API, as the page's script uses it."""

    def __init__(self, session: aiohttp.ClientSession, address: str) -> None:
        self.session, self.address = session, address

    async def state(self) -> JSON:
        async with self.session.get(f"{self.address}/sandbox/state") as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def messages(self, chat_id: int) -> list[JSON]:
        state = await self.state()
        return next(p["messages"] for p in state["panes"] if p["chat_id"] == chat_id)

    async def post(self, path: str, expect: int = 200, **body: Any) -> JSON:
        async with self.session.post(f"{self.address}{path}", json=body) as response:
            found = await response.json()
            assert response.status == expect, found
            return found

    async def say(self, chat_id: int, user_id: int, text: str, *,
                  reply_to: int | None = None) -> JSON:
        sent = await self.post(f"/sandbox/chats/{chat_id}/messages", **{
            "from": user_id, "text": text, "reply_to": reply_to})
        return sent["messages"][0]

    async def location(self, chat_id: int, user_id: int, latitude: float,
                       longitude: float) -> JSON:
        sent = await self.post(f"/sandbox/chats/{chat_id}/messages", **{
            "from": user_id, "location": {"latitude": latitude, "longitude": longitude}})
        return sent["messages"][0]

    async def photos(self, chat_id: int, user_id: int, *pictures: bytes,
                     caption: str = "") -> list[JSON]:
        form = aiohttp.FormData()
        form.add_field("from", str(user_id))
        form.add_field("caption", caption)
        for index, picture in enumerate(pictures):
            form.add_field("photo", picture, filename=f"photo{index}.png",
                           content_type="image/png")
        async with self.session.post(f"{self.address}/sandbox/chats/{chat_id}/messages",
                                     data=form) as response:
            found = await response.json()
            assert response.status == 200, found
            return found["messages"]

    async def press(self, chat_id: int, user_id: int, message: JSON, prefix: str,
                    expect: int = 200) -> JSON:
        data = button_data(message, prefix)
        return await self.post(f"/sandbox/chats/{chat_id}/press", expect, **{
            "from": user_id, "message_id": message["message_id"], "data": data})

    async def wait_for(self, chat_id: int, test: Callable[[JSON], bool], what: str,
                       within: float = 30.0, *, after: int = 0) -> JSON:
        """The newest message in the chat (with an id above ``after``) that passes ``test``."""
        deadline = time.monotonic() + within
        while True:
            found = [m for m in await self.messages(chat_id)
                     if m["message_id"] > after and test(m)]
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                seen = [text_of(m)[:80] for m in (await self.messages(chat_id))[-8:]]
                raise AssertionError(f"no {what} in chat {chat_id} within {within} s; "
                                     f"last messages: {seen}")
            await asyncio.sleep(0.1)

    async def wait_for_button(self, chat_id: int, prefix: str, what: str,
                              within: float = 30.0, *, after: int = 0) -> JSON:
        return await self.wait_for(chat_id, lambda m: has_button(m, prefix), what, within,
                                   after=after)

    async def wait_for_text(self, chat_id: int, needle: str, within: float = 30.0, *,
                            after: int = 0, from_bot: bool = True) -> JSON:
        return await self.wait_for(
            chat_id, lambda m: needle in text_of(m) and m["from"]["is_bot"] == from_bot,
            repr(needle), within, after=after)


def text_of(message: JSON) -> str:
    return message.get("text") or message.get("caption") or ""


def buttons(message: JSON) -> list[JSON]:
    return [b for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


def has_button(message: JSON, prefix: str) -> bool:
    return any(b.get("callback_data", "").startswith(prefix) for b in buttons(message))


def button_data(message: JSON, prefix: str) -> str:
    found = [b["callback_data"] for b in buttons(message)
             if b.get("callback_data", "").startswith(prefix)]
    assert found, f"no button {prefix!r} on message {message['message_id']}: {buttons(message)}"
    return found[0]


def last_id(messages: list[JSON]) -> int:
    return max((m["message_id"] for m in messages), default=0)


async def bound(people: People, sandbox: Sandbox, within: float = 60.0) -> None:
    """Each group has the bot's "this group now serves …" answer to its /bind."""
    for chat_id, _, _, _ in demo.GROUPS:
        await people.wait_for(chat_id, lambda m: m["from"]["is_bot"] and bool(
            m.get("reply_to_message", {}).get("text", "").startswith("/bind")),
            "answer to /bind", within)


def png(width: int = 8, height: int = 6, colour: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    """A small real PNG (the bot downloads and re-sends it)."""
    import struct
    import zlib

    raw = b"".join(b"\x00" + bytes(colour) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def free_port() -> int:
    """A port nothing listens on now (for a process to be told to listen on)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until(test: Callable[[], bool], what: str, within: float = 30.0) -> None:
    """Wait until ``test()`` holds, looking every 50 ms."""
    deadline = time.monotonic() + within
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(0.05)


class Residents:
    """The sandbox's people, acted in this process; what they see is read from its world."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.world = sandbox.world
        self.people = sandbox.people
        self.recoveries: list[tuple[int, str]] = []

    def bot_messages(self, chat_id: int) -> list[JSON]:
        return [m for (chat, _), m in sorted(self.world.messages.items())
                if chat == chat_id and m.get("from", {}).get("is_bot")]

    async def wait_for(self, chat_id: int, test: Callable[[JSON], bool], what: str, *,
                       after: int = 0, within: float = 60) -> JSON:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = [m for m in self.bot_messages(chat_id) if m["message_id"] > after and test(m)]
            if found:
                return found[-1]
            await asyncio.sleep(0.05)
        seen = [text_of(m)[:60] for m in self.bot_messages(chat_id)[-5:]]
        raise AssertionError(f"{chat_id}: no {what} within {within} s; last: {seen}")

    def mark(self, chat_id: int) -> int:
        return max((m["message_id"] for (c, _), m in self.world.messages.items()
                    if c == chat_id), default=0)

    async def button(self, chat_id: int, prefix: str, what: str, after: int) -> JSON:
        return await self.wait_for(chat_id, lambda m: has_button(m, prefix), what, after=after)

    def press(self, chat_id: int, message: JSON, prefix: str) -> None:
        self.people.press(chat_id, message["message_id"], chat_id, button_data(message, prefix))

    async def step(self, uid: int, act: Callable[[], None], expect: Callable[[JSON], bool],
                   what: str, *, patience: float) -> JSON:
        """Act, then wait for the bot's answer. An answer that does not come within
        ``patience`` seconds is what a person sees when an instance died between saving their
        answer and replying (docs/instances.md): they send /start and press "Continue my
        report", and the bot asks the current question again. Each time is noted in
        ``recoveries``."""
        mark = self.mark(uid)
        act()
        try:
            return await self.wait_for(uid, expect, what, after=mark, within=patience)
        except AssertionError:
            self.recoveries.append((uid, what))
        mark = self.mark(uid)
        self.people.say(uid, uid, "/start")
        offer = await self.button(uid, "rp:resume", "offer to continue", mark)
        mark = self.mark(uid)
        self.press(uid, offer, "rp:resume")
        return await self.wait_for(uid, expect, what, after=mark)

    async def report(self, uid: int, description: str, *, patience: float = 60,
                     number_of: Callable[[int], Awaitable[str]] | None = None) -> str:
        """A whole report: /report, category, description, no photo, place, no contact,
        submit; returns the ticket number (from ``number_of`` if its message never came)."""
        def button(prefix: str) -> Callable[[JSON], bool]:
            return lambda m: has_button(m, prefix)

        categories = await self.step(uid, lambda: self.people.say(uid, uid, "/report"),
                                     button("rp:cat:sanitation"), "categories",
                                     patience=patience)
        await self.step(uid, lambda: self.press(uid, categories, "rp:cat:sanitation"),
                        button("rp:back:"), "description question", patience=patience)
        media = await self.step(uid, lambda: self.people.say(uid, uid, description),
                                button("rp:skip:media"), "photo question", patience=patience)
        await self.step(uid, lambda: self.press(uid, media, "rp:skip:media"),
                        lambda m: not has_button(m, "rp:skip:media"), "place question",
                        patience=patience)
        contact = await self.step(
            uid, lambda: self.people.send_location(uid, uid, *demo.GRID_POINT),
            button("rp:skip:contact"), "contact question", patience=patience)
        summary = await self.step(uid, lambda: self.press(uid, contact, "rp:skip:contact"),
                                  button("rp:submit"), "summary", patience=patience)
        mark = self.mark(uid)
        self.press(uid, summary, "rp:submit")
        try:
            done = await self.wait_for(uid, lambda m: bool(TICKET_NUMBER.search(text_of(m))),
                                       "ticket number", after=mark, within=patience)
        except AssertionError:
            if number_of is None:
                raise
            # The report was saved; its confirmation was lost with the instance: the person
            # finds the number under "My tickets".
            self.recoveries.append((uid, "ticket number"))
            return await number_of(uid)
        return TICKET_NUMBER.search(text_of(done))[0]
