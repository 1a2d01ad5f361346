"""gridgate's Bot API client (bot.bot_api_client, on aiohttp) against the sandbox's Bot API over
real HTTP: what PTB sends through it arrives as through PTB's own client, uploads included,
and Telegram's answers and errors come back as PTB's."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, InvalidToken, NetworkError

from bot.bot_api_client import AiohttpRequest
from bot.sandbox import demo
from bot.sandbox.server import Sandbox
from tests.sandbox_client import png
from tests.telegram_fake import load_spec

RESIDENT = demo.RESIDENT


@pytest.fixture
async def sandbox(catalogs) -> AsyncIterator[tuple[Sandbox, str]]:
    sandbox = demo.demo_sandbox(demo.new_token(), spec=load_spec(), catalogs=catalogs)
    sandbox.world.started.add(RESIDENT)  # the resident wrote to the bot once
    address = await sandbox.start()
    yield sandbox, address
    await sandbox.stop()


async def test_calls_uploads_and_errors_go_as_through_ptbs_client(
        sandbox: tuple[Sandbox, str]) -> None:
    world, address = sandbox[0].world, sandbox[1]
    bot = Bot(sandbox[0].token, base_url=f"{address}/bot", base_file_url=f"{address}/file/bot",
              request=AiohttpRequest(4))
    async with bot:
        assert (await bot.get_me()).username == demo.BOT_USER["username"]
        # Form fields are decoded by their declared type: a text of digits stays text.
        sent = await bot.send_message(RESIDENT, "123")
        assert world.messages[(RESIDENT, sent.message_id)]["text"] == "123"
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("是", callback_data="yes")]])
        formatted = await bot.send_message(RESIDENT, "<b>No. 1</b> 你好", parse_mode="HTML",
                                           reply_markup=keyboard)
        assert formatted.text == "No. 1 你好"
        assert [(e.type, e.offset, e.length) for e in formatted.entities] == [("bold", 0, 5)]
        assert formatted.reply_markup == keyboard
        # Uploads, from bytes and from an open file, come back byte for byte with getFile.
        picture = png()
        photo = await bot.send_photo(RESIDENT, picture, caption="照片")
        file = await bot.get_file(photo.photo[-1].file_id)
        assert bytes(await file.download_as_bytearray()) == picture
        document = await bot.send_document(RESIDENT, io.BytesIO(b"a,b\n1,2\n"),
                                           filename="export.csv")
        file = await bot.get_file(document.document.file_id)
        assert bytes(await file.download_as_bytearray()) == b"a,b\n1,2\n"
        # Telegram's errors come back as PTB's exceptions.
        with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
            await bot.edit_message_text("x", RESIDENT, 999)
    stranger = Bot("123:wrong-token", base_url=f"{address}/bot", request=AiohttpRequest(1))
    with pytest.raises(InvalidToken):
        await stranger.initialize()  # getMe: a 401 for any token but the bot's
    await stranger.shutdown()
    assert world.violations == []


async def test_the_environments_proxy_carries_the_calls(monkeypatch) -> None:
    """HTTP_PROXY / HTTPS_PROXY (docs/deployment.md, where Telegram is blocked) as httpx
    honours them, NO_PROXY included."""
    from aiohttp import web

    asked: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        asked.append(str(request.url))  # a proxy is asked for the whole URL
        return web.json_response({"ok": True, "result": {
            "id": 1, "is_bot": True, "first_name": "proxied", "username": "proxied_bot"}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "exempt.invalid")
    try:
        bot = Bot("1:token", base_url="http://bot-api.invalid/bot", request=AiohttpRequest(1))
        async with bot:
            assert bot.username == "proxied_bot"
        assert asked == ["http://bot-api.invalid/bot1:token/getMe"]
        exempt = Bot("1:token", base_url="http://exempt.invalid/bot",
                     request=AiohttpRequest(1, connect_timeout=2))
        with pytest.raises(NetworkError):  # straight to a name that does not resolve
            await exempt.initialize()
        await exempt.shutdown()
        assert len(asked) == 1
    finally:
        await runner.cleanup()
