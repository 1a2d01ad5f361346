"""The demo in a browser: people use the page of `gridgate demo` in headless Chromium (Debian's
chromium, driven by Playwright) — a resident's report with a photo and a place clicked on the
map, a worker's claim, reply and resolution, the resident's rating — in three languages.

Screenshots of each step are kept in test-artifacts/browser/ (CI keeps that folder). The page
must raise no script error, and the bot no Bot API violation.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from bot.config import example_config_path
from bot.i18n import Translator
from bot.sandbox import demo
from bot.sandbox.apispec import html_visible_text
from bot.views.menu import private_help_text as private_help
from tests.browsing import ROOT, artefacts, chromium
from tests.sandbox_client import FAST_SURVEY, People, gridgate, png, running, stop
from tests.telegram_fake import spec_path

ARTEFACTS = ROOT / "test-artifacts" / "browser"
STEP = 20_000  # ms: how long one step may take in the page
NUMBER = re.compile(r"\d{4}-\d{4}")  # a ticket number, e.g. 1206-0001


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    artefacts("browser")
    async with chromium() as browser:
        yield browser


async def open_page(browser: Browser, width: int, height: int) -> tuple[Page, list[str]]:
    """A fresh browser window of this size, and the script errors it will show."""
    context = await browser.new_context(viewport={"width": width, "height": height},
                                        locale="zh-CN")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Script errors, and errors the page logs; a refused request (a 400 the page shows as a
    # message) is the browser's own network log, not the page's.
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not
            m.text.startswith("Failed to load resource") else None)
    return page, errors


class Screens:
    def __init__(self, page: Page) -> None:
        self.page, self.count = page, 0

    async def shot(self, name: str) -> None:
        self.count += 1
        await self.page.screenshot(path=ARTEFACTS / f"{self.count:02d}-{name}.png", full_page=True)


def help_heading(t: Translator) -> str:
    return html_visible_text(private_help(t)).splitlines()[0]


def pane(page: Page, chat_id: int):
    return page.locator(f'section.pane[data-chat-id="{chat_id}"]')


def bot_messages(page: Page, chat_id: int):
    return pane(page, chat_id).locator('.message[data-from-bot="true"]')


async def write(page: Page, chat_id: int, text: str) -> None:
    box = pane(page, chat_id).locator("textarea[name=text]")
    await box.fill(text)
    await pane(page, chat_id).locator("button[name=send]").click()
    await expect(box).to_have_value("")


async def press(page: Page, chat_id: int, label: str) -> None:
    """Press the button with this label on the bot's newest message, once it has one (older
    messages keep their buttons, as in Telegram, and pressing those is another test's job)."""
    button = bot_messages(page, chat_id).last.locator("button.inline-button", has_text=label)
    await expect(button).to_be_enabled(timeout=STEP)
    await button.click()


