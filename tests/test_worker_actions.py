"""Grid workers acting on ticket cards in their group, through the real Application on both
databases: membership, race-safe claims, start and resolve with a ForceReply note, release,
escalation and transfer (with the tree picker), forged buttons, and forum topics."""

from __future__ import annotations

import asyncio
import html
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.actions.notifier import Notifier
from bot.services import tickets
from bot.services.grids import path_label
from storage.db import Database
from storage.models import Draft, ProcessedUpdate, Ticket, TicketEvent, TicketMessage
from storage.repositories.tickets import TicketRepository
from tests.harness import ADMIN, BotEnv, start_bot, stop_bot
from tests.telegram_fake import Chat, User

GRID = "SFQ-DH-01-G1"
COMMUNITY = "SFQ-DH-01"
GROUP = Chat(-1001000000201, "supergroup", title="东湖一社区 <第1网格>")
COMMUNITY_GROUP = Chat(-1001000000202, "supergroup", title="东湖一社区综治中心")
LEGAL_GROUP = Chat(-1001000000203, "supergroup", title="公共法律服务")
DISTRICT_GROUP = Chat(-1001000000204, "supergroup", title="区综治中心")
FORUM = Chat(-1001000000205, "supergroup", title="网格论坛 & 话题", is_forum=True)
OTHER = Chat(-1001000000206, "supergroup", title="别的群")

WORKER_A = User(200_101, "小王 <b>", last_name="&amp;", language_code="zh-hans")
WORKER_B = User(200_102, "小李", language_code="zh-hans")
OUTSIDER = User(200_199, "路人", language_code="zh-hans")
RESIDENT = User(300_101, "张三", language_code="zh-hans")


# -- set-up ----------------------------------------------------------------------------------

@pytest.fixture
async def env(bot: BotEnv) -> BotEnv:
    for worker in (WORKER_A, WORKER_B):
        for chat in (GROUP, COMMUNITY_GROUP, LEGAL_GROUP, DISTRICT_GROUP, FORUM, OTHER):
            bot.fake.set_member(chat.id, worker.id, "member")
    return bot


async def bind(bot: BotEnv, chat: Chat, code: str) -> None:
    await bot.send(bot.updates.command(chat, "/bind", code, user=ADMIN))


async def new_ticket(bot: BotEnv, grid: str = GRID) -> int:
    rt = bot.runtime
    async with rt.uow() as uow:
        node = await uow.nodes.by_code(grid)
        ticket = await tickets.create(uow, rt.clock, rt.config, tickets.NewReport(
            category=rt.config.category("sanitation"), description="楼道里堆满了垃圾，一周没人清理",
            reporter_id=RESIDENT.id, language="zh_Hans", grid_id=node.id,
            reporter_name="张三", reporter_phone="13812345678"))
        await Notifier(rt, uow).post_card(ticket)
        await uow.commit()
        ticket_id = ticket.id
    await bot.deliver()
    return ticket_id


def buttons(message_or_params: dict[str, Any]) -> list[str]:
    markup = message_or_params.get("reply_markup") or {}
    return [b.get("callback_data") for row in markup.get("inline_keyboard", []) for b in row]


def card(bot: BotEnv, ticket_id: int, chat_id: int) -> dict[str, Any]:
    """The card as Telegram sent it (the message a press comes from)."""
    cards = [c for c in bot.fake.calls_to("sendMessage") if c.params["chat_id"] == chat_id
             and f"tk:details:{ticket_id}" in buttons(c.params)]
    assert cards, f"no card of ticket {ticket_id} in {chat_id}"
    return cards[-1].result


async def press(bot: BotEnv, user: User, data: str, message: dict[str, Any]) -> dict[str, Any]:
    await bot.send(bot.updates.callback(user, data, message))
    return bot.fake.last("answerCallbackQuery").params


async def ticket_row(db: Database, ticket_id: int) -> Ticket:
    async with db.sessions() as session:
        return await session.get(Ticket, ticket_id)


async def events(db: Database, ticket_id: int) -> list[TicketEvent]:
    async with db.sessions() as session:
        return list((await session.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id))).all())


async def node_id(bot: BotEnv, code: str) -> int:
    async with bot.runtime.uow() as uow:
        return (await uow.nodes.by_code(code)).id


async def place(bot: BotEnv, code: str, language: str = "zh_Hans") -> str:
    async with bot.runtime.uow() as uow:
        return path_label(await uow.nodes.path(await uow.nodes.by_code(code)), language)


def last_sent(bot: BotEnv, chat_id: int):
    return [c for c in bot.fake.calls_to("sendMessage") if c.params["chat_id"] == chat_id][-1]


def full_name(user: User) -> str:
    return " ".join(n for n in (user.first_name, user.last_name) if n)


def t_(bot: BotEnv):
    return bot.runtime.translator("zh_Hans")


# -- claim, membership -------------------------------------------------------------------------

async def test_two_workers_claim_at_once_and_one_wins(env: BotEnv, db: Database) -> None:
    bot, t = env, t_(env)
    await bind(bot, GROUP, GRID)
    ticket_id = await new_ticket(bot)
    message = card(bot, ticket_id, GROUP.id)
    a = bot.updates.callback(WORKER_A, f"tk:claim:{ticket_id}", message)
    b = bot.updates.callback(WORKER_B, f"tk:claim:{ticket_id}", message)
    await asyncio.gather(bot.send(a), bot.send(b))

    answers = {c.params["callback_query_id"]: c.params
               for c in bot.fake.calls_to("answerCallbackQuery")}
    assert set(answers) == {a.callback_query.id, b.callback_query.id}
    row = await ticket_row(db, ticket_id)
    assert row.status == "claimed"
    winner, loser = (a, b) if row.holder_id == WORKER_A.id else (b, a)
    holder = winner.callback_query.from_user.full_name
    assert row.holder_name == holder
    assert not answers[winner.callback_query.id].get("show_alert")
    lost = answers[loser.callback_query.id]
    assert lost["show_alert"] is True
    assert lost["text"] == t("No. {number} is already held by {name}.", number=row.number,
                             name=holder)
    assert [e.kind for e in await events(db, ticket_id)] == ["created", "claimed"]

    await bot.deliver()
    edit = bot.fake.last("editMessageText")
    assert (edit.params["chat_id"], edit.params["message_id"]) == (GROUP.id, message["message_id"])
    shown = bot.fake.messages_in(GROUP.id)
    edited = next(m for m in shown if m["message_id"] == message["message_id"])
    assert t("Claimed") in edited["text"] and holder in edited["text"]
    assert f"tk:start:{ticket_id}" in str(edited["reply_markup"])
    told = bot.last_text(RESIDENT.id)
    assert t("{role} {name} has taken on {request}.",
             request=t("your report"), role=t("Grid worker"),
             name=holder) in told
    assert str(WORKER_A.id) not in str(bot.fake.sent_texts(RESIDENT.id, raw=True))


