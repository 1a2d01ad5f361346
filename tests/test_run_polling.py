"""`gridgate run` as an operator starts it: a real process, long polling over HTTP against a
Bot API server at TELEGRAM_API_BASE_URL, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.config import example_config_path
from bot.sandbox.api import add_bot_api
from bot.views.menu import welcome_text as welcome
from tests.sandbox_client import free_port
from tests.telegram_fake import TOKEN, FakeTelegram, UpdateFactory, User

ROOT = Path(__file__).resolve().parent.parent


async def gridgate_run(folder: Path, api_port: int,
                       *options: str) -> asyncio.subprocess.Process:
    """`gridgate run` as an operator starts it, on SQLite in ``folder``, against the Bot API
    server on ``api_port``; ``options`` come before the command."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=TOKEN,
               TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{api_port}",
               DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'gridgate.db'}")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *options, "run", "--port", "0", cwd=folder, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


@contextlib.asynccontextmanager
async def bot_api(fake: FakeTelegram, *middlewares) -> AsyncIterator[int]:
    """The fake's Bot API served over HTTP on a free local port (yielded), as Telegram for a
    gridgate process; ``middlewares`` bend its answers."""
    app = web.Application(middlewares=list(middlewares))
    add_bot_api(app, fake.server, TOKEN)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def answered_then_stopped(process: asyncio.subprocess.Process, fake: FakeTelegram,
                                resident: User) -> str:
    """Waits until the bot has answered ``resident``, stops it with SIGTERM as a service
    manager would, and returns what it wrote to stderr (it is killed if it outlives this)."""
    try:
        for _ in range(300):
            if fake.sent_texts(resident.id) or process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        assert fake.calls_to("sendMessage"), "the bot never answered"
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return stderr.decode()


async def test_gridgate_run_polls_answers_and_stops_cleanly(tmp_path: Path, catalogs) -> None:
    fake = FakeTelegram()
    resident = User(300_001, "李<四>", language_code="zh-TW")
    fake.queue_update(UpdateFactory(fake.bot(), fake).command(resident, "/start"))
    async with bot_api(fake) as port:
        process = await gridgate_run(tmp_path, port)
        log = await answered_then_stopped(process, fake, resident)
    assert fake.last("sendMessage").params["text"] == welcome(catalogs["zh_Hant"])
    assert process.returncode == 0, log
    assert "Traceback" not in log
    assert TOKEN not in log and TOKEN.split(":")[1] not in log  # the token never reaches logs
    assert "李" not in log
    assert "works again" not in log  # nothing went wrong
    methods = {call.method for call in fake.calls}
    assert {"getMe", "getUpdates", "setMyCommands", "sendMessage"} <= methods
    assert len(fake.calls_to("setMyCommands")) == 6
    fake.assert_no_violations()


async def test_an_unreachable_bot_api_is_waited_for_with_a_plain_message(tmp_path: Path,
                                                                          catalogs) -> None:
    """Telegram (or the local Bot API server) is down when gridgate starts: it says why and
    what to do, tries again, answers /healthz meanwhile, and serves once the server is there;
    SIGTERM meanwhile would stop it cleanly."""
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
        said = seen.decode()
        assert f"cannot reach the Bot API at http://127.0.0.1:{port}: 127.0.0.1 refused the " \
               "connection; trying again in 1 s." in said
        assert "TELEGRAM_API_BASE_URL" in said and "Traceback" not in said
        # Alive meanwhile (a supervisor must not kill it), and not ready.
        listening = re.search(r"HTTP server on (http://127\.0\.0\.1:\d+) ", said)
        assert listening, said
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{listening[1]}/healthz") as response:
                assert response.status == 200
            async with session.get(f"{listening[1]}/readyz") as response:
                assert response.status == 503
                checks = (await response.json())["checks"]
        assert checks["bot_api"] == {"ok": False, "detail": "127.0.0.1 refused the connection"}
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
    log = (seen + rest).decode()
    assert TOKEN.split(":")[1] not in log
    # The hint is given once, not with every retry.
    assert log.count("TELEGRAM_API_BASE_URL") == 1
    assert f"reached the Bot API at http://127.0.0.1:{port}" in log
    assert re.search(r"gridgate is running: long polling http://127\.0\.0\.1:\d+; HTTP server "
                     r"on http://127\.0\.0\.1:\d+", log), log


