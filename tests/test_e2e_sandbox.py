"""The demo end to end over HTTP: gridgate runs as a real child process (`python -m bot run`),
long-polling the demo's sandbox served by this test; the demo's people act through the page's
own HTTP API. Every Bot API call the bot makes is checked against the specification.

The headline journey: a resident reports with a photo and a map location → the card reaches the
grid workers' group → both workers press Claim, one wins → relay both ways → resolution with a
note → the follow-up survey → the resident's rating closes the ticket. Then the timers, with
nobody claiming: a reminder in the group and an escalation to the district centre. Then a crash:
the bot is killed in the middle of a resident's report and a new process carries on.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bot.sandbox import demo
from bot.sandbox.server import Sandbox
from tests.sandbox_client import (
    FAST_SURVEY,
    BotProcess,
    People,
    bound,
    button_data,
    has_button,
    last_id,
    png,
    text_of,
)
from tests.telegram_fake import load_spec

RESIDENT, GRID, CENTRE = demo.RESIDENT, demo.GRID_GROUP, demo.CENTRE_GROUP
A, B = demo.WORKER_A, demo.WORKER_B
NUMBER = re.compile(r"\d{4}-\d{4}")
FAST_CLAIM_TIMERS = """
[timings.claim]
remind_after = "3s"
escalate_after = "6s"
"""


@dataclass
class Stage:
    sandbox: Sandbox
    people: People
    bot: BotProcess


@pytest.fixture
async def stage(tmp_path: Path, catalogs, request) -> AsyncIterator[Stage]:
    extra = tmp_path / "test.toml"
    extra.write_text(FAST_SURVEY + getattr(request, "param", ""), "utf-8")
    sandbox = demo.demo_sandbox(demo.new_token(), spec=load_spec(), catalogs=catalogs)
    demo.bind_groups(sandbox)
    address = await sandbox.start()
    bot = BotProcess(address, sandbox.token, tmp_path, extra)
    await bot.start()
    async with aiohttp.ClientSession() as session:
        people = People(session, address)
        try:
            await bound(people, sandbox)
            yield Stage(sandbox, people, bot)
        finally:
            status = await bot.stop()
            await sandbox.stop()
    log = bot.log
    assert status == 0, log
    assert "Traceback" not in log, log
    # No personal data in the bot's log: names, phones, what residents wrote.
    for secret in ("王小明", "李建国", "张秀英", "13800138000", "楼道", sandbox.token):
        assert secret not in log, f"{secret!r} in the bot's log"
    assert sandbox.world.violations == [], sandbox.world.violations


async def report(people: People, *, description: str, photo: bool = True,
                 where: tuple[float, float] = demo.GRID_POINT) -> str:
    """The resident's whole report: /report, category, description, photo, place, no contact,
    submit. Returns the ticket number the bot gives."""
    start = last_id(await people.messages(RESIDENT))
    await people.say(RESIDENT, RESIDENT, "/report")
    categories = await people.wait_for_button(RESIDENT, "rp:cat:sanitation", "categories",
                                              after=start)
    await people.press(RESIDENT, RESIDENT, categories, "rp:cat:sanitation")
    await people.wait_for_button(RESIDENT, "rp:back:", "description question", after=start)
    mark = last_id(await people.messages(RESIDENT))
    await people.say(RESIDENT, RESIDENT, description)
    media = await people.wait_for_button(RESIDENT, "rp:skip:media", "photo question",
                                         after=mark)
    mark = last_id(await people.messages(RESIDENT))
    if photo:  # one photo (not an album) is the whole answer
        await people.photos(RESIDENT, RESIDENT, png())
    else:
        await people.press(RESIDENT, RESIDENT, media, "rp:skip:media")
    await people.wait_for(RESIDENT, lambda m: m["from"]["is_bot"] and m["message_id"] > mark,
                          "place question")
    mark = last_id(await people.messages(RESIDENT))
    await people.location(RESIDENT, RESIDENT, *where)
    contact = await people.wait_for_button(RESIDENT, "rp:skip:contact", "contact question",
                                           after=mark)
    await people.press(RESIDENT, RESIDENT, contact, "rp:skip:contact")
    summary = await people.wait_for_button(RESIDENT, "rp:submit", "summary", after=mark)
    mark = last_id(await people.messages(RESIDENT))
    await people.press(RESIDENT, RESIDENT, summary, "rp:submit")
    done = await people.wait_for(RESIDENT, lambda m: m["from"]["is_bot"] and bool(
        NUMBER.search(text_of(m))), "ticket number", after=mark)
    return NUMBER.search(text_of(done))[0]


async def test_a_report_travels_from_resident_to_rating_over_http(stage: Stage) -> None:
    people, world = stage.people, stage.sandbox.world
    number = await report(people, description="楼道里堆满了垃圾<b>，已经一周没人清理")

    # The card in the grid workers' group, with the photo and the location above it.
    card = await people.wait_for_button(GRID, "tk:claim:", f"card of {number}")
    assert number in text_of(card) and "楼道里堆满了垃圾<b>" in text_of(card)
    # The photo and the location follow the card as messages of their own.
    await people.wait_for(GRID, lambda m: "photo" in m, "the report's photo")
    await people.wait_for(GRID, lambda m: "location" in m, "the report's location")

    # Both workers press Claim at once: one holds it, the other is told who does.
    claim = button_data(card, "tk:claim:")
    presses = await asyncio.gather(*(people.post(
        f"/sandbox/chats/{GRID}/press", **{"from": who, "message_id": card["message_id"],
                                           "data": claim}) for who in (A, B)))
    query_ids = {p["query_id"] for p in presses}
    await _until(lambda: all(world.callback_queries[q]["answer"] is not None
                             for q in query_ids), "both presses answered")
    claimed = await people.wait_for(GRID, lambda m: m["message_id"] == card["message_id"]
                                    and has_button(m, "tk:resolve:"), "claimed card")
    holder = A if "李建国" in text_of(claimed) else B
    loser_answer = next(world.callback_queries[q]["answer"] for q in query_ids
                        if world.callback_queries[q]["from"]["id"] != holder)
    holder_name = "李建国" if holder == A else "张秀英"
    assert holder_name in loser_answer.get("text", ""), loser_answer
    assert claimed.get("edit_date"), "the card is edited in place"

    # Relay: the worker replies to the card; the resident reads it without the account.
    before = last_id(await people.messages(RESIDENT))
    await people.say(GRID, holder, "我们明天上午来清理", reply_to=card["message_id"])
    relayed = await people.wait_for_text(RESIDENT, "我们明天上午来清理", after=before)
    assert number in text_of(relayed) and str(holder) not in text_of(relayed)
    # ... the resident answers that message; the group reads it under the card.
    before_group = last_id(await people.messages(GRID))
    await people.say(RESIDENT, RESIDENT, "好的，谢谢", reply_to=relayed["message_id"])
    await people.wait_for_text(GRID, "好的，谢谢", after=before_group)

    # Resolve: the bot asks the holder for a note; the answer to that question resolves it.
    await people.press(GRID, holder, claimed, "tk:resolve:")
    question = await people.wait_for(GRID, lambda m: m["from"]["is_bot"] and not has_button(
        m, "tk:") and m["message_id"] > before_group and "photo" not in m
        and "location" not in m and holder_name in text_of(m), "resolution question")
    await people.say(GRID, holder, "已清理完毕", reply_to=question["message_id"])
    told = await people.wait_for_text(RESIDENT, "已清理完毕", after=before)

    # The follow-up survey a couple of seconds later: solved, very satisfied → closed.
    survey = await people.wait_for_button(RESIDENT, "sv:", "survey", after=told["message_id"])
    await people.press(RESIDENT, RESIDENT, survey, "sv:")  # the first button: solved
    scores = await people.wait_for(RESIDENT, lambda m: m["message_id"] == survey["message_id"]
                                   and has_button(m, "sv:") and re.search(
                                       r"sv:\d+:s5", str(m.get("reply_markup"))) is not None,
                                   "score question")
    score = next(b["callback_data"] for row in scores["reply_markup"]["inline_keyboard"]
                 for b in row if b["callback_data"].endswith(":s5"))
    await people.post(f"/sandbox/chats/{RESIDENT}/press", **{
        "from": RESIDENT, "message_id": survey["message_id"], "data": score})
    await people.wait_for(RESIDENT, lambda m: m["message_id"] == survey["message_id"]
                          and has_button(m, "sv:") and button_data(m, "sv:").endswith(":c"),
                          "thanks with the comment button")
    # The group sees the rating, and the card ends closed with no buttons left to press.
    await people.wait_for(GRID, lambda m: m["message_id"] == card["message_id"]
                          and not has_button(m, "tk:claim:") and not has_button(
                              m, "tk:resolve:"), "closed card")
    assert world.violations == []


@pytest.mark.parametrize("stage", [pytest.param(FAST_CLAIM_TIMERS, id="fast-claim-timers")],
                         indirect=True)
async def test_unclaimed_work_is_reminded_then_climbs_to_the_district_centre(
        stage: Stage) -> None:
    people = stage.people
    centre_before = last_id(await people.messages(CENTRE))
    number = await report(people, description="路灯坏了好几天，晚上很黑不安全", photo=False)
    card = await people.wait_for_button(GRID, "tk:claim:", f"card of {number}")
    # Nobody claims: the group is reminded, then the ticket goes up to the district centre.
    await people.wait_for(GRID, lambda m: m["from"]["is_bot"] and number in text_of(m)
                          and m["message_id"] > card["message_id"], "reminder", within=30)
    up = await people.wait_for(CENTRE, lambda m: has_button(m, "tk:claim:")
                               and number in text_of(m), "escalated card", within=40,
                               after=centre_before)
    assert up["chat"]["id"] == CENTRE
    # The grid group's card loses its buttons; the resident is told where it went.
    await people.wait_for(GRID, lambda m: m["message_id"] == card["message_id"]
                          and not has_button(m, "tk:"), "card without buttons")
    await people.wait_for(RESIDENT, lambda m: m["from"]["is_bot"] and number in text_of(m)
                          and "示范区" in text_of(m), "escalation notice")


async def test_a_killed_bot_loses_nothing_of_a_report_in_progress(stage: Stage) -> None:
    people = stage.people
    await people.say(RESIDENT, RESIDENT, "/report")
    categories = await people.wait_for_button(RESIDENT, "rp:cat:", "categories")
    await people.press(RESIDENT, RESIDENT, categories, "rp:cat:property_management")
    await people.wait_for_button(RESIDENT, "rp:back:", "description question")
    mark = last_id(await people.messages(RESIDENT))
    await people.say(RESIDENT, RESIDENT, "电梯已经坏了三天，老人上下楼很困难")
    media = await people.wait_for_button(RESIDENT, "rp:skip:media", "photo question", after=mark)

    # The process dies without a chance to tidy up; the resident skips the photo meanwhile
    # (the press waits at Telegram, unanswered).
    assert await stage.bot.stop(signal.SIGKILL) == -signal.SIGKILL
    mark = last_id(await people.messages(RESIDENT))
    await people.press(RESIDENT, RESIDENT, media, "rp:skip:media")
    await stage.bot.start()

    # The new process takes the waiting press and carries on from the saved draft.
    await people.wait_for(RESIDENT, lambda m: m["from"]["is_bot"] and m["message_id"] > mark,
                          "place question", within=60)
    mark = last_id(await people.messages(RESIDENT))
    await people.location(RESIDENT, RESIDENT, *demo.GRID_POINT)
    contact = await people.wait_for_button(RESIDENT, "rp:skip:contact", "contact question",
                                           after=mark)
    await people.press(RESIDENT, RESIDENT, contact, "rp:skip:contact")
    summary = await people.wait_for_button(RESIDENT, "rp:submit", "summary", after=mark)
    assert "电梯已经坏了三天" in text_of(summary)
    await people.press(RESIDENT, RESIDENT, summary, "rp:submit")
    await people.wait_for(GRID, lambda m: has_button(m, "tk:claim:")
                          and "电梯已经坏了三天" in text_of(m), "card")
    # Exactly one card: nothing was sent twice across the crash.
    cards = [m for m in await people.messages(GRID) if "电梯已经坏了三天" in text_of(m)]
    assert len(cards) == 1


async def _until(test, what: str, within: float = 30.0) -> None:
    for _ in range(int(within * 10)):
        if test():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not {what} within {within} s")