async def test_non_members_are_refused_and_nothing_changes(env: BotEnv, db: Database) -> None:
    bot, t = env, t_(env)
    await bind(bot, GROUP, GRID)
    ticket_id = await new_ticket(bot)
    message = card(bot, ticket_id, GROUP.id)
    refused = t("Only members of this group can act on its tickets.")
    for status, fields in (("left", {}), ("kicked", {}), ("restricted", {"is_member": False})):
        bot.fake.set_member(GROUP.id, OUTSIDER.id, status, **fields)
        bot.runtime.clock.advance(bot.runtime.config.telegram.membership_cache_ttl)
        for action in ("claim", "details", "escalate", "transfer"):
            answer = await press(bot, OUTSIDER, f"tk:{action}:{ticket_id}", message)
            assert (answer["text"], answer["show_alert"]) == (refused, True)
    row = await ticket_row(db, ticket_id)
    assert (row.status, row.holder_id, row.group_chat_id) == ("open", None, GROUP.id)
    assert [e.kind for e in await events(db, ticket_id)] == ["created"]

    # A restricted user who is still in the group may act.
    bot.fake.set_member(GROUP.id, OUTSIDER.id, "restricted", is_member=True)
    bot.runtime.clock.advance(bot.runtime.config.telegram.membership_cache_ttl)
    await press(bot, OUTSIDER, f"tk:claim:{ticket_id}", message)
    assert (await ticket_row(db, ticket_id)).holder_id == OUTSIDER.id


async def test_membership_is_cached_for_the_ttl_and_asked_again_after_a_restart(
        env: BotEnv, db: Database, catalogs) -> None:
    bot = env
    await bind(bot, GROUP, GRID)
    ticket_id = await new_ticket(bot)
    message = card(bot, ticket_id, GROUP.id)

    def asked(user: User) -> int:
        return sum(1 for c in bot.fake.calls_to("getChatMember")
                   if (c.params["chat_id"], c.params["user_id"]) == (GROUP.id, user.id))

    await press(bot, WORKER_A, f"tk:claim:{ticket_id}", message)
    await press(bot, WORKER_A, f"tk:details:{ticket_id}", message)
    await press(bot, WORKER_B, f"tk:details:{ticket_id}", message)
    await press(bot, WORKER_A, f"tk:start:{ticket_id}", message)
    assert (asked(WORKER_A), asked(WORKER_B)) == (1, 1)
    bot.clock.advance(bot.runtime.config.telegram.membership_cache_ttl)
    await press(bot, WORKER_A, f"tk:details:{ticket_id}", message)
    assert asked(WORKER_A) == 2

    # Telegram failing: not allowed, asked to try again, and nothing cached.
    bot.clock.advance(bot.runtime.config.telegram.membership_cache_ttl)
    bot.fake.fail("getChatMember", error_code=500, description="Internal Server Error")
    answer = await press(bot, WORKER_A, f"tk:details:{ticket_id}", message)
    assert answer["show_alert"] is True
    assert answer["text"] == t_(bot)("I could not check that you are a member of this group. "
                                     "Please try again in a moment.")
    await press(bot, WORKER_A, f"tk:details:{ticket_id}", message)
    assert asked(WORKER_A) == 4
    assert bot.fake.last("answerCallbackQuery").params.get("show_alert") is not True

    # A restarted bot has an empty cache and asks again.
    again = await start_bot(db, catalogs, config=bot.runtime.config, clock=bot.clock,
                            fake=bot.fake, first_update_id=10_000)
    try:
        await again.send(again.updates.callback(WORKER_A, f"tk:details:{ticket_id}", message))
        assert asked(WORKER_A) == 5
        assert again.errors == []
    finally:
        await stop_bot(again)


# -- start, resolve, release -----------------------------------------------------------------

