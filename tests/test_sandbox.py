"""The local Bot API sandbox answers as Telegram does, over real HTTP: python-telegram-bot's own
HTTP client against it, the page's API as the page uses it, webhooks pushed to a real server."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from telegram import Bot, ForceReply, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter

from bot.delivery.calls import retry_after_seconds
from bot.sandbox import api, demo
from bot.sandbox.flood import RateLimits
from bot.sandbox.server import Sandbox
from bot.sandbox.webhook import SECRET_HEADER
from bot.sandbox.world import TOKEN, TelegramServer
from tests.sandbox_client import People, png
from tests.telegram_fake import load_spec

RESIDENT, GRID, WORKER = demo.RESIDENT, demo.GRID_GROUP, demo.WORKER_A


@dataclass
class Served:
    sandbox: Sandbox
    address: str
    bot: Bot
    people: People
    session: aiohttp.ClientSession


@pytest.fixture
async def served(catalogs) -> AsyncIterator[Served]:
    sandbox = demo.demo_sandbox(demo.new_token(), spec=load_spec(), catalogs=catalogs)
    sandbox.world.started.add(RESIDENT)  # the resident wrote to the bot once
    address = await sandbox.start()
    bot = Bot(sandbox.token, base_url=f"{address}/bot", base_file_url=f"{address}/file/bot")
    async with bot, aiohttp.ClientSession() as session:
        yield Served(sandbox, address, bot, People(session, address), session)
    await sandbox.stop()


def updates(sandbox: Sandbox, kind: str | None = None) -> list[dict]:
    return [u for u in sandbox.world.pending_updates if kind is None or kind in u]


async def test_ptb_talks_to_the_sandbox_as_to_telegram(served: Served) -> None:
    me = await served.bot.get_me()
    assert me.username == demo.BOT_USER["username"]
    # Form fields are decoded by their declared type: a text of digits stays text.
    sent = await served.bot.send_message(RESIDENT, "123")
    assert served.sandbox.world.messages[(RESIDENT, sent.message_id)]["text"] == "123"
    # HTML becomes what the person sees plus entities, as Telegram returns them.
    formatted = await served.bot.send_message(RESIDENT, "<b>No. 1</b> 你好", parse_mode="HTML")
    assert formatted.text == "No. 1 你好"
    assert [(e.type, e.offset, e.length) for e in formatted.entities] == [("bold", 0, 5)]
    # An upload can be fetched back with getFile, byte for byte.
    picture = png()
    photo = await served.bot.send_photo(RESIDENT, picture)
    file = await served.bot.get_file(photo.photo[-1].file_id)
    assert bytes(await file.download_as_bytearray()) == picture
    # Telegram's errors come back as PTB's exceptions.
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await served.bot.edit_message_text("x", RESIDENT, 999)
    stranger = Bot("123:wrong-token", base_url=f"{served.address}/bot")
    with pytest.raises(InvalidToken):
        await stranger.initialize()  # getMe: a 401 for any token but the bot's
    await stranger.shutdown()
    assert served.sandbox.world.violations == []


async def test_raw_http_forms_methods_and_errors(served: Served) -> None:
    base = f"{served.address}/bot{served.sandbox.token}"
    session = served.session
    async with session.get(f"{base}/getme") as response:  # method names ignore case
        assert response.status == 200 and (await response.json())["result"]["is_bot"]
    async with session.post(f"{base}/sendMessage", json={"chat_id": RESIDENT,
                                                         "text": "via JSON"}) as response:
        assert (await response.json())["result"]["text"] == "via JSON"
    async with session.post(f"{base}/noSuchMethod") as response:
        assert response.status == 404
        assert await response.json() == {"ok": False, "error_code": 404,
                                         "description": "Not Found"}
    async with session.post(f"{base}/sendMessage", data=b"{",
                            headers={"Content-Type": "application/json"}) as response:
        assert response.status == 400
    async with session.get(f"{served.address}/file/bot{served.sandbox.token}/nowhere") as r:
        assert r.status == 404


async def test_each_violation_is_refused_kept_and_logged(served: Served, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="bot.sandbox.server")
    with pytest.raises(BadRequest):
        await served.bot.send_message(RESIDENT, "x" * 5000)
    with pytest.raises(BadRequest):
        await served.bot.send_message(RESIDENT, "<b>unclosed", parse_mode="HTML")
    violations = served.sandbox.world.violations
    assert len(violations) == 2 and all(v.startswith("sendMessage: ") for v in violations)
    assert sum("Bot API violation: sendMessage" in r.message for r in caplog.records) == 2
    assert (await served.people.state())["violations"] == violations
    async with served.session.get(f"{served.address}/sandbox/violations") as response:
        assert (await response.json())["violations"] == violations


async def test_a_bot_in_privacy_mode_sees_commands_and_replies_in_groups(served: Served) -> None:
    people = served.sandbox.people
    people.say(GRID, WORKER, "/help")  # the bot is not in the group yet
    assert updates(served.sandbox, "message") == []
    people.add_bot(GRID, demo.CENTRE_STAFF)
    assert updates(served.sandbox, "my_chat_member")
    people.say(GRID, WORKER, "大家好")  # plain chatter: the bot does not see it
    people.say(GRID, WORKER, "/stats@gridgate_demo_bot week")
    card = await served.bot.send_message(GRID, "card")
    people.say(GRID, WORKER, "a reply to the bot", reply_to=card.message_id)
    seen = [u["message"]["text"] for u in updates(served.sandbox, "message")]
    assert seen == ["/stats@gridgate_demo_bot week", "a reply to the bot"]
    command = updates(served.sandbox, "message")[0]["message"]
    assert command["entities"] == [{"type": "bot_command", "offset": 0, "length": 24}]
    # Everyone appears as Telegram shows them, with their app's language.
    assert command["from"]["language_code"] == "zh-hans"


async def test_only_buttons_that_exist_can_be_pressed_and_answered_once(served: Served) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("认领", callback_data="tk:claim:1")]])
    message = await served.bot.send_message(RESIDENT, "card", reply_markup=markup)
    forged = await served.people.post(f"/sandbox/chats/{RESIDENT}/press", 400, **{
        "from": RESIDENT, "message_id": message.message_id, "data": "tk:claim:2"})
    assert forged["error"]  # in the page's language
    stranger = await served.people.post(f"/sandbox/chats/{RESIDENT}/press", 400, **{
        "from": WORKER, "message_id": message.message_id, "data": "tk:claim:1"})
    assert stranger["error"] != forged["error"]
    pressed = await served.people.post(f"/sandbox/chats/{RESIDENT}/press", **{
        "from": RESIDENT, "message_id": message.message_id, "data": "tk:claim:1"})
    query = updates(served.sandbox, "callback_query")[-1]["callback_query"]
    assert query["id"] == pressed["query_id"] and query["message"]["text"] == "card"
    await served.bot.answer_callback_query(query["id"], "已认领", show_alert=True)
    assert served.sandbox.world.callback_queries[query["id"]]["answer"] == {
        "text": "已认领", "show_alert": True}
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await served.bot.answer_callback_query(query["id"], "again")
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await served.bot.answer_callback_query("12345")


async def test_telegram_refuses_chats_the_bot_cannot_post_in(served: Served) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await served.bot.send_message(424242, "nobody")
    with pytest.raises(Forbidden, match=r"(?i)can't initiate conversation"):
        await served.bot.send_message(demo.ENTERPRISE_CONTACT, "never wrote to the bot")
    with pytest.raises(Forbidden, match=r"(?i)not a member of the supergroup"):
        await served.bot.send_message(GRID, "not in the group yet")
    served.sandbox.people.add_bot(GRID, demo.CENTRE_STAFF)
    assert (await served.bot.send_message(GRID, "now in")).text == "now in"
    served.sandbox.people.remove_bot(GRID, demo.CENTRE_STAFF)
    with pytest.raises(Forbidden, match=r"(?i)not a member"):
        await served.bot.send_message(GRID, "gone")
    removed = updates(served.sandbox, "my_chat_member")[-1]["my_chat_member"]
    assert removed["new_chat_member"]["status"] == "left"


async def test_a_person_who_blocks_the_bot_cannot_be_written_to(served: Served) -> None:
    await served.people.post(f"/sandbox/people/{RESIDENT}/blocked", blocked=True)
    change = updates(served.sandbox, "my_chat_member")[-1]["my_chat_member"]
    assert change["new_chat_member"]["status"] == "kicked"
    with pytest.raises(Forbidden, match=r"(?i)blocked"):
        await served.bot.send_message(RESIDENT, "hello?")
    # Writing to the bot again unblocks it, as Telegram's "Restart bot" does.
    await served.people.say(RESIDENT, RESIDENT, "/start")
    assert updates(served.sandbox, "my_chat_member")[-1]["my_chat_member"][
        "new_chat_member"]["status"] == "member"
    assert (await served.bot.send_message(RESIDENT, "welcome back")).text == "welcome back"


async def test_people_can_only_do_what_a_telegram_app_lets_them(served: Served) -> None:
    people = served.people
    chat = f"/sandbox/chats/{RESIDENT}/messages"
    assert (await people.post(chat, 400, **{"from": RESIDENT, "text": "   "}))["error"]
    assert (await people.post(chat, 400, **{"from": RESIDENT, "text": "长" * 4097}))["error"]
    assert (await people.post(chat, 400, **{"from": WORKER, "text": "not my chat"}))["error"]
    far = {"from": RESIDENT, "location": {"latitude": 91, "longitude": 0}}
    assert (await people.post(chat, 400, **far))["error"]
    # Someone else's message cannot be edited; one's own can, and the bot hears of it.
    bots = await served.bot.send_message(RESIDENT, "bot's words")
    await people.post(f"/sandbox/chats/{RESIDENT}/edit", 400, **{
        "from": RESIDENT, "message_id": bots.message_id, "text": "mine now"})
    mine = await people.say(RESIDENT, RESIDENT, "第一稿")
    await people.post(f"/sandbox/chats/{RESIDENT}/edit", **{
        "from": RESIDENT, "message_id": mine["message_id"], "text": "第二稿 /help"})
    edited = updates(served.sandbox, "edited_message")[-1]["edited_message"]
    assert edited["text"] == "第二稿 /help" and edited["edit_date"]
    assert edited["entities"] == [{"type": "bot_command", "offset": 4, "length": 5}]
    # An album: one message and one update per photo, one media_group_id.
    album = await people.photos(RESIDENT, RESIDENT, png(), png(colour=(200, 0, 0)),
                                caption="两张照片")
    assert len({m["media_group_id"] for m in album}) == 1 and album[0]["caption"] == "两张照片"
    for message in album:
        async with served.session.get(
                f"{served.address}/sandbox/files/{message['photo'][-1]['file_id']}") as r:
            assert r.status == 200 and r.content_type == "image/png"
    # The phone button shares one's own number, as a contact with one's user id.
    contact = (await people.post(chat, **{"from": RESIDENT, "contact": True}))["messages"][0]
    assert contact["contact"] == {"phone_number": "+8613800138000", "first_name": "王小明",
                                  "user_id": RESIDENT}


async def test_the_page_language_is_every_persons_app_language(served: Served) -> None:
    chinese = await served.people.state()
    await served.people.post("/sandbox/language", language="en")
    english = await served.people.state()
    assert english["language"] == "en" and english["texts"]["send"] == "Send"
    assert english["texts"]["send"] != chinese["texts"]["send"]
    await served.people.say(RESIDENT, RESIDENT, "/start")
    assert updates(served.sandbox, "message")[-1]["message"]["from"]["language_code"] == "en"
    refused = await served.people.post("/sandbox/language", 400, language="fr")
    assert refused["error"] == english["texts"]["unknown_language"]


async def test_the_page_hears_every_change_live(served: Served) -> None:
    served.sandbox.people.add_bot(GRID, demo.CENTRE_STAFF)
    async with served.session.ws_connect(f"{served.address}/sandbox/events") as socket:
        await served.people.say(RESIDENT, RESIDENT, "hello")
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="x")]])
        sent = await served.bot.send_message(RESIDENT, "<i>hi</i>", parse_mode="HTML",
                                             reply_markup=markup)
        await served.bot.edit_message_text("<i>edited</i>", RESIDENT, sent.message_id,
                                           parse_mode="HTML")
        await served.bot.send_message(GRID, "answer me", reply_markup=ForceReply())
        await served.bot.delete_message(RESIDENT, sent.message_id)
        events = []
        while len(events) < 5:
            event = json.loads((await asyncio.wait_for(socket.receive(), 5)).data)
            if event["type"] in ("message", "deleted"):
                events.append(event)
    assert [(e["type"], e.get("edited")) for e in events] == [
        ("message", False), ("message", False), ("message", True), ("message", False),
        ("deleted", None)]
    assert events[2]["message"]["entities"] == [{"type": "italic", "offset": 0, "length": 6}]
    assert "reply_markup" not in events[2]["message"]  # an edit without markup drops it


async def test_webhooks_are_pushed_with_the_secret_and_retried(served: Served) -> None:
    received: list[tuple[str | None, dict]] = []
    fail_first = [True]

    async def hook(request: web.Request) -> web.Response:
        if fail_first.pop() if fail_first else False:
            return web.Response(status=500)
        received.append((request.headers.get(SECRET_HEADER), await request.json()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        await served.bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        with pytest.raises(Conflict):
            await served.bot.get_updates()
        await served.people.say(RESIDENT, RESIDENT, "/start")
        await served.people.say(RESIDENT, RESIDENT, "second")
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.05)
        assert [(secret, u["message"]["text"]) for secret, u in received] == [
            ("s3cret", "/start"), ("s3cret", "second")]
        info = await served.bot.get_webhook_info()
        assert info.pending_update_count == 0
        assert info.last_error_message == "Wrong response from the webhook: 500 Internal " \
                                          "Server Error"
        await served.bot.delete_webhook()
        await served.people.say(RESIDENT, RESIDENT, "polled again")
        assert [u.message.text for u in await served.bot.get_updates()] == ["polled again"]
    finally:
        await runner.cleanup()


async def test_a_saved_world_comes_back_whole(served: Served, tmp_path, catalogs) -> None:
    people = served.sandbox.people
    people.add_bot(GRID, demo.CENTRE_STAFF)
    card = await served.bot.send_message(GRID, "<b>card</b>", parse_mode="HTML",
                                         reply_markup=InlineKeyboardMarkup([[
                                             InlineKeyboardButton("认领", callback_data="c")]]))
    photo = await served.bot.send_photo(RESIDENT, png())
    pressed = people.press(GRID, card.message_id, WORKER, "c")  # waits, unanswered
    people.say(RESIDENT, RESIDENT, "waiting update")
    people.block(demo.ENTERPRISE_CONTACT)
    await served.bot.set_my_commands([("start", "开始")])
    path = tmp_path / "sandbox.json"
    await served.sandbox.save(path)
    assert len(list((tmp_path / "files").iterdir())) >= 1  # files beside, not in the JSON

    again = demo.demo_sandbox(served.sandbox.token, spec=None, catalogs=catalogs)
    assert again.load(path)
    world = again.world
    assert world.messages[(GRID, card.message_id)]["entities"][0]["type"] == "bold"
    assert world.file_at(world.files[photo.photo[-1].file_id][0]) == png()
    assert "waiting update" in [u.get("message", {}).get("text") for u in world.pending_updates]
    assert world.command_menu(RESIDENT, RESIDENT, "zh")[0]["command"] == "start"
    # New messages continue the numbering, new presses get new ids: nothing is overwritten.
    assert world.next_message_id(GRID) == card.message_id + 1
    assert again.people.press(GRID, card.message_id, WORKER, "c") != pressed
    # The press that waited can still be answered; the block still holds.
    assert world.api_answerCallbackQuery({"callback_query_id": pressed}) is True
    assert again.people.has_blocked(demo.ENTERPRISE_CONTACT)


async def test_a_force_reply_opens_the_reply_box_of_the_person_it_names(served: Served) -> None:
    served.sandbox.people.add_bot(GRID, demo.CENTRE_STAFF)
    events: list[dict] = []
    served.sandbox.subscribe(events.append)
    question = await served.bot.send_message(
        GRID, f'<a href="tg://user?id={WORKER}">李建国</a> 请回复本消息', parse_mode="HTML",
        reply_markup=ForceReply(selective=True, input_field_placeholder="办理结果"))
    # Telegram turns a link to a user into a mention of that user.
    mention = question.entities[0]
    assert (mention.type, mention.user.id) == ("text_mention", WORKER)
    assert [e for e in events if e["type"] == "force_reply"] == [{
        "type": "force_reply", "chat_id": GRID, "message_id": question.message_id,
        "only_for": [WORKER], "placeholder": "办理结果"}]


def test_without_the_spec_parameters_are_typed_as_ptb_types_them() -> None:
    """The demo runs without the specification (the project does not ship it): form fields are
    then decoded by python-telegram-bot's signatures, which must agree with the spec on which
    parameters are plain text (PTB also JSON-encodes provider_data objects itself)."""
    spec = load_spec()
    from_ptb, from_spec = api._ptb_text_fields(), api._spec_text_fields(spec)
    disagree = {method: (sorted(from_ptb[method] - text), sorted(text - from_ptb[method]))
                for method, text in from_spec.items() if method in from_ptb
                and (text - from_ptb[method] or (from_ptb[method] - text) & set(
                    spec.methods[method].fields))}
    assert disagree == {"sendInvoice": ([], ["provider_data"]),
                        "createInvoiceLink": ([], ["provider_data"])}
    assert from_ptb["getUpdates"] == frozenset()  # allowed_updates is a list, not text


async def test_a_sandbox_without_the_spec_still_answers_ptb(catalogs) -> None:
    sandbox = demo.demo_sandbox(demo.new_token(), spec=None, catalogs=catalogs)
    address = await sandbox.start()
    try:
        async with Bot(sandbox.token, base_url=f"{address}/bot",
                       base_file_url=f"{address}/file/bot") as bot:
            sandbox.people.say(RESIDENT, RESIDENT, "/start")
            first = await bot.get_updates(timeout=1, allowed_updates=["message"])
            markup = InlineKeyboardMarkup([[InlineKeyboardButton("1", callback_data="1")]])
            sent = await bot.send_message(RESIDENT, "123", reply_markup=markup)
            assert sent.text == "123" and sent.reply_markup == markup
            sandbox.people.press(RESIDENT, sent.message_id, RESIDENT, "1")  # not allowed: dropped
            sandbox.people.say(RESIDENT, RESIDENT, "again")
            later = await bot.get_updates(offset=first[-1].update_id + 1, timeout=1)
            assert [u.message.text for u in later] == ["again"]
            photo = await bot.send_photo(RESIDENT, png())
            file = await bot.get_file(photo.photo[-1].file_id)
            assert bytes(await file.download_as_bytearray()) == png()
    finally:
        await sandbox.stop()



async def test_polls_end_as_on_telegram(served: Served) -> None:
    base = f"{served.address}/bot{served.sandbox.token}"

    async def poll(**params) -> dict:
        async with served.session.post(f"{base}/getUpdates", json=params) as response:
            return await response.json()

    # A second poller ends the first one's wait with a conflict; so does a webhook.
    first = asyncio.create_task(poll(timeout=5))
    await asyncio.sleep(0.2)
    second = asyncio.create_task(poll(timeout=1))
    assert (await first)["description"].startswith("Conflict: terminated by other getUpdates")
    await second
    waiting = asyncio.create_task(poll(timeout=5))
    await asyncio.sleep(0.2)
    await served.bot.set_webhook("http://127.0.0.1:9/hook")
    assert (await waiting)["description"] == "Conflict: terminated by setWebhook request"
    await served.bot.delete_webhook()
    # A negative offset keeps only that many of the newest updates, and forgets the rest.
    for text in ("one", "two", "three"):
        served.sandbox.people.say(RESIDENT, RESIDENT, text)
    newest = (await poll(offset=-1))["result"]
    assert [u["message"]["text"] for u in newest] == ["three"]
    assert [u["message"]["text"] for u in (await poll())["result"]] == ["three"]


async def test_telegram_refuses_in_its_own_words_with_or_without_the_spec(
        served: Served, catalogs) -> None:
    bare = demo.demo_sandbox(demo.new_token(), spec=None, catalogs=catalogs)
    bare.world.started.add(RESIDENT)
    address = await bare.start()
    try:
        for sandbox, at in ((served.sandbox, served.address), (bare, address)):
            base = f"{at}/bot{sandbox.token}"

            async def call(method: str, base: str = base, **params) -> tuple[int, str]:
                async with served.session.post(f"{base}/{method}", json=params) as response:
                    body = await response.json()
                    return response.status, body.get("description", "")

            too_long = "x" * 5000
            assert await call("sendMessage", chat_id=RESIDENT, text=" ") == (
                400, "Bad Request: message text is empty")
            assert await call("sendMessage", chat_id=RESIDENT, text=too_long) == (
                400, "Bad Request: message is too long")
            status, text = await call("sendMessage", chat_id=RESIDENT, text="<b>open",
                                      parse_mode="HTML")
            assert (status, text.startswith("Bad Request: can't parse entities")) == (400, True)
            button = {"inline_keyboard": [[{"text": "x", "callback_data": "d" * 65}]]}
            assert await call("sendMessage", chat_id=RESIDENT, text="x", reply_markup=button
                              ) == (400, "Bad Request: BUTTON_DATA_INVALID")
            assert await call("noSuchMethod") == (404, "Not Found")
            assert await call("getFile", file_id="made-up") == (
                400, "Bad Request: invalid file_id")
            assert await call("sendMessage", chat_id=RESIDENT, text="x",
                              reply_parameters={"message_id": 999}) == (
                400, "Bad Request: message to be replied not found")
            assert (await call("sendMessage", chat_id=RESIDENT, text="x", reply_parameters={
                "message_id": 999, "allow_sending_without_reply": True}))[0] == 200
            assert await call("setWebhook", url="https://example.org/hook",
                              secret_token="bad token\r\n") == (
                400, "Bad Request: secret token contains unallowed characters")
            # A markup sent as JSON text inside a JSON body counts as the markup.
            markup = json.dumps({"inline_keyboard": [[{"text": "ok", "callback_data": "ok"}]]})
            assert (await call("sendMessage", chat_id=RESIDENT, text="x", reply_markup=markup)
                    )[0] == 200
            sent = sandbox.world.messages[(RESIDENT, max(
                m for c, m in sandbox.world.messages if c == RESIDENT))]
            assert sent["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "ok"
        # Nonsense in a parameter is a 400 in JSON, not a crash of the server.
        async with served.session.post(f"{address}/bot{bare.token}/deleteMessages",
                                       json={"chat_id": RESIDENT, "message_ids": 5}) as r:
            assert r.status == 400 and (await r.json())["ok"] is False
    finally:
        await bare.stop()


async def test_privacy_mode_lets_through_only_commands_for_this_bot(served: Served) -> None:
    people = served.sandbox.people
    people.add_bot(GRID, demo.CENTRE_STAFF)
    for text in ("/help@some_other_bot", "hello there /help", "/help", "/HELP@GRIDGATE_DEMO_BOT"):
        people.say(GRID, WORKER, text)
    assert [u["message"]["text"] for u in updates(served.sandbox, "message")] == [
        "/help", "/HELP@GRIDGATE_DEMO_BOT"]


async def test_only_the_page_itself_may_use_the_page_api(served: Served) -> None:
    target = f"{served.address}/sandbox/chats/{RESIDENT}/messages"
    body = {"from": RESIDENT, "text": "sent from another site"}
    async with served.session.post(target, json=body,
                                   headers={"Origin": "http://evil.example"}) as response:
        assert response.status == 403
    async with served.session.post(target, data=json.dumps(body),
                                   headers={"Content-Type": "text/plain"}) as response:
        assert response.status == 415
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await served.session.ws_connect(f"{served.address}/sandbox/events",
                                        headers={"Origin": "http://evil.example"})
    # The page itself (same origin) is served as before.
    async with served.session.post(target, json=body,
                                   headers={"Origin": served.address}) as response:
        assert response.status == 200
    assert [m.get("text") for m in served.sandbox.world.messages.values()] == [
        "sent from another site"]


async def test_an_upload_beyond_telegrams_limit_is_a_413_in_json(served: Served) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(RESIDENT))
    form.add_field("document", b"\0" * (52 * 1024 * 1024), filename="huge.bin")
    async with served.session.post(
            f"{served.address}/bot{served.sandbox.token}/sendDocument", data=form) as response:
        assert response.status == 413
        assert await response.json() == {"ok": False, "error_code": 413,
                                         "description": "Request Entity Too Large"}


# -- flood control ------------------------------------------------------------------------------


class _Monotonic:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Limited:
    world: TelegramServer
    clock: _Monotonic
    bot: Bot
    base: str
    session: aiohttp.ClientSession


@pytest.fixture
async def limited() -> AsyncIterator[Limited]:
    """An open sandbox world with Telegram's rate limits on, on a clock that moves when told,
    served over HTTP by the sandbox's own Bot API routes."""
    clock = _Monotonic()
    world = TelegramServer(load_spec(), strict=False, rate_limits=RateLimits(), monotonic=clock)
    app = web.Application()
    api.add_bot_api(app, world, TOKEN)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    address = f"http://{host}:{port}"
    bot = Bot(TOKEN, base_url=f"{address}/bot")
    async with bot, aiohttp.ClientSession() as session:
        yield Limited(world, clock, bot, f"{address}/bot{TOKEN}", session)
    await runner.cleanup()


