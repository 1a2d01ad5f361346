"""Digests on the fake clock and /stats through the real Application: daily
at 08:30 to grid and community groups, weekly on Monday to streets, monthly on the 1st to the
district; once per period even across restarts; charts sent as PNG photos with CJK text."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import matplotlib
import pytest
from sqlalchemy import select, update

from bot.actions import digests
from bot.services import charts
from storage.models import GroupChat, OrgNode, OutboxMessage
from tests.harness import ADMIN, BotEnv, start_bot, stop_bot
from tests.telegram_fake import Chat, User
from tests.test_stats import add_survey, add_ticket, local

WORKER = User(810_101, "网格员乙", language_code="zh-hans")
GRID = Chat(-1008100000001, "supergroup", title="第1网格")
QUIET_GRID = Chat(-1008100000002, "supergroup", title="第2网格")
COMMUNITY = Chat(-1008100000003, "supergroup", title="东湖第一社区")
STREET = Chat(-1008100000004, "supergroup", title="东湖街道")
DISTRICT = Chat(-1008100000005, "supergroup", title="示范区")
DESK = Chat(-1008100000006, "supergroup", title="公共法律服务")
BINDINGS = ((GRID, "SFQ-DH-01-G1"), (QUIET_GRID, "SFQ-DH-01-G2"), (COMMUNITY, "SFQ-DH-01"),
            (STREET, "SFQ-DH"), (DISTRICT, "SFQ"), (DESK, "legal"))
PNG = b"\x89PNG\r\n\x1a\n"


async def _bind_all(bot: BotEnv) -> None:
    for chat, code in BINDINGS:
        await bot.send(bot.updates.command(chat, "/bind", code, user=ADMIN))
    bot.fake.clear()


async def _crafted_monday(bot: BotEnv) -> None:
    """Monday 2026-11-23: two tickets in grid 1 (one resolved and rated), one in grid 3, one
    in 南苑 and one at the legal desk."""
    async with bot.runtime.uow() as uow:
        resolved = await add_ticket(uow, "SFQ-DH-01-G1", local(23, 10), status="resolved",
                                    claimed=local(23, 10, 30), resolved=local(23, 14),
                                    deadline=local(25), on_time=True)
        await add_ticket(uow, "SFQ-DH-01-G1", local(23, 11), status="claimed",
                         claimed=local(23, 11, 20), deadline=local(30))
        await add_ticket(uow, "SFQ-DH-01-G3", local(23, 12), deadline=local(30))
        await add_ticket(uow, "SFQ-NY-01-G1", local(23, 12), deadline=local(30))
        await add_ticket(uow, "legal", local(23, 15), deadline=local(24, 8))
        add_survey(uow, resolved, score=4, answered=local(23, 16))
        await uow.session.commit()


def _digests(bot: BotEnv, chat: Chat) -> list[str]:
    return [text for text in bot.texts(chat.id) if text.startswith("📊")]


def _photos(bot: BotEnv, chat: Chat):
    return [c for c in bot.fake.calls_to("sendPhoto") if c.params["chat_id"] == chat.id]


async def _pending_digests(bot: BotEnv) -> set[str]:
    async with bot.runtime.uow() as uow:
        return {task.key for task in await uow.tasks.pending(kind=digests.KIND)}


def _assert_png(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG)
    width, height = struct.unpack(">II", data[16:24])
    assert 600 <= width <= 3000 and 250 <= height <= 4000, (width, height)
    assert len(data) > 10_000
    return width, height


async def test_daily_digest_at_0830_to_grid_and_community_groups(bot: BotEnv) -> None:
    await _bind_all(bot)
    await digests.schedule_upcoming(bot.runtime)  # Monday 09:00: the next is Tuesday 08:30
    assert await _pending_digests(bot) == {"digest:daily:2026-11-24", "digest:weekly:2026-11-30",
                                           "digest:monthly:2026-12-01"}
    await _crafted_monday(bot)
    t = bot.runtime.translator("zh_Hans")

    bot.clock.set(local(24, 8, 29))
    await bot.tick()
    await bot.deliver()
    assert _digests(bot, GRID) == []
    bot.clock.set(local(24, 8, 30))
    assert await bot.tick() == 1
    await bot.deliver()

    [grid] = _digests(bot, GRID)
    assert t("Daily digest: {place}", place="东湖一社区第1网格") in grid
    assert "2026-11-23" in grid
    assert t("Tickets: {counts}", counts=t(
        "new {new} · resolved {resolved} · open {open} · overdue {overdue}",
        new=2, resolved=1, open=1, overdue=0)) in grid
    assert t("Resolution rate {resolution} · on-time rate {on_time} · satisfaction rate "
             "{satisfaction}", resolution="50%", on_time="100%", satisfaction="100%") in grid
    assert t("Average time to claim {claim} · to resolve {resolve}", claim="25分钟",
             resolve="4小时") in grid
    assert _photos(bot, GRID) == []  # a grid has no breakdown to draw

    [community] = _digests(bot, COMMUNITY)
    assert all(name in community for name in ("东湖一社区第1网格", "东湖一社区第2网格",
                                              "东湖一社区第3网格"))
    [photo] = _photos(bot, COMMUNITY)
    _assert_png(photo.files["photo"].content)
    assert "东湖第一社区" in photo.params["caption"]

    # A desk gets the daily digest of its own tickets.
    [desk] = _digests(bot, DESK)
    assert t("Daily digest: {place}", place="公共法律服务") in desk
    assert t("Tickets: {counts}", counts=t(
        "new {new} · resolved {resolved} · open {open} · overdue {overdue}",
        new=1, resolved=0, open=1, overdue=1)) in desk

    # Nothing happened in grid 2, and streets and the district wait for their own day.
    for chat in (QUIET_GRID, STREET, DISTRICT):
        assert _digests(bot, chat) == [] and _photos(bot, chat) == []
    assert "digest:daily:2026-11-25" in await _pending_digests(bot)
    assert await bot.tick() == 0


async def test_weekly_on_monday_to_the_street_and_monthly_on_the_first_to_the_district(
        bot: BotEnv) -> None:
    await _bind_all(bot)
    await digests.schedule_upcoming(bot.runtime)
    await _crafted_monday(bot)
    t = bot.runtime.translator("zh_Hans")

    bot.clock.set(local(30, 8, 30))  # the next Monday
    await bot.tick()
    await bot.tick()  # the daily digest skipped ahead to today's
    await bot.deliver()
    [weekly] = _digests(bot, STREET)
    assert t("Weekly digest: {place}", place="东湖街道") in weekly
    assert "2026-11-23 – 2026-11-29" in weekly
    assert "东湖第一社区" in weekly and "东湖第二社区" in weekly
    [photo] = _photos(bot, STREET)
    _assert_png(photo.files["photo"].content)
    assert _digests(bot, DISTRICT) == []

    bot.clock.set(local(1, 8, 30, month=12))
    await bot.tick()
    await bot.tick()
    await bot.deliver()
    [monthly] = _digests(bot, DISTRICT)
    assert t("Monthly digest: {place}", place="示范区") in monthly
    assert "2026-11-01 – 2026-11-30" in monthly
    assert all(name in monthly for name in ("东湖街道", "南苑街道", "公共法律服务", "企业服务"))
    assert t("Tickets: {counts}", counts=t(
        "new {new} · resolved {resolved} · open {open} · overdue {overdue}",
        new=5, resolved=1, open=4, overdue=4)) in monthly  # deadlines were before today
    assert len(_photos(bot, DISTRICT)) == 1
    assert len(_digests(bot, STREET)) == 1  # no second weekly digest
    pending = await _pending_digests(bot)
    assert {"digest:weekly:2026-12-07", "digest:monthly:2027-01-01"} <= pending


async def test_a_digest_due_while_the_bot_was_down_runs_once(bot: BotEnv, db, catalogs) -> None:
    await _bind_all(bot)
    await digests.schedule_upcoming(bot.runtime)
    await _crafted_monday(bot)
    bot.clock.set(local(24, 9, 15))  # down from 08:00 to 09:15 on Tuesday
    again = await start_bot(db, catalogs, clock=bot.clock, fake=bot.fake, first_update_id=500)
    try:
        await digests.schedule_upcoming(again.runtime)  # start-up of the new process
        await digests.schedule_upcoming(again.runtime)  # and of a second one beside it
        assert await again.tick() == 1
        assert await again.tick() == 0
        assert await bot.tick() == 0
        await again.deliver()
        assert len(_digests(again, GRID)) == 1
        assert len(_digests(again, COMMUNITY)) == 1
        assert await _pending_digests(again) == {
            "digest:daily:2026-11-25", "digest:weekly:2026-11-30", "digest:monthly:2026-12-01"}
        # A process that starts with its clock a little behind asks for today's digest again:
        # it was sent, so it stays sent.
        bot.clock.set(local(24, 8, 29))
        await digests.schedule_upcoming(again.runtime)
        bot.clock.set(local(24, 9, 30))
        assert await again.tick() == 0
    finally:
        await stop_bot(again)


async def test_after_days_down_only_the_latest_daily_digest_goes(bot: BotEnv) -> None:
    await _bind_all(bot)
    await digests.schedule_upcoming(bot.runtime)
    await _crafted_monday(bot)
    bot.clock.set(local(27, 10))  # back on Friday: Tuesday's, Wednesday's, Thursday's due
    assert await bot.tick() == 1  # Tuesday's sees Friday's is due and hands over to it
    assert await bot.tick() == 1
    assert await bot.tick() == 0
    await bot.deliver()
    [community] = _digests(bot, COMMUNITY)
    assert "2026-11-26" in community  # Thursday's numbers
    assert "digest:daily:2026-11-28" in await _pending_digests(bot)


async def test_start_up_schedules_the_digests_and_the_menu_offers_stats(bot: BotEnv) -> None:
    await bot.app.post_init(bot.app)  # what run_polling does first
    assert await _pending_digests(bot) == {"digest:daily:2026-11-24", "digest:weekly:2026-11-30",
                                           "digest:monthly:2026-12-01"}
    menus = [c for c in bot.fake.calls_to("setMyCommands")
             if c.params["scope"]["type"] == "all_group_chats"]
    assert menus and all(any(cmd["command"] == "stats" for cmd in c.params["commands"])
                         for c in menus)


async def test_digest_text_escapes_names_and_follows_the_group_language(bot: BotEnv,
                                                                        db) -> None:
    await _bind_all(bot)
    async with db.sessions() as session:
        await session.execute(update(OrgNode).where(OrgNode.code == "SFQ-DH-01-G3")
                              .values(name_zh_hant="東湖<三>&網格"))
        await session.execute(update(GroupChat).where(GroupChat.chat_id == COMMUNITY.id)
                              .values(language="zh_Hant"))
        await session.commit()
    await digests.schedule_upcoming(bot.runtime)
    await _crafted_monday(bot)
    bot.clock.set(local(24, 8, 30))
    await bot.tick()
    await bot.deliver()
    [community] = _digests(bot, COMMUNITY)
    assert "東湖<三>&網格" in community and "東湖一社區第1網格" in community
    raw = next(text for text in bot.fake.sent_texts(COMMUNITY.id, raw=True) if "📊" in text)
    assert "東湖&lt;三&gt;&amp;網格" in raw
    _assert_png(_photos(bot, COMMUNITY)[0].files["photo"].content)


# -- /stats ------------------------------------------------------------------------------------

async def test_stats_in_a_bound_group_shows_its_subtree_with_a_chart(bot: BotEnv) -> None:
    await _bind_all(bot)
    await _crafted_monday(bot)
    bot.clock.set(local(23, 18))
    t = bot.runtime.translator("zh_Hans")
    await bot.send(bot.updates.command(COMMUNITY, "/stats", user=WORKER))
    [text] = _digests(bot, COMMUNITY)
    assert t("Statistics: {place}", place="东湖第一社区") in text
    # Monday is the first day of the week: the week so far is that day.
    assert t("{dates}, up to {time}", dates="2026-11-23", time="18:00") in text
    assert "东湖一社区第3网格" in text and "南苑" not in text
    [photo] = _photos(bot, COMMUNITY)
    _assert_png(photo.files["photo"].content)

    await bot.send(bot.updates.command(GRID, "/stats", "今天", user=WORKER))
    text = bot.last_text(GRID.id)
    assert t("{dates}, up to {time}", dates="2026-11-23", time="18:00") in text
    assert t("Tickets: {counts}", counts=t(
        "new {new} · resolved {resolved} · open {open} · overdue {overdue}",
        new=2, resolved=1, open=1, overdue=0)) in text
    assert _photos(bot, GRID) == []

    await bot.send(bot.updates.command(DISTRICT, "/stats", "month", user=WORKER))
    assert t("{dates}, up to {time}", dates="2026-11-01 – 2026-11-23",
             time="18:00") in bot.last_text(DISTRICT.id)


async def test_stats_refuses_bad_periods_private_chats_and_unbound_groups(bot: BotEnv) -> None:
    await _bind_all(bot)
    t = bot.runtime.translator("zh_Hans")
    await bot.send(bot.updates.command(GRID, "/stats", "<year>", user=WORKER))
    assert bot.last_text(GRID.id) == t(
        "<code>{given}</code> is not a period I know. Send <code>/stats today</code>, "
        "<code>/stats week</code> or <code>/stats month</code> (without a period: this "
        "week).", given="<year>").replace("<code>", "").replace("</code>", "")
    await bot.send(bot.updates.command(WORKER, "/stats"))
    assert bot.last_text(WORKER.id) == t(
        "Send /stats in a group that serves a grid, centre or desk: it shows the numbers "
        "of everything that group serves.")
    unbound = Chat(-1008100000099, "supergroup", title="闲聊群")
    await bot.send(bot.updates.command(unbound, "/stats", user=WORKER))
    assert bot.last_text(unbound.id).startswith(t(
        "This group does not serve a grid, centre or desk yet, so there are no numbers "
        "to show. An administrator binds it with <code>/bind CODE</code>.")[:20])


# -- the chart -----------------------------------------------------------------------------

SPEC = {
    "title": "东湖街道 周报 / 東湖街道 週報 2026-11-23 – 2026-11-29",
    "labels": ["东湖第一社区", "東湖第一社區", "南苑二社区第3网格", "this centre itself"],
    "panels": [
        {"title": "件数", "series": [{"name": "新增", "values": [3, 5, 0, 1]},
                                     {"name": "办结", "values": [2, 0, 0, 1]}]},
        {"title": "比率", "percent": True,
         "series": [{"name": "办结率", "values": [0.5, None, None, 1.0]},
                    {"name": "满意率", "values": [1.0, 0.75, None, None]}]},
    ],
}


def test_chinese_text_renders_with_every_glyph() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r".*[Gg]lyph .* missing from font")
        png = charts.render_png(SPEC)
    _assert_png(png)


def test_the_glyph_check_fails_with_a_font_without_chinese() -> None:
    """What the test above guards against: matplotlib's default font draws boxes."""
    dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r".*[Gg]lyph .* missing from font")
        with pytest.raises(UserWarning, match="missing from font"):
            charts.render_png(SPEC, font=dejavu)


