"""The web chat over real HTTP, on the real Application and a real database (SQLite and
PostgreSQL): a resident without Telegram reports through the same actions, the card reaches
the grid's Telegram group, a worker's reply comes back live, and the page's calls are guarded
as anything on the open internet must be."""

from __future__ import annotations

import asyncio
import io
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from PIL import Image
from sqlalchemy import func, select
from yarl import URL

from bot.app import web_chat
from bot.services import tickets
from bot.services import webchat as rules
from bot.views import report as report_views
from bot.web import WebServer
from bot.web_guard import COOKIE, CSRF_HEADER
from storage.models import Ticket, WebEntry, WebFile
from tests.harness import ADMIN, BotEnv
from tests.telegram_fake import Chat, User

GRID = "SFQ-DH-01-G1"
GRID_GROUP = Chat(-1008000000001, "supergroup", title="第1网格")
WORKER = User(800_101, "网格员乙", language_code="zh-hans")


@dataclass
class Page:
    """One browser: its cookie jar, the CSRF token and the conversation it has seen."""

    url: str
    http: aiohttp.ClientSession
    origin: str
    language: str = "zh-CN,zh;q=0.9"
    csrf: str = ""
    cursor: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    strings: dict[str, str] = field(default_factory=dict)

    def _headers(self) -> dict[str, str]:
        return {"Origin": self.origin, "Accept-Language": self.language,
                CSRF_HEADER: self.csrf}

    def _take(self, answer: dict[str, Any]) -> None:
        seen = {m["seq"] for m in self.messages}
        for message in answer.get("messages", []):
            if message["seq"] in seen or message["seq"] <= self.cursor:
                continue
            if message["edit"]:
                for i, shown in enumerate(self.messages):
                    if shown["id"] == message["id"]:
                        self.messages[i] = {**message, "seq": shown["seq"]}
            else:
                self.messages.append(message)
        self.cursor = max(self.cursor, answer.get("cursor", 0))

    async def open(self, at: str | None = None) -> dict[str, Any]:
        async with self.http.post(self.url + "/chat/api/session", json={"at": at},
                                  headers=self._headers()) as response:
            assert response.status == 200, await response.text()
            answer = await response.json()
        self.csrf, self.strings = answer["csrf"], answer["strings"]
        self.messages, self.cursor = [], 0
        self._take(answer)
        return answer

    async def call(self, path: str, *, key: str | None = None, **payload: Any
                   ) -> tuple[int, dict[str, Any]]:
        payload["key"] = key or secrets.token_hex(8)
        async with self.http.post(f"{self.url}/chat/api/{path}?after={self.cursor}",
                                  json=payload, headers=self._headers()) as response:
            answer = await response.json()
            if response.status == 200:
                self._take(answer)
            return response.status, answer

    async def refresh(self) -> None:
        """What the page learns by polling (as it does while its socket is down)."""
        async with self.http.get(f"{self.url}/chat/api/messages?after={self.cursor}",
                                 headers=self._headers()) as response:
            assert response.status == 200
            self._take(await response.json())

    async def say(self, text: str, **extra: Any) -> dict[str, Any]:
        status, answer = await self.call("send", text=text, **extra)
        assert status == 200, answer
        return answer

    async def press(self, prefix: str) -> dict[str, Any]:
        """Press the newest button whose data starts with ``prefix``."""
        for message in reversed(self.messages):
            for row in message["buttons"]:
                for button in row:
                    if button.get("data", "").startswith(prefix):
                        status, answer = await self.call("press", message=message["id"],
                                                         data=button["data"])
                        assert status == 200, answer
                        return answer
        raise AssertionError(f"no button {prefix!r} in {self.texts()[-3:]}")

    def texts(self) -> list[str]:
        return [m["html"] for m in self.messages]

    def last(self) -> dict[str, Any]:
        return self.messages[-1]