# PTB's own RetryAfter constructor reads its deprecated int-valued attribute; not ours to fix.
ptb_retry_after = pytest.mark.filterwarnings(
    "ignore:.*`retry_after` will be of type:telegram.warnings.PTBDeprecationWarning")


async def test_rate_limits_are_off_by_default(served: Served) -> None:
    assert TelegramServer(None, strict=False).rate_limits is None
    world = served.sandbox.world
    assert world.rate_limits is None  # the demo's sandbox too
    for i in range(40):  # beyond any of Telegram's limits, at once
        await served.bot.send_message(RESIDENT, f"m{i}")
    assert world.flood_refusals == 0
    assert sum(1 for (chat, _) in world.messages if chat == RESIDENT) == 40


@ptb_retry_after
async def test_a_private_chat_takes_a_short_burst_then_one_a_second(limited: Limited) -> None:
    # Over raw HTTP: Telegram's own 429 body.
    for i in range(3):
        async with limited.session.post(f"{limited.base}/sendMessage",
                                        json={"chat_id": RESIDENT, "text": f"m{i}"}) as r:
            assert r.status == 200
    async with limited.session.post(f"{limited.base}/sendMessage",
                                    json={"chat_id": RESIDENT, "text": "too many"}) as r:
        assert r.status == 429
        assert await r.json() == {"ok": False, "error_code": 429,
                                  "description": "Too Many Requests: retry after 1",
                                  "parameters": {"retry_after": 1}}
    # Through PTB's own client: RetryAfter, and nothing was sent.
    with pytest.raises(RetryAfter) as refused:
        await limited.bot.send_message(RESIDENT, "too many")
    assert retry_after_seconds(refused.value) == 1
    assert [m["text"] for (c, _), m in sorted(limited.world.messages.items())
            if c == RESIDENT] == ["m0", "m1", "m2"]
    # Then one a second, and no more.
    for i in range(3):
        limited.clock.now += 1
        await limited.bot.send_message(RESIDENT, f"steady {i}")
        with pytest.raises(RetryAfter):
            await limited.bot.send_message(RESIDENT, "one more")
    # Other chats are not held up by this one; and edits, chat actions and reads are not limited.
    await limited.bot.send_message(RESIDENT + 1, "another resident")
    await limited.bot.edit_message_text("m0 edited", RESIDENT, 1)
    await limited.bot.send_chat_action(RESIDENT, "typing")
    await limited.bot.get_me()
    assert limited.world.flood.refused == {"private": 5}
    assert limited.world.flood_refusals == 5


