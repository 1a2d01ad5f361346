"""The centres' console in a real browser: headless Chromium (Debian's, driven by Playwright)
at 1366×768 against `gridgate demo`. The district centre's 周伟 signs in through the bot in the
sandbox, sees the map, drills down, reads the rates, opens the queue and a ticket, nudges the
grid's group (the nudge arrives there) and passes the ticket up; the legal desk's lawyer sees
only the desk's tickets, also when the page's address and API calls are edited; a forged or
reused sign-in code is refused. Screenshots of each page are kept in test-artifacts/console/.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from bot.config import example_config_path
from bot.i18n import Translator
from bot.sandbox import demo
from bot.views import report as report_views
from tests.browsing import ROOT, artefacts, chromium
from tests.sandbox_client import People, gridgate, running, text_of
from tests.telegram_fake import spec_path

ARTEFACTS = ROOT / "test-artifacts" / "console"
STEP = 20_000
SCREEN = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    artefacts("console")
    async with chromium() as browser:
        yield browser


class Screen:
    def __init__(self, page: Page, name: str) -> None:
        self.page, self.name, self.count = page, name, 0
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" and not
                m.text.startswith("Failed to load resource") else None)

    async def shot(self, step: str) -> None:
        self.count += 1
        await self.page.screenshot(path=ARTEFACTS / f"{self.name}-{self.count:02d}-{step}.png")


async def sign_in(browser: Browser, url: str, people: People, user: int,
                  name: str) -> tuple[Screen, str]:
    """A new browser on the console, signed in by ``user`` pressing Start in the sandbox; the
    screen and the /start command it showed."""
    context = await browser.new_context(viewport=SCREEN, locale="zh-CN")
    screen = Screen(await context.new_page(), name)
    await screen.page.goto(url)
    command = screen.page.get_by_test_id("signin-command")
    await expect(command).to_have_text(re.compile(r"/start console_\S+"), timeout=STEP)
    await expect(screen.page.get_by_test_id("signin-qr")).to_be_visible()
    await screen.shot("sign-in")
    sent = await command.inner_text()
    await people.say(user, user, sent)
    await expect(screen.page.get_by_test_id("console")).to_be_visible(timeout=STEP)
    return screen, sent


async def web_report(chat: str, description: str) -> None:
    """A resident's report through the web chat's API (quicker than its page, tested
    elsewhere), from a browser of their own."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await _report(http, chat, description)


async def _report(http: aiohttp.ClientSession, chat: str, description: str) -> None:
    origin = re.match(r"https?://[^/]+", chat)[0]
    async with http.post(f"{origin}/chat/api/session", json={"at": demo.GRID_CODE},
                         headers={"Origin": origin}) as response:
        csrf = (await response.json())["csrf"]
    shown: list[dict[str, Any]] = []

    async def call(path: str, body: dict[str, Any]) -> None:
        body["key"] = f"k{len(shown)}x{abs(hash(description)) % 10**8}"
        async with http.post(f"{origin}/chat/api/{path}?after=0", json=body,
                             headers={"Origin": origin, "X-CSRF-Token": csrf}) as response:
            assert response.status == 200, await response.text()
            shown[:] = (await response.json())["messages"]

    async def press(prefix: str) -> None:
        for message in reversed(shown):
            for button in (b for row in message["buttons"] for b in row):
                if button.get("data", "").startswith(prefix):
                    await call("press", {"message": message["id"], "data": button["data"]})
                    return
        raise AssertionError(prefix)

    await call("send", {"text": "/report"})
    await press(report_views.CATEGORY + "sanitation")
    await call("send", {"text": description})
    await press(report_views.SKIP + "media")
    await call("contact", {"phone": "13800138000"})
    await press(report_views.SUBMIT)


