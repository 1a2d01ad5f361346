"""`gridgate run` as an operator starts it: a real process, long polling over HTTP against a
Bot API server at TELEGRAM_API_BASE_URL, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from bot.sandbox.api import add_bot_api
from handlers.start import _welcome as welcome
from tests.sandbox_client import free_port
from tests.telegram_fake import TOKEN, FakeTelegram, UpdateFactory, User

ROOT = Path(__file__).resolve().parent.parent


async def gridgate_run(folder: Path, api_port: int) -> asyncio.subprocess.Process:
    """`gridgate run` as an operator starts it, on SQLite in ``folder``, against the Bot API
    server on ``api_port``."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=TOKEN,
               TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{api_port}",
               DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'gridgate.db'}")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--port", "0", cwd=folder, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def test_gridgate_run_polls_answers_and_stops_cleanly(tmp_path: Path, catalogs) -> None:
    fake = FakeTelegram()
    app = web.Application()
    add_bot_api(app, fake.server, TOKEN)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    resident = User(300_001, "李<四>", language_code="zh-TW")
    fake.queue_update(UpdateFactory(fake.bot(), fake).command(resident, "/start"))

    process = await gridgate_run(tmp_path, port)
    try:
        for _ in range(300):
            if fake.sent_texts(resident.id) or process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        assert fake.calls_to("sendMessage"), "the bot never answered"
        answer = fake.last("sendMessage")
        assert answer.params["text"] == welcome(catalogs["zh_Hant"])
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await runner.cleanup()
    log = stderr.decode()
    assert process.returncode == 0, log
    assert "Traceback" not in log
    assert TOKEN not in log and TOKEN.split(":")[1] not in log  # the token never reaches logs
    assert "李" not in log
    methods = {call.method for call in fake.calls}
    assert {"getMe", "getUpdates", "setMyCommands", "sendMessage"} <= methods
    assert len(fake.calls_to("setMyCommands")) == 6
    fake.assert_no_violations()


async def test_an_unreachable_bot_api_is_waited_for_with_a_plain_message(tmp_path: Path,
                                                                          catalogs) -> None:
    """Telegram (or the local Bot API server) is down when gridgate starts: it says so, tries
    again, and serves once the server is there; SIGTERM meanwhile would stop it cleanly."""
    port = free_port()
    process = await gridgate_run(tmp_path, port)
    fake = FakeTelegram()
    app = web.Application()
    add_bot_api(app, fake.server, TOKEN)
    runner = web.AppRunner(app)
    try:
        seen = b""
        while b"cannot reach the Bot API" not in seen:
            line = await asyncio.wait_for(process.stderr.readline(), 30)
            assert line, seen.decode()
            seen += line
        assert b"trying again in" in seen and b"Traceback" not in seen
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()  # the server comes back
        resident = User(300_002, "Ann", language_code="en")
        fake.queue_update(UpdateFactory(fake.bot(), fake).command(resident, "/start"))
        for _ in range(300):
            if fake.sent_texts(resident.id):
                break
            await asyncio.sleep(0.1)
        assert fake.last("sendMessage").params["text"] == welcome(catalogs["en"])
        process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await runner.cleanup()
    assert process.returncode == 0, (seen + rest).decode()
    assert TOKEN.split(":")[1] not in (seen + rest).decode()