async def test_start_and_resolve_with_a_note_from_the_holder_only(env: BotEnv,
                                                                   db: Database) -> None:
    bot, t = env, t_(env)
    await bind(bot, GROUP, GRID)
    ticket_id = await new_ticket(bot)
    message = card(bot, ticket_id, GROUP.id)
    await press(bot, WORKER_A, f"tk:claim:{ticket_id}", message)
    number = (await ticket_row(db, ticket_id)).number
    holder = full_name(WORKER_A)

    # Only the holder starts and resolves.
    answer = await press(bot, WORKER_B, f"tk:start:{ticket_id}", message)
    assert answer["show_alert"] is True and holder in answer["text"]
    answer = await press(bot, WORKER_B, f"tk:resolve:{ticket_id}", message)
    assert answer["show_alert"] is True and holder in answer["text"]
    await press(bot, WORKER_A, f"tk:start:{ticket_id}", message)
    assert (await ticket_row(db, ticket_id)).status == "in_progress"
    answer = await press(bot, WORKER_A, f"tk:start:{ticket_id}", message)  # a double press
    assert answer["text"] == t("No. {number} is now: {status}.", number=number,
                               status=t("In progress"))
    await bot.deliver()
    assert t("{role} {name} has started work on {request}.",
             request=t("your report"), role=t("Grid worker"),
             name=holder) in bot.last_text(RESIDENT.id)

    await press(bot, WORKER_A, f"tk:resolve:{ticket_id}", message)
    prompt = last_sent(bot, GROUP.id)
    assert prompt.params["reply_markup"]["force_reply"] is True
    assert prompt.params["reply_markup"]["selective"] is True
    assert prompt.params["reply_parameters"]["message_id"] == message["message_id"]
    assert f"tg://user?id={WORKER_A.id}" in prompt.params["text"]
    assert t("Reply to this message with the resolution note for No. {number}.",
             number=number) in prompt.result["text"]
    async with db.sessions() as session:
        remembered = await session.get(TicketMessage, (GROUP.id, prompt.result["message_id"]))
        assert (remembered.ticket_id, remembered.purpose) == (ticket_id, "resolve_prompt")
        draft = await session.scalar(select(Draft).where(Draft.user_id == WORKER_A.id))
        assert (draft.flow, draft.step) == ("resolve", "note")
        assert draft.data == {"ticket_id": ticket_id, "chat_id": GROUP.id,
                              "prompt_id": prompt.result["message_id"]}

    # Another worker's answer is not taken.
    await bot.send(bot.updates.group_text(GROUP, WORKER_B, "我来结案", reply_to=prompt.result))
    assert bot.last_text(GROUP.id) == t(
        "Only the worker who pressed the button can answer this question, and only its latest "
        "version. Press the button on the card again if needed.")
    assert (await ticket_row(db, ticket_id)).status == "in_progress"

    # Too short, or not text: the question again.
    await bot.send(bot.updates.group_text(GROUP, WORKER_A, "好", reply_to=prompt.result))
    again = last_sent(bot, GROUP.id)
    assert again.params["reply_markup"]["force_reply"] is True
    assert t("Please reply with a text of {min} to {max} characters.", min=2,
             max=1000) in again.result["text"]
    await bot.send(bot.updates.sticker(WORKER_A, chat=GROUP))  # not a reply: not ours
    assert last_sent(bot, GROUP.id).result["message_id"] == again.result["message_id"]
    assert (await ticket_row(db, ticket_id)).status == "in_progress"

    note = "已清理干净 <ok> & 消毒"
    await bot.send(bot.updates.group_text(GROUP, WORKER_A, note, reply_to=again.result))
    row = await ticket_row(db, ticket_id)
    assert (row.status, row.resolution) == ("resolved", note)
    assert bot.last_text(GROUP.id) == t("✅ No. {number} is resolved. The resident has been "
                                        "told.", number=number)
    async with db.sessions() as session:
        assert await session.scalar(select(Draft).where(Draft.user_id == WORKER_A.id)) is None
    assert [e.kind for e in await events(db, ticket_id)] == [
        "created", "claimed", "started", "resolved"]

    await bot.deliver()
    told = bot.last_text(RESIDENT.id)
    assert note in told and t("Grid worker") in told
    edited = next(m for m in bot.fake.messages_in(GROUP.id)
                  if m["message_id"] == message["message_id"])
    assert t("Resolved") in edited["text"] and note in edited["text"]
    assert buttons(edited) == [f"tk:details:{ticket_id}"]

    # Resolved: only Details still works.
    answer = await press(bot, WORKER_A, f"tk:claim:{ticket_id}", message)
    assert answer["show_alert"] is True and t("Only Details is available now.") in answer["text"]
    await press(bot, WORKER_A, f"tk:details:{ticket_id}", message)
    history = bot.last_text(GROUP.id)
    assert t("Resolved by {name}: {note}", name=holder, note=note) in history
    assert t("Claimed by {name}", name=holder) in history
    assert "09:00" in history  # local time (Asia/Shanghai) of the fake clock's 01:00 UTC


async def test_release_and_double_presses(env: BotEnv, db: Database) -> None:
    bot, t = env, t_(env)
    await bind(bot, GROUP, GRID)
    ticket_id = await new_ticket(bot)
    message = card(bot, ticket_id, GROUP.id)
    await press(bot, WORKER_A, f"tk:claim:{ticket_id}", message)
    number = (await ticket_row(db, ticket_id)).number
    answer = await press(bot, WORKER_A, f"tk:claim:{ticket_id}", message)
    assert answer["text"] == t("You already hold No. {number}.", number=number)
    assert not answer.get("show_alert")
    answer = await press(bot, WORKER_B, f"tk:release:{ticket_id}", message)
    assert answer["show_alert"] is True
    assert (await ticket_row(db, ticket_id)).holder_id == WORKER_A.id

    await press(bot, WORKER_A, f"tk:release:{ticket_id}", message)
    row = await ticket_row(db, ticket_id)
    assert (row.status, row.holder_id, row.holder_name) == ("open", None, None)
    await press(bot, WORKER_A, f"tk:release:{ticket_id}", message)  # again: refused, harmless
    assert bot.fake.last("answerCallbackQuery").params["show_alert"] is True
    assert [e.kind for e in await events(db, ticket_id)] == ["created", "claimed", "released"]
    await bot.deliver()
    edited = next(m for m in bot.fake.messages_in(GROUP.id)
                  if m["message_id"] == message["message_id"])
    assert t("Waiting to be claimed") in edited["text"]
    await press(bot, WORKER_B, f"tk:claim:{ticket_id}", message)
    assert (await ticket_row(db, ticket_id)).holder_id == WORKER_B.id


# -- escalation and transfer -----------------------------------------------------------------

async def test_escalation_moves_the_card_to_the_community_group(env: BotEnv,
                                                                db: Database) -> None:
    bot, t = env, t_(env)
    await bind(bot, GROUP, GRID)
    await bind(bot, COMMUNITY_GROUP, COMMUNITY)
    ticket_id = await new_ticket(bot)
    message = card(bot, ticket_id, GROUP.id)
    await press(bot, WORKER_A, f"tk:claim:{ticket_id}", message)
    answer = await press(bot, WORKER_A, f"tk:escalate:{ticket_id}", message)
    community = await place(bot, COMMUNITY)
    row = await ticket_row(db, ticket_id)
    assert answer["text"] == t("No. {number} has gone to {place}.", number=row.number,
                               place=community)
    assert (row.node_id, row.group_chat_id, row.status, row.holder_id) == (
        await node_id(bot, COMMUNITY), COMMUNITY_GROUP.id, "open", None)
    assert [e.kind for e in await events(db, ticket_id)][-1] == "escalated"
    said = last_sent(bot, GROUP.id)
    assert said.params["reply_parameters"]["message_id"] == message["message_id"]
    assert "⬆️" in said.result["text"] and community in said.result["text"]
    assert full_name(WORKER_A) in said.result["text"] and row.number in said.result["text"]

    await bot.deliver()
    retired = next(m for m in bot.fake.messages_in(GROUP.id)
                   if m["message_id"] == message["message_id"])
    assert buttons(retired) == []
    # The old card says who sent the ticket where, and keeps saying it: the press on it is
    # not taken for a press on a stale copy, whose note would replace this one.
    note = t("⬆️ {name} escalated No. {number} to <b>{place}</b>.",
             name=html.escape(full_name(WORKER_A)), number=row.number, place=community)
    assert retired["text"].startswith(
        html.unescape(note.replace("<b>", "").replace("</b>", "")) + "\n")
    new_card = card(bot, ticket_id, COMMUNITY_GROUP.id)
    assert WORKER_A.first_name in new_card["text"]
    assert t("We have passed {request} up to {place}.", request=t("your report"),
             place=community) in bot.last_text(
        RESIDENT.id)

    # The old card is stale now; the community's workers take it from here.
    answer = await press(bot, WORKER_B, f"tk:claim:{ticket_id}", message)
    assert answer["text"] == t("No. {number} is handled in another group now.",
                               number=row.number)
    await press(bot, WORKER_B, f"tk:claim:{ticket_id}", new_card)
    await bot.deliver()
    assert t("{role} {name} has taken on {request}.",
             request=t("your report"), role=t("Community centre"),
             name=full_name(WORKER_B)) in bot.last_text(RESIDENT.id)