async def test_a_dropped_long_poll_is_one_warning_and_polling_goes_on(tmp_path: Path,
                                                                      catalogs) -> None:
    fake = FakeTelegram()
    drops = [2]  # the first two getUpdates lose their connection

    @web.middleware
    async def dropping(request: web.Request, handler):
        if request.path.endswith("/getUpdates") and drops[0]:
            drops[0] -= 1
            await request.read()
            request.transport.close()  # as a NAT or a proxy that forgets the connection
            return web.Response(status=200)  # never arrives
        return await handler(request)

    resident = User(300_003, "Bo", language_code="en")
    fake.queue_update(UpdateFactory(fake.bot(), fake).command(resident, "/start"))
    async with bot_api(fake, dropping) as port:
        process = await gridgate_run(tmp_path, port)
        log = await answered_then_stopped(process, fake, resident)
    assert fake.last("sendMessage").params["text"] == welcome(catalogs["en"])
    assert process.returncode == 0, log
    assert drops == [0]
    assert "Traceback" not in log and " ERROR " not in log, log
    warnings = [line for line in log.splitlines() if "long polling:" in line]
    assert len(warnings) == 2, log
    assert all(line.endswith(" WARNING bot.serve: long polling: 127.0.0.1 closed the "
                             "connection before answering; asking again")
               for line in warnings), warnings
    # And once it works again, a line that says so (the operator need not wonder).
    recovered = [line for line in log.splitlines() if "works again" in line]
    assert len(recovered) == 1, log
    assert recovered[0].endswith(" INFO bot.serve: long polling works again (after 2 failed "
                                 "calls)")
    assert log.index(recovered[0]) > log.index(warnings[-1])


async def test_a_crash_is_logged_with_its_traceback_as_json(tmp_path: Path) -> None:
    """An unexpected failure of the service (here Telegram refusing the command menu while it
    starts) must be diagnosable from the journal: the traceback at ERROR, in the configured
    JSON, then the one-line summary; and status 1, so that it is started again."""
    @web.middleware
    async def refusing(request: web.Request, handler):
        if request.path.endswith("/setMyCommands"):
            await request.read()
            return web.json_response({"ok": False, "error_code": 400,
                                      "description": "Bad Request: the menu is broken"},
                                     status=400)
        return await handler(request)

    fake = FakeTelegram()
    overlay = tmp_path / "json.toml"
    overlay.write_text('[runtime]\nlog_format = "json"\n', "utf-8")
    async with bot_api(fake, refusing) as port:
        process = await gridgate_run(tmp_path, port, "--config", str(example_config_path()),
                                     "--config", str(overlay))
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 1, stderr.decode()
    assert stdout == b""
    records = [json.loads(line) for line in stderr.decode().splitlines()]  # all of it JSON
    crash = [r for r in records if "traceback" in r]
    assert len(crash) == 1, records
    assert crash[0]["level"] == "ERROR", crash
    assert crash[0]["exc_type"] == "telegram.error.BadRequest", crash
    assert "set_my_commands" in crash[0]["traceback"], crash[0]["traceback"]
    assert records[-1]["level"] == "ERROR"
    assert records[-1]["message"] == "failed: BadRequest: The menu is broken"
    assert TOKEN.split(":")[1] not in stderr.decode()


