"""Unclaimed tickets are reminded in their group, then passed up the tree."""

from __future__ import annotations

from datetime import timedelta

from bot.actions.notifier import Notifier
from bot.services import tickets
from tests.harness import ADMIN, BotEnv
from tests.telegram_fake import Chat, User

GRID = "SFQ-DH-01-G1"
RESIDENT = User(800_001, "居民甲", language_code="zh-hans")
WORKER = User(800_101, "网格员乙", language_code="zh-hans")
GRID_GROUP = Chat(-1008000000001, "supergroup", title="第1网格")
COMMUNITY_GROUP = Chat(-1008000000002, "supergroup", title="东湖第一社区")


async def _report(bot: BotEnv) -> int:
    rt = bot.runtime
    async with rt.uow() as uow:
        grid = await uow.nodes.by_code(GRID)
        ticket = await tickets.create(uow, rt.clock, rt.config, tickets.NewReport(
            category=rt.config.category("sanitation"), description="楼下垃圾桶满了三天",
            reporter_id=RESIDENT.id, language="zh_Hans", grid_id=grid.id))
        await Notifier(rt, uow).post_card(ticket)
        await uow.commit()
    await bot.deliver()
    return ticket.id


async def _bind_both(bot: BotEnv) -> None:
    await bot.send(bot.updates.command(GRID_GROUP, "/bind", GRID, user=ADMIN))
    await bot.send(bot.updates.command(COMMUNITY_GROUP, "/bind", "SFQ-DH-01", user=ADMIN))


async def test_reminded_after_30_minutes_then_escalated_after_2_hours(bot: BotEnv) -> None:
    await _bind_both(bot)
    ticket_id = await _report(bot)
    t = bot.runtime.translator("zh_Hans")
    before = len(bot.texts(GRID_GROUP.id))
    bot.clock.advance(timedelta(minutes=29))
    assert await bot.tick() == 0
    bot.clock.advance(timedelta(minutes=1))
    assert await bot.tick() == 1
    await bot.deliver()
    assert len(bot.texts(GRID_GROUP.id)) == before + 1
    assert "⏰" in bot.last_text(GRID_GROUP.id)

    bot.clock.advance(timedelta(minutes=90))
    assert await bot.tick() == 1
    await bot.deliver()
    # The community's group gets the card with the reason; the grid's group is told.
    card = bot.texts(COMMUNITY_GROUP.id)[-4:]
    assert any("楼下垃圾桶满了三天" in text for text in card)
    assert any(t("Passed up to this group from {place}: nobody claimed it within {waited}.",
                 place="示范区 / 东湖街道 / 东湖第一社区 / 东湖一社区第1网格",
                 waited="2小时") in text for text in card)
    assert "⬆️" in bot.last_text(GRID_GROUP.id)
    async with bot.runtime.uow() as uow:
        ticket = await uow.tickets.get(ticket_id)
        node = await uow.nodes.get(ticket.node_id)
        assert (node.code, ticket.group_chat_id) == ("SFQ-DH-01", COMMUNITY_GROUP.id)
        # The new level has timers of its own.
        assert {task.kind for task in await uow.tasks.pending(ticket_id=ticket_id)} == {
            "claim_remind", "claim_escalate", *tickets.DEADLINE_TIMERS}
    assert any("SFQ" not in text and "东湖第一社区" in text
               for text in bot.fake.sent_texts(RESIDENT.id))


async def test_claiming_cancels_the_timers_and_releasing_starts_them_again(bot: BotEnv) -> None:
    await _bind_both(bot)
    bot.fake.set_member(GRID_GROUP.id, WORKER.id, "member")
    ticket_id = await _report(bot)
    card = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                if c.params["chat_id"] == GRID_GROUP.id and c.params.get("reply_markup"))
    await bot.send(bot.updates.callback(WORKER, f"tk:claim:{ticket_id}", card.result))
    bot.clock.advance(timedelta(hours=3))
    assert await bot.tick() == 0
    await bot.send(bot.updates.callback(WORKER, f"tk:release:{ticket_id}", card.result))
    bot.clock.advance(timedelta(minutes=30))
    assert await bot.tick() == 1  # the reminder, counted from the release


