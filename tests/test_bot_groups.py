"""Groups through the real Application: binding, moving, unbinding, membership, migration."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import GroupChat, OrgNode, OutboxMessage
from storage.models import User as UserRow
from tests.harness import ADMIN, BotEnv
from tests.telegram_fake import Chat, User

GRID = "SFQ-DH-01-G1"
WORKER = User(200_001, "网格员 <小王>", language_code="zh-hans")
GROUP = Chat(-1001000000001, "supergroup", title="东湖一社区 <第1网格> & 志愿者")
OTHER = Chat(-1001000000002, "supergroup", title="Other <group>")


async def _binding(db, chat_id: int) -> str | None:
    async with db.sessions() as session:
        row = await session.scalar(select(GroupChat).where(GroupChat.chat_id == chat_id))
        if row is None or row.node_id is None:
            return None
        return (await session.get(OrgNode, row.node_id)).code


def _buttons(call) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    return [b.get("callback_data") or b.get("url") for row in markup.get("inline_keyboard", [])
            for b in row]


async def test_admin_binds_a_group_and_non_admin_is_refused(bot: BotEnv, db) -> None:
    t = bot.runtime.translator("zh_Hans")
    await bot.send(bot.updates.command(GROUP, "/bind", GRID, user=WORKER))
    assert bot.last_text(GROUP.id) == t("Only a Gridgate administrator can bind a group.")
    assert await _binding(db, GROUP.id) is None

    await bot.send(bot.updates.command(GROUP, "/bind", GRID, user=ADMIN))
    assert await _binding(db, GROUP.id) == GRID
    # In a group the answer replies to the command, so that it is clear whose it is.
    assert "message_id" in bot.fake.last("sendMessage").params["reply_parameters"]
    text = bot.last_text(GROUP.id)
    assert "东湖一社区第1网格" in text and "示范区" in text

    await bot.send(bot.updates.command(GROUP, "/help", user=WORKER))
    assert "东湖一社区第1网格" in bot.last_text(GROUP.id)

    await bot.send(bot.updates.command(GROUP, "/bind", GRID, user=ADMIN))
    assert bot.last_text(GROUP.id).startswith(t("This group already serves <b>{place}</b>.",
                                                place="")[:4])


async def test_unknown_codes_are_escaped_and_nothing_changes(bot: BotEnv, db) -> None:
    await bot.send(bot.updates.command(GROUP, "/bind", "<script>&", user=ADMIN))
    assert "<script>&" in bot.last_text(GROUP.id)  # shown as text, sent escaped
    assert "&lt;script&gt;&amp;" in bot.fake.sent_texts(GROUP.id, raw=True)[-1]
    await bot.send(bot.updates.command(GROUP, "/bind", user=ADMIN))
    assert "/bind CODE" in bot.last_text(GROUP.id)
    assert await _binding(db, GROUP.id) is None


async def test_moving_a_bound_node_asks_first_and_only_admins_confirm(bot: BotEnv, db) -> None:
    await bot.send(bot.updates.command(GROUP, "/bind", GRID, user=ADMIN))
    await bot.send(bot.updates.command(OTHER, "/bind", GRID, user=ADMIN))
    question = bot.fake.last("sendMessage")
    assert question.params["chat_id"] == OTHER.id
    assert "东湖一社区 &lt;第1网格&gt; &amp; 志愿者" in question.params["text"]
    assert await _binding(db, GROUP.id) == GRID and await _binding(db, OTHER.id) is None
    node_id = int(_buttons(question)[0].rsplit(":", 1)[1])

    await bot.send(bot.updates.callback(WORKER, f"bind:move:{node_id}", question.result))
    assert bot.fake.last("answerCallbackQuery").params["show_alert"] is True
    assert await _binding(db, GROUP.id) == GRID

    await bot.send(bot.updates.callback(ADMIN, f"bind:move:{node_id}", question.result))
    assert await _binding(db, OTHER.id) == GRID and await _binding(db, GROUP.id) is None
    assert "东湖一社区第1网格" in bot.last_text(GROUP.id)  # the old group is told
    assert bot.fake.last("editMessageText").params["chat_id"] == OTHER.id
    # ...through the outbox, written with the move, so the news outlives a crash after it.
    async with db.sessions() as session:
        told = (await session.scalars(select(OutboxMessage).where(
            OutboxMessage.chat_id == GROUP.id))).all()
    assert [row.status for row in told] == ["sent"]
    assert "东湖一社区第1网格" in told[0].params["text"]


async def test_cancelling_a_move_changes_nothing(bot: BotEnv, db) -> None:
    await bot.send(bot.updates.command(GROUP, "/bind", GRID, user=ADMIN))
    await bot.send(bot.updates.command(GROUP, "/bind", "SFQ-DH-01-G2", user=ADMIN))
    question = bot.fake.last("sendMessage")
    assert _buttons(question)[1] == "bind:keep"
    await bot.send(bot.updates.callback(ADMIN, "bind:keep", question.result))
    assert await _binding(db, GROUP.id) == GRID
    # Forged node ids are refused without touching anything.
    await bot.send(bot.updates.callback(ADMIN, "bind:move:999999", question.result))
    assert await _binding(db, GROUP.id) == GRID


async def test_unbind(bot: BotEnv, db) -> None:
    await bot.send(bot.updates.command(GROUP, "/bind", GRID, user=ADMIN))
    await bot.send(bot.updates.command(GROUP, "/unbind", user=WORKER))
    assert await _binding(db, GROUP.id) == GRID
    await bot.send(bot.updates.command(GROUP, "/unbind", user=ADMIN))
    assert await _binding(db, GROUP.id) is None
    await bot.send(bot.updates.command(GROUP, "/unbind", user=ADMIN))
    t = bot.runtime.translator("zh_Hans")
    assert bot.last_text(GROUP.id) == t("This group is not bound to anything.")


async def test_deep_link_binds_in_one_step(bot: BotEnv, db) -> None:
    await bot.send(bot.updates.command(ADMIN, "/bind", GRID))
    link = _buttons(bot.fake.last("sendMessage"))[0]
    assert link == f"https://t.me/gridgate_test_bot?startgroup=bind_{GRID}"
    # Opening it adds the bot, and Telegram sends "/start bind_<code>" from the admin.
    await bot.send(bot.updates.my_chat_member(GROUP, "left", "member", ADMIN))
    await bot.send(bot.updates.command(GROUP, "/start", f"bind_{GRID}", user=ADMIN))
    assert await _binding(db, GROUP.id) == GRID
    # Someone else's deep link does nothing.
    await bot.send(bot.updates.my_chat_member(OTHER, "left", "member", WORKER))
    await bot.send(bot.updates.command(OTHER, "/start", "bind_SFQ-DH-01-G2", user=WORKER))
    assert await _binding(db, OTHER.id) is None
    # A private /bind from a non-admin gives no link.
    await bot.send(bot.updates.command(WORKER, "/bind", GRID))
    assert "https://t.me" not in str(bot.fake.last("sendMessage").params)


async def test_removed_bot_makes_the_group_inactive_and_re_adding_revives_it(
        bot: BotEnv, db) -> None:
    await bot.send(bot.updates.my_chat_member(GROUP, "left", "member", ADMIN))
    assert "/bind CODE" in bot.last_text(GROUP.id)  # a greeting that says what to do
    await bot.send(bot.updates.command(GROUP, "/bind", GRID, user=ADMIN))
    await bot.send(bot.updates.my_chat_member(GROUP, "member", "kicked", ADMIN))
    async with db.sessions() as session:
        row = await session.get(GroupChat, GROUP.id)
        assert row.active is False and row.node_id is not None
    # Another group may take over the node without a question: the old one cannot serve.
    await bot.send(bot.updates.command(OTHER, "/bind", GRID, user=ADMIN))
    assert await _binding(db, OTHER.id) == GRID
    await bot.send(bot.updates.my_chat_member(GROUP, "left", "administrator", ADMIN))
    async with db.sessions() as session:
        assert (await session.get(GroupChat, GROUP.id)).active is True


async def test_a_person_blocking_the_bot_is_marked_unreachable(bot: BotEnv, db) -> None:
    await bot.send(bot.updates.command(WORKER, "/start"))
    await bot.send(bot.updates.my_chat_member(Chat.private(WORKER), "member", "kicked", WORKER))
    async with db.sessions() as session:
        assert (await session.get(UserRow, WORKER.id)).unreachable is True
    await bot.send(bot.updates.my_chat_member(Chat.private(WORKER), "kicked", "member", WORKER))
    async with db.sessions() as session:
        assert (await session.get(UserRow, WORKER.id)).unreachable is False


async def test_migration_to_a_supergroup_keeps_the_binding(bot: BotEnv, db) -> None:
    small = Chat(-4000001, "group", title="小群")
    await bot.send(bot.updates.command(small, "/bind", GRID, user=ADMIN))
    await bot.send(bot.updates.command(small, "/language", user=ADMIN))
    await bot.send(bot.updates.callback(ADMIN, "lang:en", bot.fake.last("sendMessage").result))
    for update in bot.updates.migrate(small, -1004000001):
        await bot.send(update)
    assert await _binding(db, -1004000001) == GRID
    assert await _binding(db, small.id) is None
    async with db.sessions() as session:
        new = await session.get(GroupChat, -1004000001)
        assert new.language == "en" and new.active and new.chat_type == "supergroup"
        assert (await session.get(GroupChat, small.id)).active is False
    await bot.send(bot.updates.command(Chat(-1004000001, "supergroup", title="小群"), "/help",
                                       user=WORKER))
    assert "Donghu" in bot.last_text(-1004000001)


async def test_group_language_is_for_admins(bot: BotEnv) -> None:
    await bot.send(bot.updates.command(GROUP, "/language", user=WORKER))
    t = bot.runtime.translator("zh_Hans")
    assert bot.last_text(GROUP.id) == t(
        "Only a Gridgate administrator can change the language of a group.")
    await bot.send(bot.updates.command(GROUP, "/language", user=ADMIN))
    menu = bot.fake.last("sendMessage")
    await bot.send(bot.updates.callback(WORKER, "lang:en", menu.result))
    assert bot.fake.last("answerCallbackQuery").params["show_alert"] is True
    await bot.send(bot.updates.callback(ADMIN, "lang:zh_Hant", menu.result))
    await bot.send(bot.updates.command(GROUP, "/help", user=WORKER))
    assert bot.last_text(GROUP.id).startswith(bot.runtime.translator("zh_Hant")(
        "This group is not bound yet."))
    assert bot.fake.last("setMyCommands").params["scope"] == {"type": "chat",
                                                              "chat_id": GROUP.id}


async def test_removing_the_bot_reroutes_open_tickets_up_the_tree(bot: BotEnv, db) -> None:
    from bot.actions.notifier import Notifier
    from bot.services import tickets

    community = Chat(-1001000000003, "supergroup", title="东湖第一社区")
    await bot.send(bot.updates.command(GROUP, "/bind", GRID, user=ADMIN))
    await bot.send(bot.updates.command(community, "/bind", "SFQ-DH-01", user=ADMIN))
    rt = bot.runtime
    async with rt.uow() as uow:
        grid = await uow.nodes.by_code(GRID)
        ticket = await tickets.create(uow, rt.clock, rt.config, tickets.NewReport(
            category=rt.config.category("sanitation"), description="垃圾没人清理已经一周",
            reporter_id=WORKER.id, language="zh_Hans", grid_id=grid.id))
        await Notifier(rt, uow).post_card(ticket)
        await uow.commit()
    await bot.deliver()
    assert any("垃圾没人清理" in text for text in bot.texts(GROUP.id))

    await bot.send(bot.updates.my_chat_member(GROUP, "member", "kicked", ADMIN))
    await bot.deliver()
    card = bot.texts(community.id)[-1]
    assert "垃圾没人清理" in card
    assert bot.runtime.translator("zh_Hans")(
        "Moved here: the bot can no longer post in the group that handled it.") in card
    async with rt.uow() as uow:
        moved = await uow.tickets.get(ticket.id)
        assert moved.group_chat_id == community.id and moved.card_message_id is not None
        assert [e.kind for e in await uow.tickets.events(ticket.id)][-1] == "rerouted"


async def test_the_right_to_create_topics_follows_the_bots_membership(bot: BotEnv, db) -> None:
    """In a forum where the bot is a plain member every ticket used to ask for a topic and be
    refused; the bot's right is known from its membership updates, and cards go to the
    General topic without asking."""
    from bot.actions.notifier import Notifier
    from bot.services import tickets

    forum = Chat(-1001000000005, "supergroup", title="网格论坛", is_forum=True)

    async def right() -> bool | None:
        async with db.sessions() as session:
            return (await session.get(GroupChat, forum.id)).can_manage_topics

    async def new_ticket() -> int:
        rt = bot.runtime
        async with rt.uow() as uow:
            grid = await uow.nodes.by_code(GRID)
            ticket = await tickets.create(uow, rt.clock, rt.config, tickets.NewReport(
                category=rt.config.category("sanitation"), description="垃圾没人清理已经一周",
                reporter_id=WORKER.id, language="zh_Hans", grid_id=grid.id))
            await Notifier(rt, uow).post_card(ticket)
            await uow.commit()
            ticket_id = ticket.id
        await bot.deliver()
        async with rt.uow() as uow:
            return (await uow.tickets.get(ticket_id)).topic_id

    await bot.send(bot.updates.my_chat_member(forum, "left", "member", ADMIN))
    await bot.send(bot.updates.command(forum, "/bind", GRID, user=ADMIN))
    assert await right() is False
    assert [await new_ticket() for _ in range(2)] == [None, None]
    assert bot.fake.calls_to("createForumTopic") == []
    assert bot.fake.calls_to("getChatMember") == []  # known already: nothing to ask

    await bot.send(bot.updates.my_chat_member(forum, "member", "administrator", ADMIN))
    assert await right() is True
    assert await new_ticket() is not None
    assert len(bot.fake.calls_to("createForumTopic")) == 1

    await bot.send(bot.updates.my_chat_member(forum, "administrator", "member", ADMIN))
    assert await right() is False
    assert await new_ticket() is None
    assert len(bot.fake.calls_to("createForumTopic")) == 1


async def test_a_claimed_ticket_re_routed_arrives_unclaimed_with_its_history(
        bot: BotEnv, db) -> None:
    """The bot was removed from a grid group while a worker there held a ticket: in the
    community's group nobody could act on it in the name of someone who is not there."""
    from bot.actions.notifier import Notifier
    from bot.services import tickets

    t = bot.runtime.translator("zh_Hans")
    community = Chat(-1001000000003, "supergroup", title="东湖第一社区")
    other_worker = User(200_002, "社区工作者", language_code="zh-hans")
    # A name in a right-to-left script keeps to its place: it would pull the words after it
    # on the history line into its direction.
    holder = User(200_003, "网格员 <دانا>", language_code="zh-hans")
    shown = "\u2068网格员 <دانا>\u2069"
    await bot.send(bot.updates.command(GROUP, "/bind", GRID, user=ADMIN))
    await bot.send(bot.updates.command(community, "/bind", "SFQ-DH-01", user=ADMIN))
    bot.fake.set_member(GROUP.id, holder.id, "member")
    bot.fake.set_member(community.id, other_worker.id, "member")
    rt = bot.runtime
    async with rt.uow() as uow:
        grid = await uow.nodes.by_code(GRID)
        ticket = await tickets.create(uow, rt.clock, rt.config, tickets.NewReport(
            category=rt.config.category("sanitation"), description="垃圾没人清理已经一周",
            reporter_id=900_100, language="zh_Hans", grid_id=grid.id))
        await Notifier(rt, uow).post_card(ticket)
        await uow.commit()
    await bot.deliver()
    card = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                if c.params["chat_id"] == GROUP.id and c.params.get("reply_markup"))
    await bot.send(bot.updates.callback(holder, f"tk:claim:{ticket.id}", card.result))
    await bot.send(bot.updates.callback(holder, f"tk:start:{ticket.id}", card.result))

    await bot.send(bot.updates.my_chat_member(GROUP, "member", "kicked", ADMIN))
    await bot.deliver()
    async with rt.uow() as uow:
        moved = await uow.tickets.get(ticket.id)
        assert (moved.status, moved.holder_id, moved.group_chat_id) == ("open", None,
                                                                       community.id)
        # It waits to be claimed there, so its claim timers run again.
        assert {task.kind for task in await uow.tasks.pending(ticket_id=ticket.id)} >= {
            "claim_remind", "claim_escalate"}
    new_card = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                    if c.params["chat_id"] == community.id and c.params.get("reply_markup"))
    assert t("Claimed") not in new_card.params["text"]
    await bot.send(bot.updates.callback(other_worker, f"tk:claim:{ticket.id}",
                                        new_card.result))
    async with rt.uow() as uow:
        assert (await uow.tickets.get(ticket.id)).holder_id == other_worker.id
    await bot.send(bot.updates.callback(other_worker, f"tk:details:{ticket.id}",
                                        new_card.result))
    history = bot.last_text(community.id)
    assert t("Claimed by {name}", name=shown) in history
    assert t("Passed on to {target}: the group that had it can no longer be reached; "
             "{name}, who held it there, no longer does", target="东湖第一社区",
             name=shown) in history