async def test_a_second_copy_of_a_card_acts_on_the_ticket_and_is_kept_up_to_date(
        env: BotEnv, db: Database) -> None:
    bot, t = env, t_(env)
    await bind(bot, GROUP, GRID)
    await bind(bot, COMMUNITY_GROUP, COMMUNITY)
    # The card reaches Telegram but the answer is lost: it is sent again, and shows twice.
    bot.fake.fail("sendMessage", chat_id=GROUP.id, timeout=True, delivered=True)
    ticket_id = await new_ticket(bot)
    bot.clock.advance(timedelta(seconds=5))
    await bot.deliver()

    def copies() -> list[dict[str, Any]]:
        return [m for m in bot.fake.messages_in(GROUP.id)
                if str(ticket_id) in " ".join(buttons(m)) or "垃圾" in m.get("text", "")]

    first, second = copies()
    assert buttons(first) == buttons(second) and f"tk:claim:{ticket_id}" in buttons(first)
    assert (await ticket_row(db, ticket_id)).card_message_id == second["message_id"]

    # Claim on the copy the bot never heard of: it acts on the ticket, and that copy too
    # shows the claim (not only the card).
    answer = await press(bot, WORKER_A, f"tk:claim:{ticket_id}", first)
    row = await ticket_row(db, ticket_id)
    assert answer["text"] == t("You have claimed No. {number}.", number=row.number)
    assert (row.status, row.holder_id) == ("claimed", WORKER_A.id)
    await bot.deliver()
    first, second = copies()
    assert buttons(first) == buttons(second) and f"tk:start:{ticket_id}" in buttons(first)
    assert f"tk:claim:{ticket_id}" not in buttons(first)
    assert first["text"] == second["text"]

    # Known now: a press on the card brings the copy along too.
    await press(bot, WORKER_A, f"tk:start:{ticket_id}", second)
    await bot.deliver()
    first, second = copies()
    assert buttons(first) == buttons(second) and f"tk:start:{ticket_id}" not in buttons(first)
    assert (await ticket_row(db, ticket_id)).status == "in_progress"

    # A reply to the copy reaches the resident, like one to the card.
    await bot.send(bot.updates.group_text(GROUP, WORKER_A, "下午就到", reply_to=first))
    await bot.deliver()
    assert bot.fake.sent_texts(RESIDENT.id)[-1].endswith("下午就到")

    # Escalated from the copy: the card and the copy both stop offering actions.
    await press(bot, WORKER_A, f"tk:escalate:{ticket_id}", first)
    await bot.deliver()
    first, second = copies()
    assert buttons(first) == buttons(second) == []
    assert (await ticket_row(db, ticket_id)).group_chat_id == COMMUNITY_GROUP.id


def cards_of(bot: BotEnv, ticket_id: int, chat_id: int) -> list[dict[str, Any]]:
    """Every card of the ticket sent to the chat (each with its Details button)."""
    return [c.result for c in bot.fake.calls_to("sendMessage") if c.params["chat_id"] == chat_id
            and f"tk:details:{ticket_id}" in buttons(c.params)]


async def test_escalation_goes_up_from_the_group_and_stops_at_the_district(
        env: BotEnv, db: Database) -> None:
    bot, t = env, t_(env)
    await bind(bot, COMMUNITY_GROUP, COMMUNITY)
    ticket_id = await new_ticket(bot)  # no grid group: the community group has it
    message = card(bot, ticket_id, COMMUNITY_GROUP.id)
    grid = await node_id(bot, GRID)
    # Escalating in the community's group goes above the community, where no group is yet;
    # it does not go "up" to the community the ticket is already with.
    answer = await press(bot, WORKER_A, f"tk:escalate:{ticket_id}", message)
    assert answer["show_alert"] is True
    assert answer["text"] == t("No group serves {place} yet; choose another place.",
                               place=await place(bot, "SFQ-DH"))
    row = await ticket_row(db, ticket_id)
    assert (row.node_id, row.group_chat_id) == (grid, COMMUNITY_GROUP.id)

    # The street has no group: the ticket goes past it, straight to the district's group,
    # which gets one card, and the resident hears where it really is.
    await bind(bot, DISTRICT_GROUP, "SFQ")
    answer = await press(bot, WORKER_A, f"tk:escalate:{ticket_id}", message)
    district = await place(bot, "SFQ")
    row = await ticket_row(db, ticket_id)
    assert answer["text"] == t("No. {number} has gone to {place}.", number=row.number,
                               place=district)
    assert (row.node_id, row.group_chat_id) == (await node_id(bot, "SFQ"), DISTRICT_GROUP.id)
    await bot.deliver()
    [top_card] = cards_of(bot, ticket_id, DISTRICT_GROUP.id)
    assert t("We have passed {request} up to {place}.", request=t("your report"),
             place=district) in bot.last_text(RESIDENT.id)

    # Nothing is above the district: the bot says so, and nothing moves.
    sent = len(bot.fake.calls_to("sendMessage"))
    answer = await press(bot, WORKER_A, f"tk:escalate:{ticket_id}", top_card)
    assert answer["text"] == t("No. {number} is already at the top, with the district centre.",
                               number=row.number)
    await bot.deliver()
    assert len(bot.fake.calls_to("sendMessage")) == sent
    assert (await ticket_row(db, ticket_id)).node_id == await node_id(bot, "SFQ")
    assert [e.kind for e in await events(db, ticket_id)].count("escalated") == 1