@dataclass
class Chat_:
    env: BotEnv
    url: str
    jars: list[aiohttp.ClientSession] = field(default_factory=list)

    async def page(self, **kwargs: Any) -> Page:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.jars.append(http)
        return Page(self.url, http, origin=self.url, **kwargs)


@pytest.fixture
async def chat(bot: BotEnv) -> AsyncIterator[Chat_]:
    rt = bot.runtime
    server = WebServer(db=rt.db, clock=rt.clock, health=bot.app.bot_data.health,
                       metrics=rt.metrics, pages=[web_chat(bot.app).routes])
    port = await server.start("127.0.0.1", 0)
    await bot.send(bot.updates.command(GRID_GROUP, "/bind", GRID, user=ADMIN))
    await bot.deliver()
    env = Chat_(bot, f"http://127.0.0.1:{port}")
    yield env
    for jar in env.jars:
        await jar.close()
    await server.stop()


async def report(page: Page, description: str = "楼道里的灯坏了一个星期") -> None:
    """A report from the menu, at the poster's grid (the page was opened with at=GRID)."""
    await page.press(report_views.NEW)
    await page.press(report_views.CATEGORY + "infrastructure")
    await page.say(description)
    await page.press(report_views.SKIP + "media")
    status, answer = await page.call("contact", phone="138 0013 8000")
    assert status == 200, answer
    await page.press(report_views.SUBMIT)


async def test_a_resident_reports_from_the_web_and_the_grid_group_gets_the_card(
        chat: Chat_) -> None:
    page = await chat.page()
    opened = await page.open(at=GRID)
    assert opened["language"] == "zh_Hans" and opened["place"]["code"] == GRID
    assert page.messages and page.last()["buttons"], "a new conversation starts with the menu"
    menu = [b["data"] for row in page.last()["buttons"] for b in row if "data" in b]
    assert report_views.NEW in menu
    assert not any(d.startswith("ent") or d.startswith("bk") for d in menu), menu

    await report(page)
    created = " ".join(page.texts()[-3:])
    assert any(ch.isdigit() for ch in created)
    await chat.env.deliver()
    card = chat.env.last_text(GRID_GROUP.id)
    assert "🌐" in card and "138****8000" in card and "未验证" in card
    assert "楼道里的灯坏了一个星期" in card
    # The poster's grid was the place: the place was never asked.
    assert not any(m["ask"] == "location" for m in page.messages)
    # After the first request: a recovery code, once.
    assert sum("🔑" in t for t in page.texts()) == 1


async def test_a_workers_reply_reaches_the_page_live(chat: Chat_) -> None:
    page = await chat.page()
    await page.open(at=GRID)
    await report(page)
    await chat.env.deliver()
    card = next(m for m in chat.env.fake.messages_in(GRID_GROUP.id) if "🌐" in m.get("text", ""))
    ws = await page.http.ws_connect(page.url + "/chat/ws", headers={"Origin": page.origin})
    await ws.send_json({"after": page.cursor})
    await chat.env.send(chat.env.updates.group_text(GRID_GROUP, WORKER, "明天上午来修<b>灯</b>",
                                                    reply_to=card))
    await chat.env.deliver()
    pushed = await asyncio.wait_for(ws.receive_json(), 10)
    await ws.close()
    texts = [m["html"] for m in pushed["messages"]]
    assert any("明天上午来修&lt;b&gt;灯&lt;/b&gt;" in t for t in texts), texts
    # What the resident writes back in reply reaches the group under the card, marked.
    reply = next(m for m in pushed["messages"] if "明天上午来修" in m["html"])
    await page.say("好的，谢谢", reply_to=reply["id"])
    await chat.env.deliver()
    assert chat.env.last_text(GRID_GROUP.id).startswith("🌐")
    assert "好的，谢谢" in chat.env.last_text(GRID_GROUP.id)


