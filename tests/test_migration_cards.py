"""A ticket's card and its group through the real Application: a group that becomes a
supergroup gets fresh cards (its old message ids mean nothing there), and a ticket that moves
to another group leaves its stale card rows behind while its conversation follows it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.actions.notifier import Notifier, rerouted_card_poster
from bot.services import groups, tickets
from storage.models import GroupChat, OutboxMessage, Ticket
from tests.harness import BotEnv
from tests.telegram_fake import Chat, User

GRID = "SFQ-DH-01-G1"
COMMUNITY = "SFQ-DH-01"
SMALL = Chat(-4_000_101, "group", title="东湖第1网格")
SUPER = -1_004_000_000_101
COMMUNITY_GROUP = Chat(-1_001_000_000_111, "supergroup", title="东湖第一社区")
RESIDENT = User(100_901, "张三", language_code="zh-hans")
TO_CARD = {"message_thread_id": "$topic",
           "reply_parameters": {"message_id": "$card", "allow_sending_without_reply": True}}


async def bind(bot: BotEnv, chat: Chat, code: str) -> None:
    bot.fake.add_chat(chat.id, chat.type, title=chat.title)
    now = bot.clock.now()
    async with bot.runtime.uow() as uow:
        node = await uow.nodes.by_code(code)
        uow.groups.add(GroupChat(chat_id=chat.id, title=chat.title, chat_type=chat.type,
                                 is_forum=False, active=True, node_id=node.id,
                                 language="zh_Hans", created_at=now, updated_at=now))
        await uow.commit()


async def open_ticket(bot: BotEnv, description: str = "楼道里的垃圾三天没人清理") -> int:
    """A ticket with a photo, its card (and the photo under it) delivered to its group."""
    rt = bot.runtime
    async with rt.uow() as uow:
        grid = await uow.nodes.by_code(GRID)
        ticket = await tickets.create(uow, rt.clock, rt.config, tickets.NewReport(
            category=rt.config.category("sanitation"), description=description,
            reporter_id=RESIDENT.id, language="zh_Hans", grid_id=grid.id,
            attachments=[("photo", "AgAD-photo")]))
        await Notifier(rt, uow).post_card(ticket)
        await uow.commit()
        ticket_id = ticket.id
    await bot.deliver()
    return ticket_id


async def ticket_of(bot: BotEnv, ticket_id: int) -> Ticket:
    async with bot.runtime.uow() as uow:
        return await uow.tickets.get(ticket_id)


async def say_in_group(bot: BotEnv, ticket_id: int, text: str) -> int:
    """What the relay queues for the group when the resident writes (a reply to the card)."""
    rt = bot.runtime
    async with rt.uow() as uow:
        ticket = await uow.tickets.get(ticket_id)
        row = uow.outbox.add(chat_id=ticket.group_chat_id, method="sendMessage",
                             params={"chat_id": ticket.group_chat_id, "text": text, **TO_CARD},
                             now=rt.clock.now(), ticket_id=ticket_id, purpose="relay")
        await uow.commit()
        return row.id


async def row(bot: BotEnv, row_id: int) -> OutboxMessage:
    async with bot.runtime.uow() as uow:
        return await uow.outbox.get(row_id)


def cards_in(bot: BotEnv, chat_id: int, number: str) -> list[Any]:
    return [c for c in bot.fake.calls_to("sendMessage")
            if c.params["chat_id"] == chat_id and number in c.params["text"]]


def buttons(call: Any) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    return [b["callback_data"] for line in markup.get("inline_keyboard", []) for b in line]


async def test_the_migration_news_gives_open_tickets_fresh_cards_in_the_supergroup(
        bot: BotEnv) -> None:
    await bind(bot, SMALL, GRID)
    open_id, closed_id = await open_ticket(bot), await open_ticket(bot, "路灯坏了两个星期")
    closed = await ticket_of(bot, closed_id)
    async with bot.runtime.uow() as uow:
        (await uow.tickets.get(closed_id)).status = "closed"
        await uow.commit()

    for update in bot.updates.migrate(SMALL, SUPER):
        await bot.send(update)
    await bot.deliver()

    ticket = await ticket_of(bot, open_id)
    [card] = cards_in(bot, SUPER, ticket.number)
    assert (ticket.group_chat_id, ticket.card_message_id, ticket.topic_id) == (
        SUPER, card.result["message_id"], None)
    assert cards_in(bot, SUPER, closed.number) == []
    after = await ticket_of(bot, closed_id)  # over: it stays where its ids are valid
    assert (after.group_chat_id, after.card_message_id) == (SMALL.id, closed.card_message_id)


async def test_a_migration_the_sender_runs_into_reposts_the_real_card(bot: BotEnv) -> None:
    await bind(bot, SMALL, GRID)
    ticket_id = await open_ticket(bot)
    bot.fake.migrate_chat(SMALL.id, SUPER)  # no update about it has arrived yet
    said = await say_in_group(bot, ticket_id, "住户补充：还有异味")
    rt = bot.runtime
    async with rt.uow() as uow:
        ticket = await uow.tickets.get(ticket_id)
        ticket.status = "claimed"
        await Notifier(rt, uow).refresh_card(ticket)
        await uow.commit()
    await bot.deliver()

    ticket = await ticket_of(bot, ticket_id)
    [card] = cards_in(bot, SUPER, ticket.number)
    t = rt.translator("zh_Hans")
    assert t("This group became a supergroup, so the card is posted here again.") in (
        card.params["text"])
    assert buttons(card) and all(b.endswith(f":{ticket_id}") for b in buttons(card))
    assert (ticket.group_chat_id, ticket.card_message_id) == (SUPER, card.result["message_id"])
    # The photo goes under the new card, then what the resident said, replying to it.
    calls = [c for c in bot.fake.calls if c.params.get("chat_id") == SUPER]
    assert [c.method for c in calls] == ["sendMessage", "sendPhoto", "sendMessage"]
    assert calls[2].params["text"] == "住户补充：还有异味"
    for call in calls[1:]:
        assert call.params["reply_parameters"]["message_id"] == ticket.card_message_id
    assert (await row(bot, said)).status == "failed"  # queued again behind the new card
    # The pending edit of the old card was dropped: its id means nothing in the supergroup.
    assert [c for c in bot.fake.calls_to("editMessageText")
            if c.params["chat_id"] == SUPER] == []

    # The news arriving afterwards changes nothing.
    for update in bot.updates.migrate(SMALL, SUPER):
        await bot.send(update)
    await bot.deliver()
    assert len(cards_in(bot, SUPER, ticket.number)) == 1


async def test_groups_migrated_uses_the_card_poster_it_is_given(bot: BotEnv) -> None:
    await bind(bot, SMALL, GRID)
    ticket_id = await open_ticket(bot)
    rt = bot.runtime
    async with rt.uow() as uow:  # what handlers.membership.migrated does, given the poster
        await groups.migrated(uow, rt.clock, old_chat_id=SMALL.id, new_chat_id=SUPER,
                              title=SMALL.title, post_card=rerouted_card_poster(rt))
        await uow.commit()
    bot.fake.migrate_chat(SMALL.id, SUPER)
    await bot.deliver()
    ticket = await ticket_of(bot, ticket_id)
    [card] = cards_in(bot, SUPER, ticket.number)
    assert buttons(card) and ticket.card_message_id == card.result["message_id"]


async def test_a_ticket_that_moves_leaves_its_card_rows_and_takes_its_conversation(
        bot: BotEnv) -> None:
    grid_group = Chat(-1_001_000_000_110, "supergroup", title="东湖第1网格")
    await bind(bot, grid_group, GRID)
    await bind(bot, COMMUNITY_GROUP, COMMUNITY)
    ticket_id = await open_ticket(bot)
    said = await say_in_group(bot, ticket_id, "住户补充：还有异味")
    rt = bot.runtime
    async with rt.uow() as uow:
        ticket = await uow.tickets.get(ticket_id)
        notifier = Notifier(rt, uow)
        await notifier.refresh_card(ticket)  # an edit of the old card, not sent yet
        edit = (await uow.outbox.pending_for_ticket(ticket_id, grid_group.id))[-1]
        # Escalated: the ticket's node is the community now, whose group gets the card.
        ticket.node_id = (await uow.nodes.by_code(COMMUNITY)).id
        await notifier.post_card(ticket, note="⬆️")
        await uow.commit()
        edit_id = edit.id
    sent_before = len([c for c in bot.fake.calls if c.params.get("chat_id") == grid_group.id])
    await bot.deliver()

    assert len([c for c in bot.fake.calls
                if c.params.get("chat_id") == grid_group.id]) == sent_before
    assert (await row(bot, edit_id)).status == "failed"
    assert (await row(bot, said)).status == "failed"
    ticket = await ticket_of(bot, ticket_id)
    calls = [c for c in bot.fake.calls if c.params.get("chat_id") == COMMUNITY_GROUP.id]
    assert [c.method for c in calls] == ["sendMessage", "sendPhoto", "sendMessage"]
    assert calls[0].result["message_id"] == ticket.card_message_id
    assert calls[2].params["text"] == "住户补充：还有异味"
    assert calls[2].params["reply_parameters"]["message_id"] == ticket.card_message_id
    async with bot.runtime.uow() as uow:
        moved = (await uow.session.scalars(select(OutboxMessage).where(
            OutboxMessage.chat_id == COMMUNITY_GROUP.id,
            OutboxMessage.purpose == "relay"))).all()
    assert [(m.ticket_id, m.status) for m in moved] == [(ticket_id, "sent")]