async def test_the_console_in_the_browser(browser: Browser, tmp_path: Path, catalogs) -> None:
    t: Translator = catalogs["zh_Hans"]
    args = ("demo", "--port", "0", "--spec", str(spec_path()), "--data", str(tmp_path / "data"),
            "--config", str(example_config_path()))
    async with gridgate(tmp_path, *args) as (_, address, _lines), \
            aiohttp.ClientSession() as http:
        people = People(http, address)
        state = await running(people)
        chat = state["web_chat_url"]
        url = chat.split("/chat", 1)[0] + "/console"
        await web_report(chat, "小区东门垃圾桶满了三天没人清运，气味很大")
        card = await people.wait_for_text(demo.GRID_GROUP, "小区东门垃圾桶")
        number = re.search(r"\d{4}-\d{4}", text_of(card))[0]

        # The district centre's 周伟 (an administrator) signs in through the bot.
        staff, used = await sign_in(browser, url, people, demo.CENTRE_STAFF, "district")
        page = staff.page
        await expect(page.get_by_test_id("user-name")).to_contain_text("周伟")
        # The map: the district's grids, the reported one coloured, its ticket a point.
        await expect(page.get_by_test_id("map-grid").first).to_be_visible(timeout=STEP)
        assert await page.get_by_test_id("map-grid").count() >= 12
        await expect(page.get_by_test_id("map-point")).to_have_count(0)  # no place given
        await staff.shot("map")
        # Drill down to the street, then back up.
        await page.get_by_test_id("crumb-children").select_option(index=1)
        await expect(page.get_by_test_id("crumb")).to_have_count(2, timeout=STEP)
        await staff.shot("map-street")
        await page.get_by_test_id("crumb").first.click()
        await expect(page.get_by_test_id("crumb")).to_have_count(1, timeout=STEP)
        # The rates, with how each is counted, and their trends.
        await page.get_by_test_id("tab-rates").click()
        await expect(page.get_by_test_id("rates-row").first).to_be_visible(timeout=STEP)
        await expect(page.get_by_test_id("explain-response")).not_to_be_empty()
        await expect(page.get_by_test_id("trend-resolution")).to_be_visible()
        await staff.shot("rates")
        # The queue: the new ticket is unclaimed; its page; a nudge; passing it up.
        await page.get_by_test_id("tab-queue").click()
        await page.get_by_test_id("queue-view-unclaimed").click()
        row = page.get_by_test_id("queue-row").filter(has_text=number)
        await expect(row).to_be_visible(timeout=STEP)
        await staff.shot("queue")
        await row.get_by_test_id("queue-link").click()
        await expect(page.get_by_test_id("ticket-number")).to_have_text(number, timeout=STEP)
        await expect(page.get_by_test_id("ticket-history")).not_to_be_empty()
        await expect(page.get_by_test_id("ticket-reporter")).to_be_visible()  # an admin
        await page.get_by_test_id("nudge-text").fill("请今天下班前处理")
        await page.get_by_test_id("nudge").click()
        await expect(page.get_by_test_id("nudge-result")).not_to_be_empty(timeout=STEP)
        nudge = await people.wait_for_text(demo.GRID_GROUP, "📣")
        assert number in text_of(nudge) and "请今天下班前处理" in text_of(nudge)
        await staff.shot("ticket-nudged")
        await page.get_by_test_id("escalate").click()
        await page.get_by_test_id("confirm-yes").click()
        await expect(page.get_by_test_id("escalate-result")).not_to_be_empty(timeout=STEP)
        await people.wait_for(demo.CENTRE_GROUP, lambda m: number in text_of(m),
                              "the ticket passed up to the district centre")
        await staff.shot("ticket-passed-up")
        # Live: a second report shows up in the open queue without a reload.
        await page.get_by_test_id("tab-queue").click()
        await page.get_by_test_id("queue-view-all").click()
        before = await page.get_by_test_id("queue-row").count()
        await web_report(chat, "楼道灯坏了一个星期，晚上上下楼很不安全")
        await expect(page.get_by_test_id("queue-row")).to_have_count(before + 1, timeout=STEP)
        # The wall display and the other languages.
        await page.get_by_test_id("wall-toggle").click()
        await staff.shot("wall")
        await page.get_by_test_id("wall-exit").click()
        await page.get_by_test_id("language").select_option("en")
        await expect(page.get_by_test_id("tab-map")).to_have_text("Map", timeout=STEP)
        await staff.shot("english")
        await page.get_by_test_id("language").select_option("zh_Hans")
        assert staff.errors == [], staff.errors

        # The legal desk's lawyer sees the desk's tickets only, whatever the address says.
        lawyer, _ = await sign_in(browser, url, people, demo.LAWYER, "desk")
        assert await lawyer.page.get_by_test_id("user-name").inner_text()
        status = await lawyer.page.evaluate("""async (number) => {
            const found = await fetch('/console/api/queue?view=all&q=' + number);
            return [found.status, (await found.json()).total];
        }""", number)
        assert status == [200, 0]
        tree = await lawyer.page.evaluate(
            "async () => (await (await fetch('/console/api/tree')).json()).nodes")
        assert {node["code"] for node in tree} == {demo.DESK_CODE}
        ticket_id = await page.evaluate("""async (number) => (await (await fetch(
            '/console/api/queue?view=all&q=' + number)).json()).tickets[0].id""", number)
        assert await lawyer.page.evaluate(
            "async (id) => (await fetch('/console/api/ticket/' + id)).status", ticket_id) == 404
        await lawyer.page.goto(f"{url}#ticket/{ticket_id}")
        await expect(lawyer.page.get_by_test_id("error")).to_be_visible(timeout=STEP)
        await lawyer.shot("not-theirs")

        # A forged code, a used one and a grid worker (no centre's group) get nothing.
        not_valid = t("This console sign-in code is not valid any more (each works once, for "
                      "5 minutes). Open the console page again for a new one.")
        for code in ("/start console_" + "Q" * 32, used):
            mark = (await people.messages(demo.RESIDENT) or [{"message_id": 0}])[-1]
            await people.say(demo.RESIDENT, demo.RESIDENT, code)
            await people.wait_for_text(demo.RESIDENT, not_valid, after=mark["message_id"])
        context = await browser.new_context(viewport=SCREEN, locale="zh-CN")
        third = Screen(await context.new_page(), "refused")
        await third.page.goto(url)
        command = third.page.get_by_test_id("signin-command")
        await expect(command).to_have_text(re.compile(r"/start console_\S+"), timeout=STEP)
        await people.say(demo.WORKER_A, demo.WORKER_A, await command.inner_text())
        await expect(third.page.get_by_test_id("signin-status")).to_have_text(
            re.compile(".+"), timeout=STEP)
        await expect(third.page.get_by_test_id("signin-new")).to_be_visible(timeout=STEP)
        await third.shot("refused")
        assert third.errors == [] and lawyer.errors == []
        await context.close()