async def test_a_double_tap_acts_once_and_a_retry_gets_the_same_answer(chat: Chat_) -> None:
    page = await chat.page()
    await page.open(at=GRID)
    await page.press(report_views.NEW)
    await page.press(report_views.CATEGORY + "infrastructure")
    before = page.cursor
    results = await asyncio.gather(*(page.call("send", key="samekey123", text="路灯不亮")
                                     for _ in range(3)))
    assert all(status == 200 for status, _ in results)
    async with chat.env.runtime.uow() as uow:
        said = await uow.session.scalar(select(func.count()).select_from(WebEntry).where(
            WebEntry.sender == "me", WebEntry.seq > before))
    assert said == 1
    asked = [m for m in page.messages if m["seq"] > before and m["from"] == "bot"]
    assert len(asked) == 1, [m["html"] for m in asked]


async def test_the_page_serves_its_own_files_and_nothing_beside_them(chat: Chat_) -> None:
    page = await chat.page()
    async with page.http.get(f"{page.url}/chat") as response:
        assert response.status == 200 and response.content_type == "text/html"
        assert response.headers["Cache-Control"] == "no-store"
        assert "Content-Security-Policy" in response.headers
    # Its own script and style, and what the pages share.
    for name, kind in (("chat.js", "text/javascript"), ("dom.js", "text/javascript"),
                       ("chat.css", "text/css"), ("pages.css", "text/css")):
        async with page.http.get(f"{page.url}/chat/static/{name}") as response:
            assert response.status == 200 and response.content_type == kind
            assert "Content-Security-Policy" in response.headers
    for name in ("chat.html", "../routes.py", "console.js"):
        async with page.http.get(f"{page.url}/chat/static/{name}") as response:
            assert response.status == 404, name


async def test_the_guards(chat: Chat_) -> None:
    page = await chat.page()
    await page.open()
    # A forged Origin, a missing CSRF token, no session at all.
    page.origin = "https://evil.example"
    status, answer = await page.call("send", text="hi")
    assert (status, answer["error"]) == (403, "origin")
    page.origin = page.url
    csrf, page.csrf = page.csrf, "wrong"
    status, answer = await page.call("send", text="hi")
    assert (status, answer["error"]) == (403, "csrf")
    page.csrf = csrf
    stranger = await chat.page()
    stranger.csrf = csrf
    status, answer = await stranger.call("send", text="hi")
    assert (status, answer["error"]) == (401, "session")
    # 5 000 characters, HTML in the text.
    status, answer = await page.call("send", text="长" * 5000)
    assert status == 400 and "4096" in answer["message"]
    answer = await page.say("<script>alert(1)</script>")
    mine = [m for m in answer["messages"] if m["from"] == "me"]
    assert mine[-1]["html"] == "&lt;script&gt;alert(1)&lt;/script&gt;"
    # Every answer carries the headers of a page on the open internet.
    async with page.http.get(page.url + "/chat/api/messages") as response:
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_session_cookie_is_httponly_and_rotated_on_first_use(chat: Chat_) -> None:
    page = await chat.page()
    async with page.http.post(page.url + "/chat/api/session", json={},
                              headers={"Origin": page.origin}) as response:
        cookie = response.cookies[COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/chat"
        page.csrf = (await response.json())["csrf"]
    first = cookie.value
    await page.say("你好")
    second = page.http.cookie_jar.filter_cookies(URL(page.url + "/chat"))[COOKIE].value
    assert second != first
    # The planted (first) token opens nothing any more.
    other = await chat.page()
    other.http.cookie_jar.update_cookies({COOKIE: first})
    other.csrf = page.csrf
    status, _ = await other.call("send", text="hi")
    assert status == 401


async def test_a_session_cannot_see_another_sessions_tickets_or_files(chat: Chat_) -> None:
    alice = await chat.page()
    await alice.open(at=GRID)
    await report(alice)
    async with chat.env.runtime.uow() as uow:
        ticket_id = await uow.session.scalar(select(func.max(Ticket.id)))
    mallory = await chat.page()
    await mallory.open()
    # A forged press of "my ticket <alice's id>" on a message of mallory's own.
    status, answer = await mallory.call("press", message=mallory.last()["id"],
                                        data=f"my:t:{ticket_id}")
    assert status == 200 and "失效" in answer["messages"][-1]["html"]
    assert all("楼道里的灯" not in t for t in mallory.texts())
    # Alice's photos and documents by number: mallory's conversation has no such entries.
    for seq in range(1, alice.cursor + 1):
        async with mallory.http.get(f"{mallory.url}/chat/api/file/{seq}/0") as response:
            assert response.status == 404


async def _upload(page: Page, content: bytes, filename: str) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field("key", secrets.token_hex(8))
    form.add_field("file", content, filename=filename, content_type="image/jpeg")
    async with page.http.post(f"{page.url}/chat/api/photo?after={page.cursor}", data=form,
                              headers=page._headers()) as response:
        answer = await response.json()
        if response.status == 200:
            page._take(answer)
        return response.status, answer


def _jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (64, 48), "orange")
    exif = Image.Exif()
    exif[0x8825] = {2: (31.0, 14.0, 0.0), 1: "N"}  # GPSInfo
    exif[0xA431] = "SERIAL-12345"                   # BodySerialNumber
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