async def test_escalating_in_the_district_group_never_moves_a_ticket_down(
        env: BotEnv, db: Database) -> None:
    """A grid without a group of its own has its tickets in the district centre's group (as
    in the demo): escalating one there would once have sent it "up" to the grid's community,
    still in the same group, and named that lower place as where it went."""
    bot, t = env, t_(env)
    await bind(bot, DISTRICT_GROUP, "SFQ")
    ticket_id = await new_ticket(bot, "SFQ-DH-01-G2")
    message = card(bot, ticket_id, DISTRICT_GROUP.id)
    answer = await press(bot, WORKER_A, f"tk:escalate:{ticket_id}", message)
    row = await ticket_row(db, ticket_id)
    assert answer["text"] == t("No. {number} is already at the top, with the district centre.",
                               number=row.number)
    assert row.node_id == await node_id(bot, "SFQ-DH-01-G2")
    assert "escalated" not in [e.kind for e in await events(db, ticket_id)]
    await bot.deliver()
    assert len(cards_of(bot, ticket_id, DISTRICT_GROUP.id)) == 1


async def test_a_transfer_within_the_same_group_refreshes_the_card_instead_of_a_new_one(
        env: BotEnv, db: Database) -> None:
    """Both grids have no group of their own: the community's group handles them both. A
    transfer from one to the other keeps the ticket in that group, so its one card is edited
    in place (no second card, no closed topic, no retired card) and the group reads a single
    note, the answer to the worker."""
    bot = env
    await bind(bot, COMMUNITY_GROUP, COMMUNITY)
    ticket_id = await new_ticket(bot)
    message = card(bot, ticket_id, COMMUNITY_GROUP.id)
    other_grid = await node_id(bot, "SFQ-DH-01-G2")
    await press(bot, WORKER_A, f"tk:transfer:{ticket_id}", message)
    picker = last_sent(bot, COMMUNITY_GROUP.id)
    await press(bot, WORKER_A, f"tk:tc:{ticket_id}:{other_grid}", picker.result)
    prompt = last_sent(bot, COMMUNITY_GROUP.id)
    sent_before = len(bot.fake.calls_to("sendMessage"))
    edits_before = len(bot.fake.calls_to("editMessageText"))
    await bot.send(bot.updates.group_text(COMMUNITY_GROUP, WORKER_A, "属于第2网格",
                                          reply_to=prompt.result))
    await bot.deliver()
    row = await ticket_row(db, ticket_id)
    assert (row.node_id, row.group_chat_id) == (other_grid, COMMUNITY_GROUP.id)
    assert row.card_message_id == message["message_id"]
    in_group = [c for c in bot.fake.calls_to("sendMessage")[sent_before:]
                if c.params["chat_id"] == COMMUNITY_GROUP.id]
    assert len(in_group) == 1  # the note: no second card, no announcement besides it
    note = in_group[0].params["text"]
    assert "↪️" in note and "属于第2网格" in note and row.number in note
    assert len(cards_of(bot, ticket_id, COMMUNITY_GROUP.id)) == 1
    edited = [c for c in bot.fake.calls_to("editMessageText")[edits_before:]
              if c.params["message_id"] == message["message_id"]]
    assert edited and all(buttons(c.params) for c in edited)  # still a live card
    assert bot.fake.calls_to("closeForumTopic") == []
    assert [e.kind for e in await events(db, ticket_id)][-1] == "transferred"


async def test_details_name_each_worker_who_wrote_to_the_resident(env: BotEnv,
                                                                  db: Database) -> None:
    bot, t = env, t_(env)
    await bind(bot, GROUP, GRID)
    ticket_id = await new_ticket(bot)
    message = card(bot, ticket_id, GROUP.id)
    await press(bot, WORKER_A, f"tk:claim:{ticket_id}", message)
    # B does not hold the ticket, but any member may answer the resident.
    await bot.send(bot.updates.group_text(GROUP, WORKER_B, "明天上午来清理", reply_to=message))
    await press(bot, WORKER_A, f"tk:details:{ticket_id}", message)
    history = bot.last_text(GROUP.id)
    assert t("{name}: {message}", name=WORKER_B.first_name, message="明天上午来清理") in history
    assert t("a worker") not in history