async def test_a_report_from_the_resident_to_the_rating_in_the_browser(
        browser: Browser, tmp_path: Path, catalogs) -> None:
    fast = tmp_path / "fast.toml"
    fast.write_text(FAST_SURVEY, "utf-8")
    t: Translator = catalogs["zh_Hans"]
    args = ("demo", "--port", "0", "--spec", str(spec_path()), "--data", str(tmp_path / "data"),
            "--config", str(example_config_path()), "--config", str(fast))
    async with gridgate(tmp_path, *args) as (process, address, _), \
            aiohttp.ClientSession() as session:
        await running(People(session, address))
        page, errors = await open_page(browser, 1800, 1000)
        screens = Screens(page)
        await page.goto(f"{address}/")
        await expect(page.locator('.bot-status[data-status="running"]')).to_be_visible()
        await expect(bot_messages(page, demo.GRID_GROUP).last).to_be_visible(timeout=STEP)
        await screens.shot("start")

        # The resident reports: category, description, a photo, a place on the map, no contact.
        me = demo.RESIDENT
        await write(page, me, "/report")
        await press(page, me, "环境卫生")  # category names come from the configuration
        # The description question, with its Back button.
        await expect(bot_messages(page, me).last.locator("button.inline-button",
                                                         has_text=t("⬅️ Back"))
                     ).to_be_visible(timeout=STEP)
        await write(page, me, "小区东门垃圾桶满了三天没人清运，气味很大")
        await expect(bot_messages(page, me).last.locator("button.inline-button",
                                                         has_text=t("Skip"))).to_be_visible(
            timeout=STEP)
        picture = tmp_path / "rubbish.png"
        picture.write_bytes(png(64, 48, (90, 140, 60)))
        # Like Telegram's attach dialog: the photo waits above the box (for a caption) until
        # the person sends it.
        await pane(page, me).locator("input[type=file][name=photo]").set_input_files(picture)
        await pane(page, me).locator("button[name=send]").click()
        await expect(pane(page, me).locator(".message .album img, .message img").first
                     ).to_be_visible(timeout=STEP)
        await screens.shot("resident-photo")
        await pane(page, me).locator("button[name=location]").click()
        dialog = page.locator(".location-dialog")
        await expect(dialog.locator("svg.map")).to_be_visible()
        await screens.shot("location-map")
        await dialog.locator(f'path[data-code="{demo.GRID_CODE}"]').click()
        await expect(pane(page, me).locator(".message .location, .message [class*=location]")
                     .first).to_be_visible(timeout=STEP)
        await press(page, me, t("Skip"))
        await press(page, me, t("✅ Submit"))
        await expect(bot_messages(page, me).last).to_contain_text(NUMBER, timeout=STEP)
        number = NUMBER.search(await bot_messages(page, me).last.inner_text())[0]
        await screens.shot("resident-submitted")

        # The card reaches the grid workers' group; 李建国 claims it and answers on it.
        group = demo.GRID_GROUP
        new_card = bot_messages(page, group).filter(
            has=page.locator("button.inline-button", has_text=t("✋ Claim"))).last
        await expect(new_card).to_contain_text("小区东门垃圾桶", timeout=STEP)
        await expect(new_card).to_contain_text(number)
        # The card is edited in place from now on: follow it by its message id.
        card_id = await new_card.get_attribute("data-message-id")
        card = pane(page, group).locator(f'.message[data-message-id="{card_id}"]')
        await pane(page, group).locator("select[name=speaker]").select_option(
            str(demo.WORKER_A))
        await card.locator("button.inline-button", has_text=t("✋ Claim")).click()
        await expect(card.locator("button.inline-button", has_text=t("✅ Resolve"))
                     ).to_be_visible(timeout=STEP)
        await expect(card).to_contain_text("李建国")
        await screens.shot("worker-claimed")
        await card.locator("button[name=reply]").click()
        await write(page, group, "您好，今天下午安排清运")
        await expect(bot_messages(page, me).last).to_contain_text("今天下午安排清运",
                                                                  timeout=STEP)
        await screens.shot("resident-reads-the-reply")

        # Resolve: the bot asks for a note; the worker answers that question.
        await card.locator("button.inline-button", has_text=t("✅ Resolve")).click()
        question = bot_messages(page, group).last
        await expect(question).to_contain_text("李建国", timeout=STEP)
        # As in a Telegram app, the bot's ForceReply opens the reply box on its question.
        # (Without it the note would be plain chatter, which a bot in privacy mode never sees.)
        await expect(pane(page, group).locator(".context-bar")).to_contain_text(
            demo.BOT_USER["first_name"], timeout=STEP)
        await write(page, group, "垃圾已清运，桶已消毒")
        await expect(bot_messages(page, me).filter(has_text="垃圾已清运").last
                     ).to_be_visible(timeout=STEP)
        await screens.shot("resolved")

        # The survey arrives seconds later: solved, very satisfied.
        await press(page, me, t("✅ Yes, solved"))
        await press(page, me, t("😊 Very satisfied"))
        closed = t("We have closed {request}.", request=t("your report"))
        await expect(bot_messages(page, me).filter(has_text=closed).last
                     ).to_be_visible(timeout=STEP)
        await screens.shot("rated-and-closed")

        # The same page in the other two languages: its own words and the bot's.
        for language, code in (("en", "en"), ("zh_Hant", "zh_Hant")):
            await page.locator("select[name=language]").select_option(code)
            await expect(page.locator("html")).to_have_attribute(
                "lang", {"en": "en", "zh_Hant": "zh-Hant"}[language], timeout=STEP)
            await write(page, me, "/help")
            await expect(bot_messages(page, me).last).to_contain_text(
                help_heading(catalogs[language]), timeout=STEP)
            await screens.shot(f"language-{language}")

        await page.context.close()
        violations = await People(session, address).state()
        assert violations["violations"] == []
        await stop(process)
    assert errors == []