async def test_photos_are_checked_by_content_and_lose_their_exif(chat: Chat_) -> None:
    page = await chat.page()
    await page.open(at=GRID)
    status, answer = await _upload(page, b"MZ\x90\x00" + b"\x00" * 500, "photo.jpg")
    assert (status, answer["error"]) == (400, "not_image")
    original = _jpeg_with_gps()
    assert b"SERIAL-12345" in original
    status, answer = await _upload(page, original, "IMG_0001.jpg")
    assert status == 200, answer
    async with chat.env.runtime.uow() as uow:
        kept = (await uow.session.scalars(select(WebFile))).all()
    assert len(kept) == 1
    assert b"SERIAL-12345" not in kept[0].content and b"Exif" not in kept[0].content
    assert Image.open(io.BytesIO(kept[0].content)).size == (64, 48)
    # The page sees the photo as its own message, and the bot offers to report it.
    mine = [m for m in page.messages if m["from"] == "me"][-1]
    async with page.http.get(page.url + mine["photos"][0]) as response:
        assert response.status == 200 and response.content_type == "image/jpeg"


async def test_limits_answer_with_a_clear_message(chat: Chat_) -> None:
    page = await chat.page()
    await page.open()
    limit = chat.env.runtime.config.web.messages_per_minute
    statuses = [(await page.call("send", text=f"第{i}条"))[0] for i in range(limit + 1)]
    assert statuses[-1] == 429 and statuses[:-1] == [200] * limit
    status, answer = await page.call("send", text="again")
    assert status == 429 and answer["message"] and answer["error"] == "rate"


async def test_the_recovery_code_opens_the_conversation_on_another_device(chat: Chat_) -> None:
    phone = await chat.page()
    await phone.open(at=GRID)
    await report(phone)
    note = next(t for t in phone.texts() if "🔑" in t)
    code = note.split("：", 1)[-1].split("<", 1)[0] if "：" in note else note
    code = next(word for word in code.replace("</b>", " ").split() if word.count("-") == 2)
    laptop = await chat.page()
    await laptop.open()
    status, answer = await laptop.call("recover", code="WRONG-CODE-XXXX")
    assert status == 400 and answer["error"] == "wrong_code"
    status, answer = await laptop.call("recover", code=code.lower())
    assert status == 200
    assert any("楼道里的灯坏了一个星期" in m["html"] for m in answer["messages"])


async def test_the_map_draws_the_grids(chat: Chat_) -> None:
    page = await chat.page()
    async with page.http.get(page.url + "/chat/api/map") as response:
        shown = await response.json()
    assert shown["grids"] and all(g["rings"] and len(g["rings"][0]) >= 4
                                  for g in shown["grids"])
    west, south, east, north = shown["bbox"]
    assert west < east and south < north
    json.dumps(shown)


