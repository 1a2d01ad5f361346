"""`gridgate demo` and the quick start's `gridgate run` without a token, as people run them:
real processes, the printed address, the page, Ctrl+C (SIGTERM) ends both processes cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from bot.sandbox import demo
from tests.sandbox_client import People, gridgate, last_id, running, stop, text_of
from tests.telegram_fake import spec_path


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


async def web_resident_is_welcomed(session: aiohttp.ClientSession, url: str) -> None:
    """A resident without Telegram opens the link the page gives (the bot's own web chat at the
    demo's grid): the chat's first call answers with its token and the welcome."""
    parts = urlsplit(url)
    assert parts.path == "/chat" and parts.query == f"at={demo.GRID_CODE}", url
    origin = f"{parts.scheme}://{parts.netloc}"
    async with session.post(f"{origin}/chat/api/session", json={"at": demo.GRID_CODE},
                            headers={"Origin": origin}) as answer:
        assert answer.status == 200, await answer.text()
        opened = await answer.json()
    assert opened["csrf"] and opened["messages"], opened
    assert opened["place"]["code"] == demo.GRID_CODE


async def test_demo_serves_the_page_and_keeps_its_world_with_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # A folder relative to where the demo is started, as people type it.
    args = ("demo", "--port", "0", "--spec", str(spec_path()), "--data", "data")
    async with gridgate(tmp_path, *args) as (process, address, lines), \
            aiohttp.ClientSession() as session:
        assert "Bot API 10.0" in "".join(lines)
        people = People(session, address)
        web_chat = (await running(people))["web_chat_url"]
        assert f"  The web chat, for residents without Telegram: {web_chat}\n" in lines
        console = web_chat.split("/chat", 1)[0] + "/console"
        assert any(line.startswith(f"  The centres' console: {console} ") for line in lines)
        async with session.get(console) as page:
            assert page.status == 200 and "console.js" in await page.text()
        async with session.get(f"{address}/") as page:
            assert page.status == 200 and page.content_type == "text/html"
            assert "app.js" in await page.text()
        await people.say(demo.RESIDENT, demo.RESIDENT, "/start")
        await people.wait_for(demo.RESIDENT, lambda m: m["from"]["is_bot"], "welcome")
        await people.wait_for(demo.GRID_GROUP, lambda m: m["from"]["is_bot"] and bool(
            m.get("reply_to_message")), "answer to /bind")

        # The page's restart button: the bot stops as for an operator, and comes back.
        await people.post("/sandbox/bot/restart")
        await asyncio.sleep(0.5)
        # The bot started again serves its web chat where the page already links to.
        assert (await running(people))["web_chat_url"] == web_chat
        await web_resident_is_welcomed(session, web_chat)
        # A bot that dies is started again.
        bot_pid = children(process.pid)[0]
        os.kill(bot_pid, signal.SIGKILL)
        for _ in range(100):
            if (await people.state())["bot_status"] == "crashed":
                break
            await asyncio.sleep(0.05)
        await running(people)
        assert children(process.pid) != [bot_pid]
        mark = last_id(await people.messages(demo.RESIDENT))
        await people.say(demo.RESIDENT, demo.RESIDENT, "/help")
        await people.wait_for(demo.RESIDENT, lambda m: m["from"]["is_bot"], "help", after=mark)
        err = await stop(process)
    assert "exited with status -9" in err, err
    assert {"gridgate.db", "bot.log", "sandbox.json", "token"} <= {p.name for p in
                                                                   data.iterdir()}
    assert "Traceback" not in (data / "bot.log").read_text("utf-8")

    # Started again on the same data: the chats are there, the groups are not bound twice.
    async with gridgate(tmp_path, *args) as (process, address, _), \
            aiohttp.ClientSession() as session:
        people = People(session, address)
        await running(people)
        grid = await people.messages(demo.GRID_GROUP)
        assert sum(text_of(m).startswith("/bind") for m in grid) == 1
        resident = await people.messages(demo.RESIDENT)
        assert [text_of(m) for m in resident if not m["from"]["is_bot"]] == ["/start", "/help"]
        await people.say(demo.RESIDENT, demo.RESIDENT, "/start")
        await people.wait_for(demo.RESIDENT, lambda m: m["from"]["is_bot"], "welcome",
                              after=last_id(resident) + 1)
        await stop(process)


async def test_run_without_a_token_starts_the_demo(tmp_path: Path) -> None:
    async with gridgate(tmp_path, "run") as (process, address, lines), \
            aiohttp.ClientSession() as session:
        people = People(session, address)
        state = await running(people)
        # Beside the Telegram chats, the second door: the bot's web chat, on a port of its own
        # that the announcement gives too, where a resident without Telegram is welcomed.
        web_chat = state["web_chat_url"]
        assert urlsplit(web_chat).port not in (None, urlsplit(address).port, 8081), web_chat
        assert f"  The web chat, for residents without Telegram: {web_chat}\n" in lines
        await web_resident_is_welcomed(session, web_chat)
        assert [p["chat_id"] for p in state["panes"]] == [p.chat_id for p in demo.PANES]
        # The demo checks every call against the specification gridgate ships.
        assert state["spec"] == "Bot API 10.0"
        assert state["violations"] == []
        await people.wait_for(demo.GRID_GROUP, lambda m: m["from"]["is_bot"] and bool(
            m.get("reply_to_message")), "answer to /bind")
        # The lawyer opened a week of check-up slots from the day after the demo started, so
        # an enterprise finds something to book.
        tomorrow = datetime.now(demo.DEMO_TIMEZONE).date() + timedelta(days=1)
        opened = await people.wait_for(demo.DESK_GROUP, lambda m: m["from"]["is_bot"] and (
            text_of(m.get("reply_to_message") or {}).startswith("/slots add")),
            "answer to /slots add")
        assert text_of(opened["reply_to_message"]).startswith(
            f"/slots add {tomorrow.isoformat()}..")
        assert re.search(r"· \d{4}-\d{2}-\d{2} 09:00–10:00", text_of(opened)), opened
        await people.say(demo.RESIDENT, demo.RESIDENT, "/report")
        await people.wait_for_button(demo.RESIDENT, "rp:cat:", "categories")
        folder = Path(re.search(r"Database and bot log: (\S+)", "".join(lines))[1])
        assert (folder / "gridgate.db").is_file()
        err = await stop(process)
    assert "no Telegram bot token is set" in err
    # A demo without --data leaves nothing behind.
    assert not await asyncio.to_thread(folder.exists)


async def test_a_bot_does_not_outlive_its_demo(tmp_path: Path) -> None:
    async with gridgate(tmp_path, "demo", "--port", "0") as (process, address, _), \
            aiohttp.ClientSession() as session:
        await running(People(session, address))
        bot_pid = children(process.pid)[0]
        process.kill()  # the demo dies without a chance to stop its bot
        await process.wait()
    for _ in range(150):
        if not alive(bot_pid):
            return
        await asyncio.sleep(0.1)
    os.kill(bot_pid, signal.SIGKILL)
    raise AssertionError("the bot kept running after its demo died")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has ended; only its exit status waits to be read


async def test_a_busy_8080_is_announced_with_the_port_taken_instead(tmp_path: Path) -> None:
    # Whoever has 8080 (this test, or another program already), the demo must say so: someone
    # who had http://127.0.0.1:8080/ open from an earlier demo would otherwise read another page.
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As the sandbox binds: an earlier test's connections in TIME_WAIT must not keep 8080 free.
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        with contextlib.suppress(OSError):  # taken already: just as good
            holder.bind(("127.0.0.1", demo.DEFAULT_PORT))
            holder.listen()
        async with gridgate(tmp_path, "demo") as (process, address, lines):
            said = "".join(lines)
            assert f"Port {demo.DEFAULT_PORT} is in use" in said, said
            assert "--port" in said
            assert not address.endswith(f":{demo.DEFAULT_PORT}"), address
            await stop(process)
    finally:
        holder.close()