async def test_transfer_through_the_tree_with_a_reason(env: BotEnv, db: Database) -> None:
    bot, t = env, t_(env)
    await bind(bot, GROUP, GRID)
    await bind(bot, LEGAL_GROUP, "legal")
    ticket_id = await new_ticket(bot)
    message = card(bot, ticket_id, GROUP.id)
    root, street, legal = (await node_id(bot, "SFQ"), await node_id(bot, "SFQ-NY"),
                           await node_id(bot, "legal"))

    await press(bot, WORKER_A, f"tk:transfer:{ticket_id}", message)
    picker = last_sent(bot, GROUP.id)
    assert picker.params["reply_parameters"]["message_id"] == message["message_id"]
    offered = buttons(picker.params)
    assert f"tk:tt:{ticket_id}:{street}" in offered and f"tk:tt:{ticket_id}:{legal}" in offered
    assert f"tk:tc:{ticket_id}:{root}" in offered and all(len(b) <= 64 for b in offered)

    await press(bot, WORKER_A, f"tk:tt:{ticket_id}:{street}", picker.result)
    await press(bot, WORKER_B, f"tk:tt:{ticket_id}:{street}", picker.result)  # the same view
    assert "not modified" in bot.fake.calls_to("editMessageText")[-1].error["description"]
    view = bot.fake.calls_to("editMessageText")[-2]
    assert await place(bot, "SFQ-NY") in view.result["text"]
    communities = [b for b in buttons(view.params) if b.startswith(f"tk:tt:{ticket_id}:")]
    assert f"tk:tt:{ticket_id}:{root}" in communities  # up
    # A place no group serves (nor any above it) cannot be chosen.
    answer = await press(bot, WORKER_A, f"tk:tc:{ticket_id}:{street}", picker.result)
    assert answer["show_alert"] is True and await place(bot, "SFQ-NY") in answer["text"]

    await press(bot, WORKER_A, f"tk:tt:{ticket_id}:{legal}", picker.result)
    assert f"tk:tc:{ticket_id}:{legal}" in buttons(bot.fake.last("editMessageText").params)
    await press(bot, WORKER_A, f"tk:tc:{ticket_id}:{legal}", picker.result)
    prompt = last_sent(bot, GROUP.id)
    assert prompt.params["reply_markup"]["force_reply"] is True
    number = (await ticket_row(db, ticket_id)).number
    assert t("Reply to this message with the reason for transferring No. {number} to {place}.",
             number=number, place=await place(bot, "legal")) in prompt.result["text"]
    # The reason reaches the resident word for word: the worker is told before writing it.
    assert t("The resident will see this reason as you write it.") in prompt.result["text"]
    async with db.sessions() as session:
        remembered = await session.get(TicketMessage, (GROUP.id, prompt.result["message_id"]))
        assert remembered.purpose == "transfer_prompt"
        draft = await session.scalar(select(Draft).where(Draft.user_id == WORKER_A.id))
        assert (draft.flow, draft.data["node_id"]) == ("transfer", legal)
    assert (await ticket_row(db, ticket_id)).group_chat_id == GROUP.id  # not yet

    await bot.send(bot.updates.group_text(GROUP, WORKER_B, "不对", reply_to=prompt.result))
    assert (await ticket_row(db, ticket_id)).group_chat_id == GROUP.id
    reason = "涉及合同 <纠纷>，需要律师"
    await bot.send(bot.updates.group_text(GROUP, WORKER_A, reason, reply_to=prompt.result))
    row = await ticket_row(db, ticket_id)
    assert (row.node_id, row.group_chat_id, row.status) == (legal, LEGAL_GROUP.id, "open")
    last_event = (await events(db, ticket_id))[-1]
    assert (last_event.kind, last_event.data["reason"]) == ("transferred", reason)
    assert reason in bot.last_text(GROUP.id)

    await bot.deliver()
    retired = next(m for m in bot.fake.messages_in(GROUP.id)
                   if m["message_id"] == message["message_id"])
    assert buttons(retired) == [] and reason in retired["text"]
    assert reason in card(bot, ticket_id, LEGAL_GROUP.id)["text"]
    assert t("We have passed {request} on to {place}.\nReason: {reason}",
             request=t("your report"), place=await place(bot, "legal"),
             reason=reason) in bot.last_text(RESIDENT.id)

    # The old picker is stale now; the history tells the story in the new group.
    answer = await press(bot, WORKER_A, f"tk:tt:{ticket_id}:{root}", picker.result)
    assert answer["text"] == t("No. {number} is handled in another group now.", number=number)
    await press(bot, WORKER_B, f"tk:details:{ticket_id}", card(bot, ticket_id, LEGAL_GROUP.id))
    history = bot.last_text(LEGAL_GROUP.id)
    assert t("Transferred from {source} to {target} by {name}", source="东湖一社区第1网格",
             target="公共法律服务", name=t("a worker")) + ": " + reason in history


async def test_the_picker_can_be_cancelled_and_refuses_the_current_place(
        env: BotEnv, db: Database) -> None:
    bot, t = env, t_(env)
    await bind(bot, GROUP, GRID)
    ticket_id = await new_ticket(bot)
    message = card(bot, ticket_id, GROUP.id)
    grid = await node_id(bot, GRID)
    await press(bot, WORKER_A, f"tk:transfer:{ticket_id}", message)
    picker = last_sent(bot, GROUP.id)
    answer = await press(bot, WORKER_A, f"tk:tc:{ticket_id}:{grid}", picker.result)
    number = (await ticket_row(db, ticket_id)).number
    assert answer["text"] == t("No. {number} is already there.", number=number)
    await press(bot, WORKER_A, f"tk:tt:{ticket_id}:{grid}", picker.result)
    assert f"tk:tc:{ticket_id}:{grid}" not in buttons(bot.fake.last("editMessageText").params)
    await press(bot, WORKER_A, f"tk:tx:{ticket_id}", picker.result)
    assert bot.fake.last("editMessageText").result["text"] == t(
        "Transfer of No. {number} cancelled.", number=number)

    # /cancel as the answer to the reason prompt.
    await bind(bot, COMMUNITY_GROUP, COMMUNITY)
    await press(bot, WORKER_A, f"tk:tc:{ticket_id}:{await node_id(bot, COMMUNITY)}",
                picker.result)
    prompt = last_sent(bot, GROUP.id)
    await bot.send(bot.updates.group_text(GROUP, WORKER_A, "/cancel", reply_to=prompt.result))
    assert bot.last_text(GROUP.id) == t("Cancelled. No. {number} stays as it is.",
                                        number=number)
    async with db.sessions() as session:
        assert (await session.scalars(select(Draft))).all() == []
    row = await ticket_row(db, ticket_id)
    assert (row.node_id, row.group_chat_id) == (grid, GROUP.id)


# -- forged and stale buttons, forums ---------------------------------------------------------

async def test_forged_and_stale_buttons_change_nothing(env: BotEnv, db: Database) -> None:
    bot, t = env, t_(env)
    await bind(bot, GROUP, GRID)
    await bind(bot, OTHER, COMMUNITY)
    ticket_id = await new_ticket(bot)
    message = card(bot, ticket_id, GROUP.id)
    invalid = t("This button is no longer valid.")
    for data in (f"tk:claim:x{ticket_id}", f"tk:nope:{ticket_id}", "tk:claim:999999",
                 f"tk:claim:{ticket_id}:1", "tk:claim:", f"tk:tt:{ticket_id}",
                 f"tk:tt:{ticket_id}:999999", f"tk:tc:{ticket_id}:999999",
                 f"tk:claim:{ticket_id}\n", "tk:claim:١٢", "tk:claim:999999999999999999",
                 f"tk:tt:{ticket_id}:999999999999999999:1"):
        answer = await press(bot, WORKER_A, data, message)
        assert (answer["text"], answer["show_alert"]) == (invalid, True), data
    # A real button pressed on a message in another group.
    await bot.send(bot.updates.command(OTHER, "/help", user=WORKER_A))
    elsewhere = last_sent(bot, OTHER.id).result
    answer = await press(bot, WORKER_A, f"tk:claim:{ticket_id}", elsewhere)
    number = (await ticket_row(db, ticket_id)).number
    assert answer["text"] == t("No. {number} is handled in another group now.", number=number)
    row = await ticket_row(db, ticket_id)
    assert (row.status, row.holder_id, row.node_id) == ("open", None, await node_id(bot, GRID))
    assert [e.kind for e in await events(db, ticket_id)] == ["created"]
    async with db.sessions() as session:
        assert (await session.scalars(select(Draft))).all() == []