async def test_claim_resolution_and_the_survey_reach_the_page(chat: Chat_) -> None:
    bot = chat.env
    page = await chat.page()
    await page.open(at=GRID)
    await report(page)
    await bot.deliver()
    card = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                if c.params["chat_id"] == GRID_GROUP.id and "🌐" in c.params["text"])
    async with bot.runtime.uow() as uow:
        ticket_id = await uow.session.scalar(select(func.max(Ticket.id)))
    await bot.send(bot.updates.callback(WORKER, f"tk:claim:{ticket_id}", card.result))
    await bot.send(bot.updates.callback(WORKER, f"tk:resolve:{ticket_id}", card.result))
    prompt = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                  if c.params["chat_id"] == GRID_GROUP.id
                  and c.params.get("reply_markup", {}).get("force_reply"))
    await bot.send(bot.updates.group_text(GRID_GROUP, WORKER, "灯已更换", reply_to=prompt.result))
    await bot.deliver()
    # The survey is due some hours after the resolution.
    for _ in range(48):
        bot.clock.advance(timedelta(hours=1))
        await bot.tick()
        await bot.deliver()
        await page.refresh()
        if any("sv:" in b.get("data", "") for m in page.messages for r in m["buttons"]
               for b in r):
            break
    texts = " ".join(page.texts())
    assert "灯已更换" in texts
    await page.press("sv:")  # solved: yes
    await page.press("sv:")  # the first score offered
    async with bot.runtime.uow() as uow:
        [survey] = list(await uow.surveys.of_ticket(ticket_id))
    assert survey.status == "answered" and survey.score is not None


async def test_my_tickets_add_information_and_withdraw_on_the_page(chat: Chat_) -> None:
    bot = chat.env
    page = await chat.page()
    await page.open(at=GRID)
    await report(page)
    await bot.deliver()
    await page.say("/mytickets")
    await page.press("my:t:")
    await page.press("my:add:")
    await page.say("灯在三楼和四楼之间")
    await bot.deliver()
    assert "灯在三楼和四楼之间" in bot.last_text(GRID_GROUP.id)
    await page.say("/mytickets")
    await page.press("my:t:")
    await page.press("my:wd:")
    await page.say("已经自己修好了")
    await bot.deliver()
    async with bot.runtime.uow() as uow:
        ticket = await uow.tickets.get(await uow.session.scalar(select(func.max(Ticket.id))))
    assert ticket.status == "withdrawn", ticket.status


async def test_a_photo_from_the_web_reaches_the_group_as_an_upload(chat: Chat_) -> None:
    bot = chat.env
    page = await chat.page()
    await page.open(at=GRID)
    await page.press(report_views.NEW)
    await page.press(report_views.CATEGORY + "infrastructure")
    await page.say("井盖松动了，晚上很危险，请尽快处理")
    status, answer = await _upload(page, _jpeg_with_gps(), "IMG_0002.JPG")
    assert status == 200, answer
    await page.press(report_views.PREFIX + "skip:media")  # done with photos
    status, answer = await page.call("contact", phone="13800138000")
    assert status == 200
    await page.press(report_views.SUBMIT)
    await bot.deliver()
    photos = [c for c in bot.fake.calls_to("sendPhoto") + bot.fake.calls_to("sendMediaGroup")
              if c.params["chat_id"] == GRID_GROUP.id]
    assert photos, "the card's photo"
    uploaded = photos[-1]
    assert uploaded.files, "sent as a file, not a file id Telegram never saw"
    assert all(b"SERIAL-12345" not in f.content and f.content.startswith(b"\xff\xd8")
               for f in uploaded.files.values())