async def test_a_restart_while_timers_are_due_runs_each_once(bot: BotEnv, db, catalogs) -> None:
    from tests.harness import start_bot, stop_bot

    await _bind_both(bot)
    await _report(bot)
    bot.clock.advance(timedelta(hours=5))  # down for five hours: remind and escalate are due
    again = await start_bot(db, catalogs, clock=bot.clock, fake=bot.fake, first_update_id=500)
    try:
        assert await again.tick() == 2
        assert await again.tick() == 0
        assert await bot.tick() == 0
    finally:
        await stop_bot(again)


async def test_passing_up_skips_levels_without_a_group_and_lands_once(bot: BotEnv) -> None:
    """Only the grid and the district have groups: an unclaimed ticket goes from the grid
    straight to the district (one card there, saying where it came from; the resident told
    where it really is), and stops there, the top, instead of climbing through the community
    and the street within the district's own group, a new card at each step."""
    district_group = Chat(-1008000000003, "supergroup", title="区综治中心")
    await bot.send(bot.updates.command(GRID_GROUP, "/bind", GRID, user=ADMIN))
    await bot.send(bot.updates.command(district_group, "/bind", "SFQ", user=ADMIN))
    ticket_id = await _report(bot)
    t = bot.runtime.translator("zh_Hans")
    bot.clock.advance(timedelta(hours=2))
    await bot.tick()
    await bot.deliver()
    async with bot.runtime.uow() as uow:
        ticket = await uow.tickets.get(ticket_id)
        assert (await uow.nodes.get(ticket.node_id)).code == "SFQ"
        district = (await uow.nodes.get(ticket.node_id)).display_name("zh_Hans")
    assert ticket.group_chat_id == district_group.id
    grid = "示范区 / 东湖街道 / 东湖第一社区 / 东湖一社区第1网格"
    assert t("Passed up to {place}: nobody claimed it within {waited}.", place=district,
             waited="2小时") in bot.last_text(GRID_GROUP.id)
    assert t("So that it is taken on sooner, we have passed {request} up to {place}.",
             request=t("your report"), place=district) in bot.last_text(RESIDENT.id)

    for _ in range(3):  # hours go by; nothing above the district takes it
        bot.clock.advance(timedelta(hours=2))
        await bot.tick()
        await bot.deliver()
    cards = [c for c in bot.fake.calls_to("sendMessage")
             if c.params["chat_id"] == district_group.id
             and f"tk:claim:{ticket_id}" in str(c.params.get("reply_markup"))]
    assert len(cards) == 1
    assert t("Passed up to this group from {place}: nobody claimed it within {waited}.",
             place=grid, waited="2小时") in cards[0].params["text"]
    assert not [text for text in bot.texts(district_group.id) if "⬆️" in text]
    async with bot.runtime.uow() as uow:
        assert [e.kind for e in await uow.tickets.events(ticket_id)].count("escalated") == 1


async def test_passing_up_from_a_forum_topic_closes_it_and_retires_the_card(
        bot: BotEnv) -> None:
    """The timer moves a ticket the way a worker does: the old card says where it went and
    loses its buttons, its forum topic is closed, and one new card goes to the group above."""
    forum = Chat(-1008000000004, "supergroup", title="网格论坛", is_forum=True)
    await bot.send(bot.updates.command(forum, "/bind", GRID, user=ADMIN))
    await bot.send(bot.updates.command(COMMUNITY_GROUP, "/bind", "SFQ-DH-01", user=ADMIN))
    ticket_id = await _report(bot)
    async with bot.runtime.uow() as uow:
        before = await uow.tickets.get(ticket_id)
        topic, old_card = before.topic_id, before.card_message_id
    assert topic is not None and old_card is not None
    bot.clock.advance(timedelta(hours=2))
    await bot.tick()
    await bot.deliver()
    assert [(c.params["chat_id"], c.params["message_thread_id"])
            for c in bot.fake.calls_to("closeForumTopic")] == [(forum.id, topic)]
    retired = [c for c in bot.fake.calls_to("editMessageText")
               if c.params["chat_id"] == forum.id and c.params["message_id"] == old_card]
    assert retired and retired[-1].params["reply_markup"] == {"inline_keyboard": []}
    cards = [c for c in bot.fake.calls_to("sendMessage")
             if c.params["chat_id"] == COMMUNITY_GROUP.id
             and f"tk:claim:{ticket_id}" in str(c.params.get("reply_markup"))]
    assert len(cards) == 1
    async with bot.runtime.uow() as uow:
        ticket = await uow.tickets.get(ticket_id)
        assert (ticket.group_chat_id, ticket.topic_id) == (COMMUNITY_GROUP.id, None)