async def test_a_forum_group_gets_everything_in_the_ticket_topic(env: BotEnv,
                                                                 db: Database) -> None:
    bot, t = env, t_(env)
    await bind(bot, FORUM, GRID)
    ticket_id = await new_ticket(bot)
    topic = (await ticket_row(db, ticket_id)).topic_id
    assert topic is not None
    message = card(bot, ticket_id, FORUM.id)
    assert message["message_thread_id"] == topic and message["is_topic_message"] is True

    await press(bot, WORKER_A, f"tk:claim:{ticket_id}", message)
    await press(bot, WORKER_A, f"tk:details:{ticket_id}", message)
    assert last_sent(bot, FORUM.id).params["message_thread_id"] == topic
    await press(bot, WORKER_A, f"tk:resolve:{ticket_id}", message)
    prompt = last_sent(bot, FORUM.id)
    assert prompt.params["message_thread_id"] == topic
    assert prompt.result["message_thread_id"] == topic
    await bot.send(bot.updates.group_text(FORUM, WORKER_A, "处理完毕，已回访",
                                          reply_to=prompt.result, message_thread_id=topic))
    assert (await ticket_row(db, ticket_id)).status == "resolved"
    done = last_sent(bot, FORUM.id)
    assert done.params["message_thread_id"] == topic
    assert done.result["text"] == t("✅ No. {number} is resolved. The resident has been told.",
                                    number=(await ticket_row(db, ticket_id)).number)
    await bot.deliver()
    assert "处理完毕，已回访" in bot.last_text(RESIDENT.id)


async def test_a_transfer_from_a_forum_topic_asks_there(env: BotEnv, db: Database) -> None:
    bot = env
    await bind(bot, FORUM, GRID)
    await bind(bot, COMMUNITY_GROUP, COMMUNITY)
    ticket_id = await new_ticket(bot)
    topic = (await ticket_row(db, ticket_id)).topic_id
    message = card(bot, ticket_id, FORUM.id)
    community = await node_id(bot, COMMUNITY)
    await press(bot, WORKER_A, f"tk:transfer:{ticket_id}", message)
    picker = last_sent(bot, FORUM.id)
    assert picker.params["message_thread_id"] == topic
    await press(bot, WORKER_A, f"tk:tc:{ticket_id}:{community}", picker.result)
    prompt = last_sent(bot, FORUM.id)
    assert prompt.params["message_thread_id"] == topic
    await bot.send(bot.updates.group_text(FORUM, WORKER_A, "社区统一处理", reply_to=prompt.result,
                                          message_thread_id=topic))
    row = await ticket_row(db, ticket_id)
    assert (row.group_chat_id, row.topic_id) == (COMMUNITY_GROUP.id, None)
    assert last_sent(bot, FORUM.id).params["message_thread_id"] == topic
    await bot.deliver()
    assert "社区统一处理" in card(bot, ticket_id, COMMUNITY_GROUP.id)["text"]
    # The topic left behind is closed: nobody goes on writing into it unheard.
    assert [(c.params["chat_id"], c.params["message_thread_id"])
            for c in bot.fake.calls_to("closeForumTopic")] == [(FORUM.id, topic)]
    retired = next(c for c in bot.fake.calls_to("editMessageText")
                   if c.params["message_id"] == message["message_id"])
    assert retired.params["reply_markup"] == {"inline_keyboard": []}


# -- review fixes: holders, forged pickers, names, prompts that survive a crash ----------------

async def test_only_the_holder_sends_a_claimed_ticket_elsewhere(env: BotEnv,
                                                                db: Database) -> None:
    bot, t = env, t_(env)
    await bind(bot, GROUP, GRID)
    await bind(bot, COMMUNITY_GROUP, COMMUNITY)
    ticket_id = await new_ticket(bot)
    message = card(bot, ticket_id, GROUP.id)
    community = await node_id(bot, COMMUNITY)
    # B starts a transfer while the ticket is open…
    await press(bot, WORKER_B, f"tk:transfer:{ticket_id}", message)
    picker = last_sent(bot, GROUP.id)
    await press(bot, WORKER_B, f"tk:tc:{ticket_id}:{community}", picker.result)
    prompt = last_sent(bot, GROUP.id)
    # … and A claims it before B has given the reason.
    await press(bot, WORKER_A, f"tk:claim:{ticket_id}", message)
    number = (await ticket_row(db, ticket_id)).number
    only_a = t("Only {name}, who holds No. {number}, can do that.", name=full_name(WORKER_A),
               number=number)
    sent, edited = (len(bot.fake.calls_to("sendMessage")),
                    len(bot.fake.calls_to("editMessageText")))
    for data, on in ((f"tk:escalate:{ticket_id}", message),
                     (f"tk:transfer:{ticket_id}", message),
                     (f"tk:tt:{ticket_id}:{community}", picker.result),
                     (f"tk:tc:{ticket_id}:{community}", picker.result),
                     (f"tk:tx:{ticket_id}", picker.result)):
        answer = await press(bot, WORKER_B, data, on)
        assert (answer["text"], answer["show_alert"]) == (only_a, True), data
    assert len(bot.fake.calls_to("sendMessage")) == sent
    assert len(bot.fake.calls_to("editMessageText")) == edited
    await bot.send(bot.updates.group_text(GROUP, WORKER_B, "应由社区处理", reply_to=prompt.result))
    assert bot.last_text(GROUP.id) == only_a
    row = await ticket_row(db, ticket_id)
    assert (row.status, row.holder_id, row.group_chat_id) == ("claimed", WORKER_A.id, GROUP.id)
    async with db.sessions() as session:
        assert (await session.scalars(select(Draft))).all() == []  # B's question is closed

    # The holder may.
    answer = await press(bot, WORKER_A, f"tk:escalate:{ticket_id}", message)
    assert answer["text"] == t("No. {number} has gone to {place}.", number=number,
                               place=await place(bot, COMMUNITY))
    row = await ticket_row(db, ticket_id)
    assert (row.status, row.holder_id, row.group_chat_id) == ("open", None, COMMUNITY_GROUP.id)
    assert [e.kind for e in await events(db, ticket_id)] == ["created", "claimed", "escalated"]


