"""The centres' console over HTTP, on the real Application and a real database (SQLite and
PostgreSQL): signing in through the bot (a one-time nonce, bound to the browser that asked),
who sees what (a community sees its own subtree only, also when URLs are edited), a ticket
page, a nudge that arrives in the group, passing a ticket up, the admin log."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.actions.notifier import Notifier
from bot.app import console_door
from bot.services import tickets
from bot.web import WebServer
from bot.web_guard import CONSOLE_COOKIE, CSRF_HEADER
from storage.models import AdminAction
from tests.harness import ADMIN, BotEnv
from tests.telegram_fake import Chat, User

COMMUNITY = "SFQ-DH-01"
COMMUNITY_GROUP = Chat(-1008000000002, "supergroup", title="东湖第一社区")
OTHER_GROUP = Chat(-1008000000003, "supergroup", title="东湖第二社区")
GRID_GROUP = Chat(-1008000000001, "supergroup", title="第1网格")
STAFF = User(830_001, "社区<b>干部</b>", language_code="zh-hans")
OTHER_STAFF = User(830_002, "二社区干部", language_code="zh-hans")
STRANGER = User(830_003, "路人", language_code="zh-hans")


@dataclass
class Browser:
    url: str
    http: aiohttp.ClientSession
    csrf: str = ""
    me: dict[str, Any] = field(default_factory=dict)

    @property
    def origin(self) -> dict[str, str]:
        return {"Origin": self.url}

    async def start_signin(self) -> str:
        async with self.http.post(self.url + "/console/api/signin",
                                  headers=self.origin) as response:
            assert response.status == 200, await response.text()
            begun = await response.json()
        assert begun["qr_svg"].lstrip().startswith(("<?xml", "<svg"))
        return begun["start"]  # "/start console_<nonce>"

    async def status(self) -> dict[str, Any]:
        async with self.http.get(self.url + "/console/api/signin/status") as response:
            return await response.json()

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.url + path) as response:
            body = await response.read()
            kind = response.content_type
            return response.status, (await response.json() if kind == "application/json"
                                     else body)

    async def post(self, path: str, body: dict | None = None) -> tuple[int, dict]:
        async with self.http.post(self.url + path, json=body or {},
                                  headers={**self.origin, CSRF_HEADER: self.csrf}) as response:
            return response.status, await response.json()


@dataclass
class Console:
    env: BotEnv
    url: str
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    def browser(self) -> Browser:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.sessions.append(http)
        return Browser(self.url, http)

    async def press_start(self, user: User, start: str) -> str:
        await self.env.send(self.env.updates.command(user, "/start", start.split(" ", 1)[1]))
        return self.env.last_text(user.id)

    async def signed_in(self, user: User) -> Browser:
        browser = self.browser()
        start = await browser.start_signin()
        await self.press_start(user, start)
        assert (await browser.status())["state"] == "signed_in"
        status, browser.me = await browser.get("/console/api/me")
        assert status == 200, browser.me
        browser.csrf = browser.me["csrf"]
        return browser


@pytest.fixture
async def console(bot: BotEnv) -> AsyncIterator[Console]:
    rt = bot.runtime
    for group, code in ((GRID_GROUP, "SFQ-DH-01-G1"), (COMMUNITY_GROUP, COMMUNITY),
                        (OTHER_GROUP, "SFQ-DH-02")):
        await bot.send(bot.updates.command(group, "/bind", code, user=ADMIN))
    await bot.deliver()
    # Telegram says who is in which group (in the fake's open world everyone is everywhere).
    for user, member_of in ((STAFF, COMMUNITY_GROUP), (OTHER_STAFF, OTHER_GROUP),
                            (STRANGER, None)):
        for group in (GRID_GROUP, COMMUNITY_GROUP, OTHER_GROUP):
            bot.fake.set_member(group.id, user.id, "member" if group == member_of or
                                (group == GRID_GROUP and user == STRANGER) else "left")
    server = WebServer(db=rt.db, clock=rt.clock, health=bot.app.bot_data.health,
                       metrics=rt.metrics, pages=[console_door(bot.app).routes])
    port = await server.start("127.0.0.1", 0)
    env = Console(bot, f"http://127.0.0.1:{port}")
    yield env
    for http in env.sessions:
        await http.close()
    await server.stop()


async def _ticket(bot: BotEnv, grid: str, description: str) -> int:
    rt = bot.runtime
    async with rt.uow() as uow:
        node = await uow.nodes.by_code(grid)
        ticket = await tickets.create(uow, rt.clock, rt.config, tickets.NewReport(
            category=rt.config.category("sanitation"), description=description,
            reporter_id=810_001, language="zh_Hans", grid_id=node.id, reporter_name="张三",
            reporter_phone="13800138000"))
        await Notifier(rt, uow).post_card(ticket)
        await uow.commit()
    await bot.deliver()
    return ticket.id


async def test_signing_in_through_the_bot(console: Console) -> None:
    browser = console.browser()
    start = await browser.start_signin()
    assert re.fullmatch(r"/start console_[A-Za-z0-9_-]{20,56}", start)
    assert (await browser.status())["state"] == "waiting"
    said = await console.press_start(STAFF, start)
    assert "✅" in said and "东湖第一社区" in said
    assert (await browser.status())["state"] == "signed_in"
    status, me = await browser.get("/console/api/me")
    assert status == 200 and me["name"] == "社区<b>干部</b>" and not me["admin"]
    async with browser.http.get(browser.url + "/console/api/me") as response:
        assert response.status == 200
    cookie = browser.http.cookie_jar.filter_cookies(
        __import__("yarl").URL(browser.url + "/console"))[CONSOLE_COOKIE]
    assert cookie.value
    # Signing out ends it.
    browser.csrf = me["csrf"]
    status, _ = await browser.post("/console/api/signout")
    assert status == 200
    status, _ = await browser.get("/console/api/me")
    assert status == 401


async def test_a_nonce_works_once_for_the_browser_that_asked_and_not_forged(
        console: Console) -> None:
    asking = console.browser()
    start = await asking.start_signin()
    # Another browser does not get the session the nonce opens.
    other = console.browser()
    assert (await other.status())["state"] == "expired"
    await console.press_start(STAFF, start)
    assert (await other.status())["state"] == "expired"
    assert (await asking.status())["state"] == "signed_in"
    # Used: a second press of the same link opens nothing, for anyone.
    said = await console.press_start(OTHER_STAFF, start)
    assert "✅" not in said
    # A made-up nonce, and an expired one.
    said = await console.press_start(STAFF, "/start console_" + "A" * 32)
    assert "✅" not in said
    late = console.browser()
    start = await late.start_signin()
    console.env.clock.advance(timedelta(minutes=6))
    said = await console.press_start(STAFF, start)
    assert "✅" not in said
    assert (await late.status())["state"] == "expired"


async def test_only_centre_and_desk_staff_get_in(console: Console) -> None:
    browser = console.browser()
    start = await browser.start_signin()
    said = await console.press_start(STRANGER, start)  # in a grid's group only
    assert "✅" not in said
    assert (await browser.status())["state"] == "refused"
    status, _ = await browser.get("/console/api/me")
    assert status == 401


async def test_a_community_sees_its_own_tickets_only(console: Console) -> None:
    mine = await _ticket(console.env, "SFQ-DH-01-G1", "垃圾桶满了三天没人清运")
    theirs = await _ticket(console.env, "SFQ-DH-02-G1", "二社区楼道堆物")
    staff = await console.signed_in(STAFF)
    status, tree = await staff.get("/console/api/tree")
    codes = {n["code"] for n in tree["nodes"]}
    assert COMMUNITY in codes and "SFQ-DH-01-G1" in codes
    assert "SFQ-DH-02" not in codes and "SFQ" not in codes
    status, shown = await staff.get(f"/console/api/ticket/{mine}")
    assert status == 200 and shown["ticket"]["description"] == "垃圾桶满了三天没人清运"
    assert "张三" not in str(shown) and "13800138000" not in str(shown)
    assert shown["history"]
    # Editing URLs: the other community's ticket and nodes are not there.
    assert (await staff.get(f"/console/api/ticket/{theirs}"))[0] == 404
    async with console.env.runtime.uow() as uow:
        other = await uow.nodes.by_code("SFQ-DH-02")
        district = await uow.nodes.by_code("SFQ")
    for path in (f"/console/api/map?node={other.id}", f"/console/api/rates?node={district.id}",
                 f"/console/api/queue?node={other.id}",
                 f"/console/api/export?node={other.id}"):
        assert (await staff.get(path))[0] == 404, path
    assert (await staff.post(f"/console/api/ticket/{theirs}/nudge"))[0] == 404
    assert (await staff.post(f"/console/api/ticket/{theirs}/escalate"))[0] == 404


async def test_an_admin_sees_the_reporter_and_each_look_is_logged(console: Console) -> None:
    ticket_id = await _ticket(console.env, "SFQ-DH-01-G1", "垃圾桶满了三天没人清运")
    admin = await console.signed_in(ADMIN)
    assert admin.me["admin"]
    status, shown = await admin.get(f"/console/api/ticket/{ticket_id}")
    assert status == 200 and "张三" in shown["ticket"]["reporter"]
    assert "13800138000" not in str(shown)  # masked even so
    async with console.env.runtime.uow() as uow:
        logged = (await uow.session.scalars(select(AdminAction).where(
            AdminAction.action == "console_view_personal"))).all()
    assert len(logged) == 1 and logged[0].actor_id == ADMIN.id


async def test_a_nudge_arrives_in_the_group_and_a_ticket_goes_up(console: Console) -> None:
    ticket_id = await _ticket(console.env, "SFQ-DH-01-G1", "垃圾桶满了三天没人清运")
    staff = await console.signed_in(STAFF)
    status, said = await staff.post(f"/console/api/ticket/{ticket_id}/nudge",
                                    {"text": "今天<务必>处理"})
    assert status == 200 and said["ok"]
    await console.env.deliver()
    nudge = console.env.last_text(GRID_GROUP.id)
    assert "📣" in nudge and "东湖第一社区" in nudge and "今天<务必>处理" in nudge
    # Without the CSRF token, or from another origin: refused.
    token, staff.csrf = staff.csrf, "forged"
    assert (await staff.post(f"/console/api/ticket/{ticket_id}/nudge"))[0] == 403
    staff.csrf = token
    # Passed up: the grid's ticket goes to the community's group.
    status, said = await staff.post(f"/console/api/ticket/{ticket_id}/escalate")
    assert status == 200 and said["ok"], said
    await console.env.deliver()
    async with console.env.runtime.uow() as uow:
        ticket = await uow.tickets.get(ticket_id)
        actions = {a.action for a in (await uow.session.scalars(select(AdminAction))).all()}
    assert ticket.group_chat_id == COMMUNITY_GROUP.id
    assert {"console_nudge", "console_escalate"} <= actions


async def test_leaving_the_group_ends_the_session(console: Console) -> None:
    staff = await console.signed_in(STAFF)
    console.env.fake.set_member(COMMUNITY_GROUP.id, STAFF.id, "left")
    console.env.app.bot_data.caches.clear()  # the membership cache's time is up too
    console.env.clock.advance(console.env.runtime.config.console.membership_recheck
                              + timedelta(seconds=1))
    status, answer = await staff.get("/console/api/tree")
    assert status == 401 and answer["error"] == "session"


async def test_an_idle_console_signs_out(console: Console) -> None:
    staff = await console.signed_in(STAFF)
    console.env.clock.advance(console.env.runtime.config.console.idle_timeout
                              + timedelta(minutes=1))
    assert (await staff.get("/console/api/me"))[0] == 401


async def test_the_views_show_the_persons_subtree(console: Console) -> None:
    mine = await _ticket(console.env, "SFQ-DH-01-G1", "垃圾桶满了三天没人清运")
    await _ticket(console.env, "SFQ-DH-02-G1", "二社区楼道堆物")
    staff = await console.signed_in(STAFF)
    console.env.clock.advance(timedelta(minutes=1))  # "so far" ends now: after the reports
    [root] = staff.me["roots"]
    status, shown = await staff.get("/console/api/map")
    assert status == 200 and shown["node"] == root
    codes = {grid["code"] for grid in shown["grids"]}
    assert codes == {"SFQ-DH-01-G1", "SFQ-DH-01-G2", "SFQ-DH-01-G3"}
    assert sum(grid["open"] for grid in shown["grids"]) == 1
    status, rates = await staff.get("/console/api/rates?period=month")
    assert status == 200 and rates["rows"][0]["total"] and rates["rows"][0]["new"] == 1
    assert set(rates["explain"]) == {"response", "resolution", "on_time", "satisfaction"}
    assert rates["period"]["label"]
    status, trend = await staff.get("/console/api/trend?rate=response&days=7")
    assert status == 200 and len(trend["points"]) == 7
    status, queue = await staff.get("/console/api/queue?view=unclaimed")
    assert status == 200 and [t["id"] for t in queue["tickets"]] == [mine]
    assert queue["tickets"][0]["category_name"] and queue["tickets"][0]["status_name"]
    status, queue = await staff.get("/console/api/queue?view=all&q=" +
                                    queue["tickets"][0]["number"])
    assert queue["total"] == 1
    assert (await staff.get("/console/api/rates?period=eternity"))[0] == 400
    status, csv = await staff.get(f"/console/api/export?node={root}")
    assert status == 200 and "垃圾桶" not in csv.decode("utf-8-sig")  # texts: admins only
    assert csv.decode("utf-8-sig").count("\n") == 2  # the header and the one ticket