async def test_a_workers_photo_reaches_the_page(chat: Chat_) -> None:
    bot = chat.env
    page = await chat.page()
    await page.open(at=GRID)
    await report(page)
    await bot.deliver()
    card = next(m for m in bot.fake.messages_in(GRID_GROUP.id) if "🌐" in m.get("text", ""))
    photo = bot.updates.photo(WORKER, caption="已修好", chat=GRID_GROUP)
    sizes = [size.to_dict() for size in photo.message.photo]
    bot.fake.add_file(sizes[-1]["file_id"], b"\xff\xd8fixed-lamp-photo")
    message = bot.updates._message(GRID_GROUP, WORKER, photo=sizes, caption="已修好",
                                   reply_to=card)
    await bot.send(bot.updates._update(message=message))
    await bot.deliver()
    await page.refresh()
    shown = next(m for m in reversed(page.messages) if m["photos"])
    assert "已修好" in shown["html"]
    async with page.http.get(page.url + shown["photos"][0]) as response:
        assert response.status == 200
        assert await response.read() == b"\xff\xd8fixed-lamp-photo"


async def test_my_data_and_deleting_it_on_the_page(chat: Chat_) -> None:
    bot = chat.env
    page = await chat.page()
    await page.open(at=GRID)
    await report(page)
    answer = await page.say("/mydata")
    copy = next(m for m in answer["messages"] if m["document"])
    async with page.http.get(page.url + copy["document"]["url"]) as response:
        assert response.status == 200
        assert "attachment" in response.headers["Content-Disposition"]
        data = json.loads(await response.read())
    assert "楼道里的灯坏了一个星期" in json.dumps(data, ensure_ascii=False)
    # Another browser cannot fetch it by its number.
    stranger = await chat.page()
    await stranger.open()
    async with stranger.http.get(stranger.url + copy["document"]["url"]) as response:
        assert response.status in (404, 200)
        if response.status == 200:  # the stranger's own entry of that number, not the copy
            assert b"\xe6\xa5\xbc\xe9\x81\x93" not in await response.read()

    await page.say("/deletemydata")
    await page.press("dd:y:")
    await bot.deliver()
    async with bot.runtime.uow() as uow:
        left = await uow.session.scalar(select(func.count()).select_from(WebEntry).where(
            WebEntry.body.is_not(None)))
        texts = [e.body.get("html", "") for e in (await uow.session.scalars(
            select(WebEntry))).all()]
    assert left >= 1 and not any("楼道里的灯" in text for text in texts)
    # The page goes on working, on an empty conversation.
    await page.refresh()
    await page.say("/start")


async def test_the_language_follows_the_browser_and_can_be_switched(chat: Chat_) -> None:
    page = await chat.page(language="en-GB,en;q=0.8")
    opened = await page.open()
    assert opened["language"] == "en" and opened["strings"]["send"] == "Send"
    status, answer = await page.call("language", language="zh_Hant")
    assert status == 200 and answer["language"] == "zh_Hant"
    assert answer["strings"]["send"] == "傳送"
    answer = await page.say("/help")
    assert any("網格" in m["html"] for m in answer["messages"] if m["from"] == "bot")


async def test_retention_forgets_old_conversations_but_not_while_a_ticket_is_open(
        bot: BotEnv) -> None:
    rt = bot.runtime
    long_ago = rt.clock.now() - timedelta(days=400)
    async with rt.uow() as uow:
        _, done = await rules.open_session(uow, long_ago)
        _, busy = await rules.open_session(uow, long_ago)
        for person in (done, busy):
            await uow.web.append(person.resident_id, sender="me", body={"html": "旧的话"},
                                 now=long_ago)
        grid = await uow.nodes.by_code(GRID)
        await tickets.create(uow, rt.clock, rt.config, tickets.NewReport(
            category=rt.config.category("sanitation"), description="还没处理完的事情",
            reporter_id=busy.user_id, language="zh_Hans", grid_id=grid.id))
        await uow.commit()
    async with rt.uow() as uow:
        assert await uow.web.forget_old_conversations(rt.clock.now() - timedelta(days=30)) == 1
        await uow.commit()
    async with rt.uow() as uow:
        assert await uow.web.entries_after(done.resident_id, 0) == []
        assert len(await uow.web.entries_after(busy.resident_id, 0)) == 1