async def test_picker_buttons_on_a_card_or_a_prompt_change_nothing(env: BotEnv,
                                                                   db: Database) -> None:
    """Picker buttons edit the message they are on: forged onto a card (this ticket's or
    another's) or a prompt, they would overwrite it."""
    bot, t = env, t_(env)
    await bind(bot, GROUP, GRID)
    await bind(bot, COMMUNITY_GROUP, COMMUNITY)
    first, second = await new_ticket(bot), await new_ticket(bot)
    first_card, second_card = card(bot, first, GROUP.id), card(bot, second, GROUP.id)
    await press(bot, WORKER_A, f"tk:claim:{first}", first_card)
    await press(bot, WORKER_A, f"tk:resolve:{first}", first_card)
    prompt = last_sent(bot, GROUP.id).result
    await bot.deliver()
    grid, community = await node_id(bot, GRID), await node_id(bot, COMMUNITY)
    shown = bot.fake.messages_in(GROUP.id)
    edited = len(bot.fake.calls_to("editMessageText"))
    invalid = t("This button is no longer valid.")
    for on in (first_card, second_card, prompt):
        for data in (f"tk:tx:{first}", f"tk:tt:{first}:{grid}", f"tk:tc:{first}:{community}"):
            answer = await press(bot, WORKER_A, data, on)
            assert (answer["text"], answer["show_alert"]) == (invalid, True), (
                data, on["message_id"])
    assert len(bot.fake.calls_to("editMessageText")) == edited
    assert bot.fake.messages_in(GROUP.id) == shown
    row = await ticket_row(db, first)
    assert (row.node_id, row.group_chat_id) == (grid, GROUP.id)
    async with db.sessions() as session:
        assert [d.flow for d in (await session.scalars(select(Draft))).all()] == ["resolve"]

    # A real picker still works.
    await press(bot, WORKER_A, f"tk:transfer:{first}", first_card)
    picker = last_sent(bot, GROUP.id).result
    await press(bot, WORKER_A, f"tk:tx:{first}", picker)
    cancelled = bot.fake.last("editMessageText")
    assert cancelled.params["message_id"] == picker["message_id"]
    assert cancelled.result["text"] == t("Transfer of No. {number} cancelled.",
                                         number=row.number)


async def test_worker_names_are_shown_without_control_or_bidi_characters(
        env: BotEnv, db: Database) -> None:
    bot, t = env, t_(env)
    sly = User(200_103, "老\u202e赵", last_name="\n\u2066甲\u0007", language_code="zh-hans")
    await bind(bot, GROUP, GRID)
    ticket_id = await new_ticket(bot)
    message = card(bot, ticket_id, GROUP.id)
    await press(bot, sly, f"tk:claim:{ticket_id}", message)
    assert (await ticket_row(db, ticket_id)).holder_name == "老赵 甲"
    await press(bot, sly, f"tk:resolve:{ticket_id}", message)
    await bot.deliver()
    told = bot.last_text(RESIDENT.id)
    assert t("{role} {name} has taken on {request}.",
             request=t("your report"), role=t("Grid worker"),
             name="老赵 甲") in told
    edited = next(m for m in bot.fake.messages_in(GROUP.id)
                  if m["message_id"] == message["message_id"])
    prompt = last_sent(bot, GROUP.id)
    for text in (told, edited["text"], prompt.params["text"]):
        assert "老赵 甲" in text
        assert not set(text) & set("\u202e\u2066\u0007"), text


class Crash(BaseException):
    """The process dies here: nothing after it runs, not even the update processor's own
    bookkeeping (an Exception would be caught and the update marked as handled)."""


async def test_a_prompt_is_recorded_with_its_update_or_asked_again(
        env: BotEnv, db: Database, monkeypatch) -> None:
    bot = env
    await bind(bot, GROUP, GRID)
    ticket_id = await new_ticket(bot)
    message = card(bot, ticket_id, GROUP.id)
    await press(bot, WORKER_A, f"tk:claim:{ticket_id}", message)
    remember = TicketRepository.remember_message
    crashes = [Crash()]

    async def crashing(self, chat_id, message_id, ticket_id, purpose="relay"):
        if purpose == "resolve_prompt" and crashes:
            raise crashes.pop()
        return await remember(self, chat_id, message_id, ticket_id, purpose)

    monkeypatch.setattr(TicketRepository, "remember_message", crashing)

    def prompts() -> list:
        return [c for c in bot.fake.calls_to("sendMessage") if c.params["chat_id"] == GROUP.id
                and (c.params.get("reply_markup") or {}).get("force_reply")]

    async def recorded() -> tuple[list[Draft], TicketMessage | None, ProcessedUpdate | None]:
        async with db.sessions() as session:
            return ((await session.scalars(select(Draft))).all(),
                    await session.get(TicketMessage, (GROUP.id, prompts()[-1].result[
                        "message_id"])),
                    await session.get(ProcessedUpdate, pressed.update_id))

    # The prompt went out, then the process died before its transaction committed.
    pressed = bot.updates.callback(WORKER_A, f"tk:resolve:{ticket_id}", message)
    with pytest.raises(Crash):
        await bot.send(pressed)
    assert len(prompts()) == 1
    assert await recorded() == ([], None, None)

    # Nothing was recorded, not even the update: Telegram delivers it again and the prompt
    # is asked again, this time with its draft and the update's id in one transaction.
    await bot.send(pressed)
    assert len(prompts()) == 2
    drafts, remembered, processed = await recorded()
    prompt = prompts()[-1].result
    assert [d.data["prompt_id"] for d in drafts] == [prompt["message_id"]]
    assert (remembered.purpose, processed is not None) == ("resolve_prompt", True)

    # Delivered once more after that commit: refused by the press before it asks, no third
    # prompt.
    await bot.send(pressed)
    assert len(prompts()) == 2

    await bot.send(bot.updates.group_text(GROUP, WORKER_A, "已处理完毕", reply_to=prompt))
    assert (await ticket_row(db, ticket_id)).status == "resolved"