@pytest.mark.parametrize("client", ["aiohttp", "httpx"])  # Bot API calls; getUpdates (httpx)
async def test_why_the_bot_api_cannot_be_reached(client: str) -> None:
    """Each reason an operator must tell apart, from a real failed call."""
    from telegram import Bot
    from telegram.request import HTTPXRequest

    from bot.bot_api_client import AiohttpRequest
    from bot.health import bot_api_failure

    async def failure(base: str) -> str:
        request = (AiohttpRequest(1, connect_timeout=2, read_timeout=0.5) if client == "aiohttp"
                   else HTTPXRequest(connect_timeout=2, read_timeout=0.5))
        bot = Bot(TOKEN, base_url=f"{base}/bot", request=request)
        try:
            await bot.get_me()
        except Exception as exc:
            return bot_api_failure(exc, base)
        finally:
            await request.shutdown()
        raise AssertionError(f"{base} answered")

    async def http_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)  # a TLS hello, read as a request
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    # Connections that are taken and then never answered; plain HTTP where TLS is expected;
    # and connections closed at once.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    plain = await asyncio.start_server(http_only, "127.0.0.1", 0)
    closing = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0)
    try:
        assert await failure(f"http://127.0.0.1:{free_port()}") == (
            "127.0.0.1 refused the connection")
        assert await failure("https://bot-api.invalid") == (
            "the name bot-api.invalid does not resolve (DNS)")
        assert await failure(f"http://127.0.0.1:{silent.getsockname()[1]}") == (
            "127.0.0.1 did not answer in time (timed out)")
        tls = await failure(f"https://127.0.0.1:{plain.sockets[0].getsockname()[1]}")
        assert tls.startswith("the TLS handshake with 127.0.0.1 failed ("), tls
        assert await failure(f"http://127.0.0.1:{closing.sockets[0].getsockname()[1]}") == (
            "127.0.0.1 closed the connection before answering")
    finally:
        silent.close()
        for server in (plain, closing):
            server.close()
            await server.wait_closed()


async def test_a_stop_after_a_flood_ends_in_time_and_loses_no_update(tmp_path: Path,
                                                                      catalogs) -> None:
    """Hundreds of residents at once, then SIGINT: the process is gone within
    ``shutdown_timeout`` (long polling fetched only a few updates per worker ahead of their
    handling; those it could not finish wait in the inbox), and the next start answers every
    resident exactly once."""
    fake = FakeTelegram()
    updates = UpdateFactory(fake.bot(), fake)
    residents = [User(310_000 + n, f"R{n}", language_code="en") for n in range(400)]
    for resident in residents:
        fake.queue_update(updates.command(resident, "/start"))
    settings = tmp_path / "stop.toml"
    settings.write_text('[runtime]\nshutdown_timeout = "4s"\nmax_concurrent_updates = 16\n')
    options = ("--config", str(example_config_path()), "--config", str(settings))

    def answered() -> int:
        return len({call.params["chat_id"] for call in fake.calls_to("sendMessage")})

    async with bot_api(fake) as port:
        process = await gridgate_run(tmp_path, port, *options)
        try:
            for _ in range(600):
                if answered() >= 10 or process.returncode is not None:
                    break
                await asyncio.sleep(0.05)
            assert answered() >= 10, "the bot never answered"
            process.send_signal(signal.SIGINT)
            stopped = asyncio.get_running_loop().time()
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
            took = asyncio.get_running_loop().time() - stopped
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        log = stderr.decode()
        assert process.returncode == 0, log
        assert "Traceback" not in log
        # 4 s, and the interpreter's own exit, on a machine that may be busy.
        assert took < 4 + 3, (took, log)
        assert answered() < len(residents), "no flood: everything was handled before the stop"
        # The rest: at Telegram (never fetched, so never confirmed) or in the inbox.
        process = await gridgate_run(tmp_path, port, *options)
        try:
            for _ in range(1200):
                if answered() == len(residents) or process.returncode is not None:
                    break
                await asyncio.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert answered() == len(residents)
    welcomes = [call.params["chat_id"] for call in fake.calls_to("sendMessage")
                if call.params["text"] == welcome(catalogs["en"])]
    assert sorted(welcomes) == sorted(r.id for r in residents)  # each once
    fake.assert_no_violations()