@ptb_retry_after
async def test_a_group_takes_twenty_messages_a_minute(limited: Limited) -> None:
    group = -1001000000101
    for i in range(20):
        await limited.bot.send_message(group, f"m{i}")
        limited.clock.now += 1  # one a second: within a private chat's rate, not a group's
    with pytest.raises(RetryAfter) as refused:
        await limited.bot.send_message(group, "21st")
    assert retry_after_seconds(refused.value) == 40  # until the first is a minute old
    limited.clock.now += 39.5
    with pytest.raises(RetryAfter) as refused:
        await limited.bot.send_message(group, "21st")
    assert retry_after_seconds(refused.value) == 1  # whole seconds, rounded up
    limited.clock.now += 0.5
    await limited.bot.send_message(group, "21st")
    with pytest.raises(RetryAfter):
        await limited.bot.send_message(group, "22nd")  # the second is not a minute old yet
    # A refused call does not count: after the minute, the group is free again at once.
    limited.clock.now += 60
    for i in range(20):
        await limited.bot.send_message(group, f"again {i}")
    assert limited.world.flood.refused == {"group": 3}


@ptb_retry_after
async def test_thirty_messages_a_second_overall(limited: Limited) -> None:
    for user in range(30):
        await limited.bot.send_message(400_000 + user, "hello")
    with pytest.raises(RetryAfter) as refused:
        await limited.bot.send_message(500_000, "a fresh chat")
    assert retry_after_seconds(refused.value) == 1
    with pytest.raises(RetryAfter):
        await limited.bot.send_photo(-1001000000101, png())  # any sending method, any chat
    limited.clock.now += 0.999
    with pytest.raises(RetryAfter):
        await limited.bot.send_message(500_000, "a fresh chat")  # any one second, not a tick
    limited.clock.now += 0.001
    for user in range(30):
        await limited.bot.send_message(500_000 + user, "hello")
    assert limited.world.flood.refused == {"overall": 3}
    assert len(limited.world.sent) == 60
    # Switched off again, nothing is limited.
    limited.world.rate_limits = None
    await limited.bot.send_message(600_000, "free")
    assert limited.world.flood_refusals == 0