async def test_the_page_fits_a_phone_and_refuses_nonsense_politely(
        browser: Browser, tmp_path: Path, catalogs) -> None:
    args = ("demo", "--port", "0", "--spec", str(spec_path()))
    async with gridgate(tmp_path, *args) as (process, address, _), \
            aiohttp.ClientSession() as session:
        await running(People(session, address))
        page, errors = await open_page(browser, 375, 740)
        await page.goto(f"{address}/")
        resident = pane(page, demo.RESIDENT)
        await expect(resident.locator("textarea[name=text]")).to_be_visible(timeout=STEP)
        # A text too long for Telegram is refused with a message, and nothing is sent.
        await resident.locator("textarea[name=text]").fill("长" * 4200)
        await resident.locator("button[name=send]").click()
        refusal = catalogs["zh_Hans"]("A message has at most {most} characters.", most=4096)
        await expect(page.locator(".toast").last).to_have_text(refusal, timeout=STEP)
        await expect(resident.locator('.message[data-from-bot="false"]')).to_have_count(0)
        # HTML a person types arrives as text, never as markup in the page.
        await write(page, demo.RESIDENT, "<img src=x onerror=alert(1)> <b>bold?</b>")
        mine = resident.locator('.message[data-from-bot="false"]').last
        await expect(mine).to_contain_text("<b>bold?</b>", timeout=STEP)
        assert await mine.locator("img, b").count() == 0
        # The panes scroll sideways inside the page; the page itself fits the screen.
        width = await page.evaluate("document.documentElement.scrollWidth")
        await page.screenshot(path=ARTEFACTS / "phone.png")
        await page.context.close()
        await stop(process)
    assert errors == []
    assert width <= 375


async def panes_in_view(page: Page) -> dict:
    """Where each pane, and its send button and message box, lie in the window."""
    return await page.evaluate("""() => {
        const box = (el) => { const r = el.getBoundingClientRect();
                              return { left: r.left, right: r.right, width: r.width }; };
        const main = document.querySelector("main.panes");
        return {
            window: window.innerWidth, scroll: main.scrollWidth, client: main.clientWidth,
            panes: [...document.querySelectorAll("section.pane")].map((pane) => ({
                pane: box(pane), send: box(pane.querySelector("button[name=send]")),
                text: box(pane.querySelector("textarea[name=text]")),
            })),
        };
    }""")


