"""The web chat in a real browser: headless Chromium (Debian's, driven by Playwright) on a 375 px
phone screen talks to `gridgate demo`'s bot over HTTP, while grid workers answer in the demo's
Telegram sandbox.

A resident without Telegram reports with a photo and a tap on the map; the card reaches the
grid's Telegram group; a worker's claim, reply and resolution appear live on the page; the
survey is answered there; a reload shows the whole history; the bot restarted in the middle of
a report loses nothing; the page speaks three languages; hostile input is refused clearly.
Screenshots of each step are kept in test-artifacts/webchat/ (CI keeps that folder).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from bot.config import example_config_path
from bot.i18n import Translator
from bot.sandbox import demo
from bot.views import report as report_views
from tests.browsing import ROOT, artefacts, chromium
from tests.sandbox_client import FAST_SURVEY, People, gridgate, png, running, text_of
from tests.telegram_fake import spec_path

ARTEFACTS = ROOT / "test-artifacts" / "webchat"
STEP = 20_000  # ms: how long one step may take in the page
NUMBER = re.compile(r"\d{4}-\d{4}")
PHONE = {"width": 375, "height": 740}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    artefacts("webchat")
    async with chromium() as browser:
        yield browser


class Phone:
    """One phone's browser on the web chat, with the script errors it shows."""

    def __init__(self, context: BrowserContext, page: Page, name: str) -> None:
        self.context, self.page, self.name = context, page, name
        self.errors: list[str] = []
        self.shots = 0
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" and not (
            m.text.startswith(("Failed to load resource", "WebSocket connection"))) else None)

    @classmethod
    async def open(cls, browser: Browser, url: str, name: str, *,
                   locale: str = "zh-CN") -> Phone:
        context = await browser.new_context(viewport=PHONE, locale=locale,
                                            is_mobile=True, has_touch=True)
        phone = cls(context, await context.new_page(), name)
        await phone.page.goto(url)
        await expect(phone.bubbles("bot").first).to_be_visible(timeout=STEP)
        return phone

    async def shot(self, step: str) -> None:
        self.shots += 1
        await self.page.screenshot(path=ARTEFACTS / f"{self.name}-{self.shots:02d}-{step}.png")

    def bubbles(self, sender: str):
        return self.page.locator(f'[data-testid="bubble"][data-from="{sender}"]')

    def last_bot(self):
        return self.bubbles("bot").last

    async def press(self, data: str = "", *, label: str = "") -> None:
        """Press the newest button whose data is ``data``, or else starts with it (or the
        newest with this label)."""
        if label:
            button = self.page.locator('[data-testid="button"]', has_text=label).last
        else:
            exact = self.page.locator(f'[data-testid="button"][data-data="{data}"]')
            button = (exact if await exact.count() else self.page.locator(
                f'[data-testid="button"][data-data^="{data}"]')).last
        await expect(button).to_be_enabled(timeout=STEP)
        before = await self.bubbles("bot").count()
        pressed = await button.element_handle()
        await button.click()
        # Answered: the message was edited (drawn anew) or the bot said something new.
        await self.page.wait_for_function(
            """([el, before]) => !el.isConnected || document.querySelectorAll(
                '[data-testid="bubble"][data-from="bot"]').length !== before""",
            arg=[pressed, before], timeout=STEP)

    async def write(self, text: str) -> None:
        box = self.page.get_by_test_id("input")
        await box.fill(text)
        await self.page.get_by_test_id("send").click()
        await expect(box).to_have_value("")

    async def api(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A call of the page's own API from inside the page (its origin, its cookie)."""
        return await self.page.evaluate("""async ([path, body]) => {
            const opened = await fetch('/chat/api/session', {method: 'POST',
                headers: {'Content-Type': 'application/json'}, body: '{}'});
            const csrf = (await opened.json()).csrf;
            const key = 'k' + Math.random().toString(36).slice(2, 14);
            const response = await fetch('/chat/api/' + path + '?after=0', {method: 'POST',
                headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
                body: JSON.stringify({key, ...body})});
            return [response.status, await response.json()];
        }""", [path, body])

    async def close(self) -> None:
        assert self.errors == [], self.errors
        await self.context.close()


async def test_a_web_resident_reports_and_a_telegram_group_answers(
        browser: Browser, tmp_path: Path, catalogs) -> None:
    fast = tmp_path / "fast.toml"
    # The four quick reports below go faster than a person would: not what the limit is for.
    fast.write_text(FAST_SURVEY + "\n[web]\nmessages_per_minute = 300\n", "utf-8")
    t: Translator = catalogs["zh_Hans"]
    args = ("demo", "--port", "0", "--spec", str(spec_path()), "--data", str(tmp_path / "data"),
            "--config", str(example_config_path()), "--config", str(fast))
    async with gridgate(tmp_path, *args) as (_, address, _lines), \
            aiohttp.ClientSession() as session:
        people = People(session, address)
        state = await running(people)
        poster_url = state["web_chat_url"]
        chat_url = poster_url.split("?", 1)[0]

        # A phone without Telegram opens the chat (not from a poster: the place is asked).
        me = await Phone.open(browser, chat_url, "resident")
        await expect(me.page.get_by_test_id("title")).to_have_text(
            t("Community service chat"))
        await me.shot("welcome")
        await me.press(report_views.NEW)
        await me.press("rp:cat:infrastructure")
        await me.write("小区北门的路灯坏了一个星期，晚上很黑，老人出行不方便")
        picture = tmp_path / "lamp.png"
        picture.write_bytes(png(64, 48, (200, 160, 40)))
        await me.page.get_by_test_id("photo-input").set_input_files(picture)
        await expect(me.bubbles("me").locator("img").last).to_be_visible(timeout=STEP)
        await me.shot("photo")
        await me.press("rp:skip:media")  # no more photos
        # The place: a tap on the grid on the map, then confirm.
        await send_place(me, shoot=True)
        # The phone number, typed (the web has no contact to share).
        await expect(me.page.get_by_test_id("phone")).to_be_visible(timeout=STEP)
        await me.page.get_by_test_id("phone").fill("138 0013 8000")
        before = await me.bubbles("bot").count()
        await me.page.get_by_test_id("phone-send").click()
        await expect(me.bubbles("bot")).not_to_have_count(before, timeout=STEP)
        await expect(me.last_bot().locator('[data-data^="rp:submit"]')).to_be_visible(
            timeout=STEP)
        await me.press("rp:submit")
        await expect(me.page.locator('[data-testid="bubble"]', has_text=NUMBER).last
                     ).to_be_visible(timeout=STEP)
        number = NUMBER.search(await me.page.locator('[data-testid="bubble"]',
                                                     has_text=NUMBER).last.inner_text())[0]
        await expect(me.page.locator('[data-testid="bubble"]', has_text="🔑")).to_have_count(1)
        await me.shot("submitted")

        # The card reaches the grid's Telegram group, marked as from the web, with the photo.
        card = await people.wait_for_text(demo.GRID_GROUP, number)
        assert "🌐" in text_of(card) and "未验证" in text_of(card), text_of(card)
        photos = await people.wait_for(demo.GRID_GROUP, lambda m: bool(m.get("photo")),
                                       "the resident's photo")
        assert photos
        # A worker claims it and answers: both appear on the page, live.
        await people.press(demo.GRID_GROUP, demo.WORKER_A, card, "tk:claim")
        await people.say(demo.GRID_GROUP, demo.WORKER_A, "您好，明天上午来修<路灯>",
                         reply_to=card["message_id"])
        await expect(me.bubbles("bot").filter(has_text="明天上午来修<路灯>")).to_be_visible(
            timeout=STEP)
        await me.shot("reply-live")
        # The resident answers the worker on the page: it reaches the group under the card.
        reply = me.bubbles("bot").filter(has_text="明天上午来修").last
        await reply.get_by_test_id("reply").click()
        await expect(me.page.locator(".reply-chip")).to_contain_text("明天上午来修")
        await me.write("好的，谢谢，北门进来左手边那根")
        await people.wait_for(demo.GRID_GROUP, lambda m: "北门进来左手边" in text_of(m),
                              "the resident's answer")
        # Resolved with a note, then the survey (seconds later in this demo) on the page.
        card = await people.wait_for_button(demo.GRID_GROUP, "tk:resolve", "the claimed card")
        await people.press(demo.GRID_GROUP, demo.WORKER_A, card, "tk:resolve")
        question = await people.wait_for_text(demo.GRID_GROUP, t(
            "Reply to this message with the resolution note for No. {number}.", number=number))
        await people.say(demo.GRID_GROUP, demo.WORKER_A, "已更换灯泡",
                         reply_to=question["message_id"])
        await expect(me.bubbles("bot").filter(has_text="已更换灯泡")).to_be_visible(timeout=STEP)
        await expect(me.page.locator('[data-testid="button"][data-data$=":y"]').last
                     ).to_be_visible(timeout=STEP)
        await me.shot("survey")
        await me.press(label=t("✅ Yes, solved"))
        await me.press(label=t("😊 Very satisfied"))
        closed = t("We have closed {request}.", request=t("your report"))
        await expect(me.bubbles("bot").filter(has_text=closed).last).to_be_visible(timeout=STEP)
        await me.shot("rated")

        # A reload shows everything that happened, in order, once.
        shown = await me.page.locator('[data-testid="bubble"]').all_inner_texts()
        await me.page.reload()
        await expect(me.page.locator('[data-testid="bubble"]')).to_have_count(len(shown),
                                                                             timeout=STEP)
        assert await me.page.locator('[data-testid="bubble"]').all_inner_texts() == shown
        await me.shot("reloaded")

        # The bot restarts in the middle of a report: the page reconnects, nothing is lost.
        await me.press(report_views.NEW)  # from the welcome menu's buttons, still on the page
        await me.press("rp:cat:infrastructure")
        async with session.post(f"{address}/sandbox/bot/restart") as response:
            assert response.status == 200
        await running(people)
        before = await me.bubbles("bot").count()
        await me.write("健身器材的螺丝松了，孩子玩的时候很危险")
        await expect(me.bubbles("me").last).to_contain_text("健身器材")
        await expect(me.bubbles("bot")).not_to_have_count(before, timeout=STEP)
        await expect(me.page.locator('[data-testid="button"][data-data^="rp:skip:media"]').last
                     ).to_be_visible(timeout=STEP)
        await expect(me.page.get_by_test_id("reconnecting")).to_be_hidden(timeout=STEP)
        await me.shot("after-restart")

        # Hostile input: HTML, 5 000 characters, an .exe called .jpg, a forged origin.
        await me.write("<b>粗体</b><img src=x onerror=alert(1)>")
        await expect(me.bubbles("me").last.locator(".text")).to_have_text(
            "<b>粗体</b><img src=x onerror=alert(1)>")
        assert await me.bubbles("me").last.locator("img, b").count() == 0
        status, answer = await me.api("send", {"text": "长" * 5000})
        assert status == 400 and "4096" in answer["message"]
        fake = tmp_path / "photo.jpg"
        fake.write_bytes(b"MZ\x90\x00\x03" + b"\x00" * 2000)
        await me.page.get_by_test_id("photo-input").set_input_files(fake)
        await expect(me.page.get_by_test_id("system").last).to_contain_text(
            t("Only photos can be sent here (JPEG, PNG or WebP)."), timeout=STEP)
        async with session.post(f"{chat_url}/api/session",
                                json={}, headers={"Origin": "https://evil.example"}) as response:
            assert response.status == 403
        await me.shot("hostile")

        # A sixth report within the hour is refused, with a clear message (four more go
        # through the page's own API, quickly).
        await me.write("/cancel")
        for i in range(4):
            await quick_report(me, i)
        await me.press(report_views.NEW)
        await me.press("rp:cat:infrastructure")
        await me.write("第六次报事：楼道里的灯也坏了，晚上看不清台阶")
        await me.press("rp:skip:media")
        await send_place(me)
        await me.page.get_by_test_id("phone").fill("13800138000")
        before = await me.bubbles("bot").count()
        await me.page.get_by_test_id("phone-send").click()
        await expect(me.bubbles("bot")).not_to_have_count(before, timeout=STEP)
        await expect(me.last_bot().locator('[data-data^="rp:submit"]')).to_be_visible(
            timeout=STEP)  # this report's summary, not an earlier one's
        await me.press("rp:submit")
        if await me.last_bot().locator('[data-data^="rp:new_anyway"]').count():
            await me.press("rp:new_anyway")  # not the open ticket nearby: a new one
        await expect(me.last_bot()).to_contain_text(t(
            "You have already sent {limit} reports within the last hour, the most we accept. "
            "Your report is kept: press Submit again later.", limit=5), timeout=STEP)
        await me.shot("over-the-limit")

        # Another phone cannot see the resident's tickets, even by a forged button.
        other = await Phone.open(browser, poster_url, "neighbour")
        status, answer = await other.api("press", {"message": 1, "data": "my:t:1"})
        assert status == 200
        assert all(number not in m["html"] for m in answer["messages"])
        assert all("路灯" not in m["html"] for m in answer["messages"])
        # From the poster the grid is already chosen: the report never asks for the place.
        await expect(other.page.get_by_test_id("place")).to_be_visible()
        await other.shot("from-the-poster")

        # Three languages: the page's own words and the bot's.
        for locale, language, title in (("en-GB", "en", "Community service chat"),
                                        ("zh-TW", "zh_Hant", "社區服務聊天")):
            visitor = await Phone.open(browser, poster_url, f"visitor-{language}",
                                       locale=locale)
            await expect(visitor.page.get_by_test_id("title")).to_have_text(title)
            welcome = catalogs[language]("Type a message")
            await expect(visitor.page.get_by_test_id("input")).to_have_attribute(
                "placeholder", welcome)
            await visitor.shot("language")
            await visitor.close()
        await other.page.get_by_test_id("language").select_option("en")
        await expect(other.page.get_by_test_id("title")).to_have_text("Community service chat",
                                                                      timeout=STEP)
        await other.shot("switched-to-english")

        await other.close()
        await me.close()


async def send_place(phone: Phone, *, shoot: bool = False) -> None:
    """The place asked for: "pick on the map" (offered with the question), a tap on the
    demo's grid, confirmed."""
    pick = phone.page.get_by_test_id("pick-on-map")
    await expect(pick).to_be_visible(timeout=STEP)
    await pick.click()
    await expect(phone.page.get_by_test_id("map")).to_be_visible()
    await phone.page.locator(f'[data-testid="map"] path[data-code="{demo.GRID_CODE}"]').click()
    if shoot:
        await phone.shot("map")
    before = await phone.bubbles("bot").count()
    await phone.page.get_by_test_id("map-confirm").click()
    await expect(phone.bubbles("bot")).not_to_have_count(before, timeout=STEP)


async def quick_report(phone: Phone, index: int) -> None:
    """Another whole report through the page's own API (the hourly limit counts them all)."""
    shown: list[dict[str, Any]] = []

    async def call(path: str, body: dict[str, Any]) -> None:
        status, answer = await phone.api(path, body)
        assert status == 200, answer
        shown.extend(answer["messages"])

    async def press(prefix: str) -> bool:
        for message in reversed(shown):
            for button in (b for row in message["buttons"] for b in row):
                if button.get("data", "").startswith(prefix):
                    await call("press", {"message": message["id"], "data": button["data"]})
                    return True
        return False

    await call("send", {"text": "/report"})
    assert await press("rp:cat:infrastructure")
    await call("send", {"text": f"第{index + 2}次报事：小区里的井盖又松动了，请尽快处理"})
    assert await press("rp:skip:media")
    await call("location", {"latitude": demo.GRID_POINT[0], "longitude": demo.GRID_POINT[1]})
    await call("contact", {"phone": "13800138000"})
    assert await press("rp:submit")
    if any(b.get("data", "").startswith("rp:new_anyway")
           for b in (b for row in shown[-1]["buttons"] for b in row)):
        assert await press("rp:new_anyway")
    assert NUMBER.search(" ".join(m["html"] for m in shown[-3:])), [m["html"] for m in shown[-3:]]
