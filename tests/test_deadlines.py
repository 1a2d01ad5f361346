"""Resolution deadlines: a reminder to the holder, an overdue notice, then escalation after
the grace period, on the working-day calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.actions.notifier import Notifier
from bot.clock import FakeClock
from bot.services import tickets
from tests.harness import ADMIN, BotEnv, start_bot, stop_bot
from tests.telegram_fake import Chat, User

GRID = "SFQ-DH-01-G1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
RESIDENT = User(810_001, "居民甲", language_code="zh-hans")
WORKER = User(810_101, "网格员乙", language_code="zh-hans")
GRID_GROUP = Chat(-1008100000001, "supergroup", title="第1网格")
COMMUNITY_GROUP = Chat(-1008100000002, "supergroup", title="东湖第一社区")
DISTRICT_GROUP = Chat(-1008100000003, "supergroup", title="示范区")


def local(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)


async def _open(bot: BotEnv, category: str = "sanitation",
                description: str = "楼道里堆满了杂物，挡住了消防通道") -> int:
    rt = bot.runtime
    await bot.send(bot.updates.command(GRID_GROUP, "/bind", GRID, user=ADMIN))
    await bot.send(bot.updates.command(COMMUNITY_GROUP, "/bind", "SFQ-DH-01", user=ADMIN))
    async with rt.uow() as uow:
        grid = await uow.nodes.by_code(GRID)
        ticket = await tickets.create(uow, rt.clock, rt.config, tickets.NewReport(
            category=rt.config.category(category), description=description,
            reporter_id=RESIDENT.id, language="zh_Hans", grid_id=grid.id))
        await Notifier(rt, uow).post_card(ticket)
        await uow.commit()
    await bot.deliver()
    return ticket.id


async def _claim(bot: BotEnv, ticket_id: int) -> None:
    bot.fake.set_member(GRID_GROUP.id, WORKER.id, "member")
    card = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                if c.params["chat_id"] == GRID_GROUP.id and c.params.get("reply_markup"))
    await bot.send(bot.updates.callback(WORKER, f"tk:claim:{ticket_id}", card.result))
    await bot.deliver()


async def _run_until(bot: BotEnv, moment: datetime) -> int:
    bot.clock.advance(moment - bot.clock.now())
    ran = await bot.tick()
    await bot.deliver()
    return ran


async def _ticket(bot: BotEnv, ticket_id: int):
    async with bot.runtime.uow() as uow:
        return await uow.tickets.get(ticket_id)


async def test_holder_reminded_then_overdue_then_passed_up(bot: BotEnv) -> None:
    # Monday 09:00; three working days: Thursday 09:00.
    ticket_id = await _open(bot)
    await _claim(bot, ticket_id)
    ticket = await _ticket(bot, ticket_id)
    assert ticket.deadline_at == local("2026-11-26 09:00")
    t = bot.runtime.translator("zh_Hans")

    # Claim timers are gone; the deadline's own run.
    # Four hours before would be 05:00, inside quiet hours: the reminder waits for 08:00.
    assert await _run_until(bot, local("2026-11-26 07:59")) == 0
    assert await _run_until(bot, local("2026-11-26 08:00")) == 1
    reminder = bot.fake.calls_to("sendMessage")[-1].params
    assert reminder["chat_id"] == GRID_GROUP.id
    assert f'<a href="tg://user?id={WORKER.id}">网格员乙</a>' in reminder["text"]
    assert "⏳" in reminder["text"] and ticket.number in reminder["text"]

    assert await _run_until(bot, local("2026-11-26 09:00")) == 1
    overdue = bot.last_text(GRID_GROUP.id)
    assert "⚠️" in overdue and "11-26 09:00" in overdue

    assert await _run_until(bot, local("2026-11-27 08:59")) == 0
    assert await _run_until(bot, local("2026-11-27 09:00")) == 1
    note = t("Passed up to this group from {place}: it was not resolved by {time}.",
             place="示范区 / 东湖街道 / 东湖第一社区 / 东湖一社区第1网格", time="11-26 09:00")
    assert any(note in text for text in bot.texts(COMMUNITY_GROUP.id))
    assert "⬆️" in bot.last_text(GRID_GROUP.id)
    ticket = await _ticket(bot, ticket_id)
    async with bot.runtime.uow() as uow:
        node = await uow.nodes.get(ticket.node_id)
        events = [e.kind for e in await uow.tickets.events(ticket_id)]
    # Taken from its holder, open afresh at the community with a new deadline.
    assert (node.code, ticket.status, ticket.holder_id) == ("SFQ-DH-01", "open", None)
    assert ticket.deadline_at > local("2026-11-27 09:00")
    assert events[-1] == "escalated"
    assert any("东湖第一社区" in text and "⬆️" not in text
               for text in bot.fake.sent_texts(RESIDENT.id)[-1:])


async def test_passing_up_an_overdue_ticket_retires_its_card_and_stops_at_the_top(
        bot: BotEnv) -> None:
    """The deadline's escalation moves the ticket as every mover does: the old card loses its
    buttons and says where it went, one card arrives above; and at the district, the top,
    nothing is passed anywhere (never down)."""
    ticket_id = await _open(bot)
    await bot.send(bot.updates.command(DISTRICT_GROUP, "/bind", "SFQ", user=ADMIN))
    old_card = (await _ticket(bot, ticket_id)).card_message_id
    assert await _run_until(bot, local("2026-11-27 09:00")) >= 1
    retired = [c for c in bot.fake.calls_to("editMessageText")
               if c.params["chat_id"] == GRID_GROUP.id and c.params["message_id"] == old_card]
    assert retired and retired[-1].params["reply_markup"] == {"inline_keyboard": []}
    ticket = await _ticket(bot, ticket_id)
    assert ticket.group_chat_id == COMMUNITY_GROUP.id
    community_cards = [c for c in bot.fake.calls_to("sendMessage")
                       if c.params["chat_id"] == COMMUNITY_GROUP.id
                       and f"tk:claim:{ticket_id}" in str(c.params.get("reply_markup"))]
    assert len(community_cards) == 1
    # On up to the district, then no further, however long it waits there.
    for _ in range(6):
        await _run_until(bot, bot.clock.now() + timedelta(days=3))
    ticket = await _ticket(bot, ticket_id)
    async with bot.runtime.uow() as uow:
        assert (await uow.nodes.get(ticket.node_id)).code == "SFQ"
        kinds = [e.kind for e in await uow.tickets.events(ticket_id)]
    assert ticket.group_chat_id == DISTRICT_GROUP.id
    assert kinds.count("escalated") == 2


async def test_resolving_in_time_stops_the_deadline_timers(bot: BotEnv) -> None:
    ticket_id = await _open(bot)
    await _claim(bot, ticket_id)
    rt = bot.runtime
    async with rt.uow() as uow:
        await tickets.resolve(uow, rt.clock, ticket_id, WORKER.id, "已清理")
        await uow.commit()
    assert await _run_until(bot, local("2026-11-30 09:00")) == 0
    ticket = await _ticket(bot, ticket_id)
    assert (ticket.status, ticket.on_time) == ("resolved", True)
    assert ticket.claimed_at == local("2026-11-23 09:00")


async def test_late_resolution_is_not_on_time(bot: BotEnv) -> None:
    ticket_id = await _open(bot)
    await _claim(bot, ticket_id)
    rt = bot.runtime
    await _run_until(bot, local("2026-11-26 10:00"))  # reminded, then overdue
    async with rt.uow() as uow:
        await tickets.resolve(uow, rt.clock, ticket_id, WORKER.id, "已清理")
        await uow.commit()
    assert (await _ticket(bot, ticket_id)).on_time is False
    assert await _run_until(bot, local("2026-11-28 09:00")) == 0  # no escalation


async def test_deadline_across_national_day_counts_the_make_up_saturday(db, catalogs) -> None:
    # Wednesday 30 September 2026, 10:00: 1–7 October are off, Saturday 10 October is a
    # make-up working day, so three working days end on that Saturday at 10:00.
    bot = await start_bot(db, catalogs, clock=FakeClock(local("2026-09-30 10:00")))
    try:
        ticket_id = await _open(bot)
        ticket = await _ticket(bot, ticket_id)
        assert ticket.deadline_at == local("2026-10-10 10:00")
        await _claim(bot, ticket_id)
        assert await _run_until(bot, local("2026-10-09 23:59")) == 0
        assert await _run_until(bot, local("2026-10-10 08:00")) == 1  # reminder, after quiet
        assert await _run_until(bot, local("2026-10-10 10:00")) == 1  # overdue
        assert await _run_until(bot, local("2026-10-11 10:00")) == 1  # passed up
        bot.fake.assert_no_violations()
        assert bot.errors == []
    finally:
        await stop_bot(bot)


async def test_urgent_tickets_count_wall_clock_hours_through_the_weekend(db, catalogs) -> None:
    # Safety hazards are urgent: 12 hours (the category's sla), Saturday night included.
    bot = await start_bot(db, catalogs, clock=FakeClock(local("2026-11-28 20:00")))
    try:
        ticket_id = await _open(bot, "safety_hazard", "楼道里有很浓的燃气味")
        ticket = await _ticket(bot, ticket_id)
        assert ticket.urgent
        assert ticket.deadline_at == local("2026-11-29 08:00")
        bot.fake.assert_no_violations()
    finally:
        await stop_bot(bot)


async def test_a_transfer_sets_a_new_deadline_and_the_old_timers_do_nothing(
        bot: BotEnv) -> None:
    ticket_id = await _open(bot)
    rt = bot.runtime
    bot.clock.advance(timedelta(days=1))  # Tuesday 09:00
    async with rt.uow() as uow:
        community = await uow.nodes.by_code("SFQ-DH-01")
        await tickets.move(uow, rt.clock, rt.config, ticket_id, to_node_id=community.id,
                           actor_id=WORKER.id, role="worker", reason="需要社区协调",
                           kind="transferred")
        await uow.commit()
    ticket = await _ticket(bot, ticket_id)
    assert ticket.deadline_at == local("2026-11-27 09:00")
    async with rt.uow() as uow:
        pending = await uow.tasks.pending(ticket_id=ticket_id)
    deadline_tasks = [task for task in pending if task.kind in tickets.DEADLINE_TIMERS]
    assert len(deadline_tasks) == 3
    assert all(task.payload["node_id"] == community.id for task in deadline_tasks)


async def test_a_ticket_passed_up_for_being_late_stays_late(bot: BotEnv) -> None:
    ticket_id = await _open(bot)
    await _claim(bot, ticket_id)
    await _run_until(bot, local("2026-11-27 09:00"))  # remind, overdue, passed up
    rt = bot.runtime
    async with rt.uow() as uow:
        await tickets.claim(uow, rt.clock, ticket_id, WORKER.id, "社区干部")
        await tickets.resolve(uow, rt.clock, ticket_id, WORKER.id, "已协调解决")
        await uow.commit()
    ticket = await _ticket(bot, ticket_id)
    # Well within the community's own deadline, but the grid's was missed.
    assert ticket.deadline_at > rt.clock.now()
    assert (ticket.status, ticket.missed_deadline, ticket.on_time) == ("resolved", True, False)


async def test_at_the_top_an_overdue_ticket_is_not_promised_an_escalation(bot: BotEnv) -> None:
    ticket_id = await _open(bot)
    rt = bot.runtime
    async with rt.uow() as uow:
        district = await uow.nodes.root()
        await tickets.move(uow, rt.clock, rt.config, ticket_id, to_node_id=district.id,
                           actor_id=WORKER.id, role="worker", reason="区级协调",
                           kind="transferred")
        await uow.commit()
        kinds = {task.kind for task in await uow.tasks.pending(ticket_id=ticket_id)}
    assert "deadline_overdue" in kinds and "deadline_escalate" not in kinds


async def test_no_escalation_timer_at_the_top_and_one_below_it_all_the_same(
        bot: BotEnv) -> None:
    rt = bot.runtime

    async def kinds() -> set[str]:
        async with rt.uow() as uow:
            return {task.kind for task in await uow.tasks.pending(ticket_id=ticket_id)}

    async def move_to(code: str) -> None:
        async with rt.uow() as uow:
            node = await uow.nodes.by_code(code)
            ticket, _, _ = await tickets.move(
                uow, rt.clock, rt.config, ticket_id, to_node_id=node.id, actor_id=WORKER.id,
                role="worker", reason="协调", kind="transferred")
            await Notifier(rt, uow).post_card(ticket)
            await uow.commit()
        await bot.deliver()

    ticket_id = await _open(bot)
    assert {"claim_escalate", "deadline_escalate"} <= await kinds()
    # At the district there is nothing above: the reminders, and no escalation to fire.
    await move_to("SFQ")
    assert {"claim_remind", "deadline_overdue"} <= await kinds()
    assert not {"claim_escalate", "deadline_escalate"} & await kinds()
    # The community, while no group is bound above it: armed all the same, since a group may
    # be bound before the timers fire, and a ticket must not stay put for want of a timer.
    await move_to("SFQ-DH-01")
    assert {"claim_escalate", "deadline_escalate"} <= await kinds()
    await bot.send(bot.updates.command(DISTRICT_GROUP, "/bind", "SFQ", user=ADMIN))
    ticket = await _ticket(bot, ticket_id)
    await _run_until(bot, ticket.deadline_at + timedelta(days=7))
    assert (await _ticket(bot, ticket_id)).group_chat_id == DISTRICT_GROUP.id


async def test_no_pings_at_night_for_ordinary_tickets_but_urgent_ones_go_on(db, catalogs) -> None:
    # Reported at 22:00: an ordinary ticket counts as waiting from 08:00 (reminded at 08:30,
    # passed up at 10:00); a safety hazard (urgent) is reminded after its 10 minutes.
    bot = await start_bot(db, catalogs, clock=FakeClock(local("2026-11-23 22:00")))
    try:
        ordinary = await _open(bot)
        urgent = await _open(bot, "safety_hazard", "楼道里有很浓的燃气味")
        async with bot.runtime.uow() as uow:
            due = {(task.ticket_id, task.kind): task.due_at
                   for task in await uow.tasks.pending()}
        assert due[(ordinary, "claim_remind")] == local("2026-11-24 08:30")
        assert due[(ordinary, "claim_escalate")] == local("2026-11-24 10:00")
        assert due[(urgent, "claim_remind")] == local("2026-11-23 22:10")
        bot.fake.assert_no_violations()
    finally:
        await stop_bot(bot)