async def test_a_laptop_screen_shows_every_pane_and_a_new_chat_offers_start(
        browser: Browser, tmp_path: Path, catalogs) -> None:
    t: Translator = catalogs["zh_Hans"]
    args = ("demo", "--port", "0", "--spec", str(spec_path()))
    async with gridgate(tmp_path, *args) as (process, address, _), \
            aiohttp.ClientSession() as session:
        await running(People(session, address))
        page, errors = await open_page(browser, 1366, 768)
        await page.goto(f"{address}/")
        await expect(page.locator('.bot-status[data-status="running"]')).to_be_visible()
        await expect(bot_messages(page, demo.GRID_GROUP).last).to_be_visible(timeout=STEP)
        # The five people's chats side by side on the common laptop sizes: none cut off, each
        # with its whole composer, and a message box one can still type in.
        for width, height in ((1366, 768), (1600, 900)):
            await page.set_viewport_size({"width": width, "height": height})
            await page.screenshot(path=ARTEFACTS / f"panes-{width}.png")
            seen = await panes_in_view(page)
            assert len(seen["panes"]) == len(demo.PANES)
            assert seen["scroll"] <= seen["client"], (width, seen)
            for one in seen["panes"]:
                assert 0 <= one["pane"]["left"] and one["pane"]["right"] <= width, (width, one)
                assert one["send"]["right"] <= one["pane"]["right"], (width, one)
                assert one["text"]["width"] >= 60, (width, one)

        # A new private chat shows what to do, as Telegram does, instead of an empty chat; the
        # groups (where the bot was added and bound) have no such button.
        resident = pane(page, demo.RESIDENT)
        hint = resident.locator(".start-hint")
        await expect(hint).to_be_visible()
        await expect(hint).to_contain_text(t("Start"))
        await expect(pane(page, demo.ENTERPRISE_CONTACT).locator(".start-hint")).to_be_visible()
        assert await pane(page, demo.GRID_GROUP).locator("button[name=start]").count() == 0
        await page.screenshot(path=ARTEFACTS / "new-chat-start.png")
        await resident.locator("button[name=start]").click()
        await expect(resident.locator('.message[data-from-bot="false"]').first).to_have_text(
            re.compile(r"^/start"), timeout=STEP)
        await expect(bot_messages(page, demo.RESIDENT).first).to_be_visible(timeout=STEP)
        await expect(hint).to_be_hidden()
        # With the bundled specification the page counts violations: none.
        await expect(page.locator(".violations-toggle .count")).to_have_text("0")
        # The second door, beside the chats: the bot's web chat at the grid, in a new tab.
        web_chat = page.locator("a.web-chat-link")
        await expect(web_chat).to_be_visible()
        await expect(web_chat).to_contain_text(t("Web chat (residents without Telegram)"))
        await expect(web_chat).to_have_attribute("target", "_blank")
        await expect(web_chat).to_have_attribute(
            "href", (await People(session, address).state())["web_chat_url"])
        await page.context.close()
        await stop(process)
    assert errors == []


async def test_without_a_specification_no_violation_count_is_shown(
        browser: Browser, catalogs) -> None:
    # "0 violations" would claim that calls were checked; nothing is checked without a spec.
    sandbox = demo.demo_sandbox(demo.new_token(), spec=None, catalogs=catalogs)
    address = await sandbox.start()
    try:
        page, errors = await open_page(browser, 1366, 768)
        await page.goto(f"{address}/")
        toggle = page.locator(".violations-toggle")
        await expect(toggle).to_be_visible()
        await expect(toggle.locator(".count")).to_be_hidden()
        await expect(toggle).to_have_attribute(
            "title", catalogs["zh_Hans"]("No Bot API specification was given, so calls are not "
                                         "checked."))
        await page.screenshot(path=ARTEFACTS / "no-spec.png")
        await page.context.close()
    finally:
        await sandbox.stop()
    assert errors == []


async def test_the_web_chat_link_waits_for_the_bot(browser: Browser, catalogs) -> None:
    # The bot serves the web chat: until it runs, the link leads nowhere and says why.
    t: Translator = catalogs["zh_Hans"]
    sandbox = demo.demo_sandbox(demo.new_token(), spec=None, catalogs=catalogs)
    address = await sandbox.start()
    try:
        page, errors = await open_page(browser, 1366, 768)
        await page.goto(f"{address}/")
        await expect(page.locator(".bot-status")).to_be_visible()
        # A sandbox without a bot of its own offers no web chat (and leaves no trace of it).
        assert await page.locator(".web-chat").count() == 0
        await expect(page.locator("header.top")).not_to_contain_text("null")
        url = f"http://127.0.0.1:9/chat?at={demo.GRID_CODE}"
        sandbox.set_web_chat_url(url)
        link = page.locator("a.web-chat-link")
        await expect(link).to_have_attribute("aria-disabled", "true")
        assert await link.get_attribute("href") is None
        await expect(page.locator(".web-chat-hint")).to_have_text(
            t("The web chat opens once the bot is running."))
        sandbox.set_bot_status("running")
        await expect(link).to_have_attribute("href", url)
        await expect(page.locator(".web-chat-hint")).to_contain_text(demo.GRID_CODE)
        await page.screenshot(path=ARTEFACTS / "web-chat-link.png")
        await page.context.close()
    finally:
        await sandbox.stop()
    assert errors == []