def test_a_spec_that_cannot_be_drawn_is_refused() -> None:
    with pytest.raises(charts.ChartError):
        charts.render_png({"title": "x", "labels": ["a", "b"],
                           "panels": [{"title": "y", "series": [{"name": "z", "values": [1]}]}]})
    with pytest.raises(charts.ChartError):
        charts.render_png({"title": "x", "labels": [], "panels": []})


async def test_a_chart_row_that_cannot_be_drawn_fails_alone(bot: BotEnv) -> None:
    from bot.delivery.uploads import chart_placeholder

    await _bind_all(bot)
    now = bot.clock.now()
    async with bot.runtime.uow() as uow:
        uow.outbox.add(chat_id=STREET.id, method="sendPhoto", now=now, params={
            "chat_id": STREET.id, "photo": chart_placeholder({"labels": []})})
        uow.outbox.add(chat_id=STREET.id, method="sendMessage", now=now,
                       params={"chat_id": STREET.id, "text": "after the chart"})
        await uow.commit()
    await bot.deliver()
    assert bot.fake.calls_to("sendPhoto") == []
    assert bot.last_text(STREET.id) == "after the chart"
    async with bot.runtime.uow() as uow:
        row = await uow.session.scalar(select(OutboxMessage).where(
            OutboxMessage.method == "sendPhoto"))
    assert (row.status, row.last_error) == ("failed", "ChartError")
