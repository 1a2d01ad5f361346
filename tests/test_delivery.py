"""The outbox sender on real databases, talking to the spec-checked fake Telegram.

Time is fake twice over: the FakeClock is the database's time (not_before, backoffs), the
Monotonic below drives the rate limits; neither moves unless a test says so.
"""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from telegram.warnings import PTBUserWarning

from bot.actions.notifier import Notifier, delivery_notices
from bot.clock import FakeClock
from bot.config import Config
from bot.delivery import OutboxSender, reroute_from_group
from bot.delivery.limits import GLOBAL_AHEAD, RateLimiter
from bot.health import Health
from bot.metrics import Metrics
from bot.runtime import Runtime
from bot.services import tickets
from bot.services.groups import migrated as group_migrated
from bot.startup import prepare
from storage.db import Database
from storage.models import (
    GroupChat,
    OutboxMessage,
    Ticket,
    TicketEvent,
    TicketMessage,
    User,
)
from storage.uow import UnitOfWork
from tests.harness import Flood, make_config
from tests.telegram_fake import BOT_ID, FakeTelegram

GRID = "SFQ-DH-01-G1"
COMMUNITY = "SFQ-DH-01"
DISTRICT = "SFQ"
GRID_GROUP = -1001000000101
DISTRICT_GROUP = -1001000000103
OTHER_GROUP = -1001000000104
RESIDENT = 300_001
OTHER_RESIDENT = 300_002

# PTB's own RetryAfter constructor reads its deprecated int-valued attribute; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*`retry_after` will be of type:telegram.warnings.PTBDeprecationWarning")


class Monotonic:
    """A monotonic clock for the rate limits, and a sleep that moves it instead of waiting."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@dataclass
class Env:
    db: Database
    clock: FakeClock
    config: Config
    fake: FakeTelegram
    bot: Any
    mono: Monotonic = field(default_factory=Monotonic)

    def sender(self, **kwargs: Any) -> OutboxSender:
        return OutboxSender(self.db, self.clock, self.config, self.bot, monotonic=self.mono,
                            sleep=self.mono.sleep, **kwargs)

    def later(self, seconds: float) -> None:
        """Both clocks move on."""
        self.clock.advance(timedelta(seconds=seconds))
        self.mono.advance(seconds)

    async def enqueue(self, chat_id: int, method: str = "sendMessage", *,
                      ticket_id: int | None = None, purpose: str | None = None,
                      **params: Any) -> int:
        async with UnitOfWork(self.db) as uow:
            row = uow.outbox.add(chat_id=chat_id, method=method,
                                 params={"chat_id": chat_id, **params}, now=self.clock.now(),
                                 ticket_id=ticket_id, purpose=purpose)
            await uow.commit()
            return row.id

    async def row(self, row_id: int) -> OutboxMessage:
        async with self.db.sessions() as session:
            return await session.get(OutboxMessage, row_id)

    async def ticket(self, ticket_id: int) -> Ticket:
        async with self.db.sessions() as session:
            return await session.get(Ticket, ticket_id)

    async def bind(self, chat_id: int, code: str, *, is_forum: bool = False,
                   chat_type: str = "supergroup") -> None:
        now = self.clock.now()
        async with UnitOfWork(self.db) as uow:
            node = await uow.nodes.by_code(code)
            uow.groups.add(GroupChat(chat_id=chat_id, title=f"group {code}", chat_type=chat_type,
                                     is_forum=is_forum, active=True, node_id=node.id,
                                     language="zh_Hans", created_at=now, updated_at=now))
            await uow.commit()
        self.fake.add_chat(chat_id, chat_type, title=f"group {code}", is_forum=is_forum)

    async def new_ticket(self, grid: str = GRID, *, group: int | None = None) -> int:
        """A ticket; with ``group``, shown there (as the notifier does when it queues the
        card: only a card for the ticket's own group becomes its card)."""
        async with UnitOfWork(self.db) as uow:
            node = await uow.nodes.by_code(grid)
            report = tickets.NewReport(category=self.config.category("sanitation"),
                                       description="楼道里的垃圾三天没人清理", reporter_id=RESIDENT,
                                       language="zh_Hans", grid_id=node.id)
            ticket = await tickets.create(uow, self.clock, self.config, report)
            ticket.group_chat_id = group
            await uow.commit()
            return ticket.id

    async def update_group(self, chat_id: int, **values: Any) -> None:
        async with UnitOfWork(self.db) as uow:
            group = await uow.groups.get(chat_id)
            for key, value in values.items():
                setattr(group, key, value)
            await uow.commit()

    async def update_ticket(self, ticket_id: int, **values: Any) -> None:
        async with UnitOfWork(self.db) as uow:
            ticket = await uow.tickets.get(ticket_id)
            for key, value in values.items():
                setattr(ticket, key, value)
            await uow.commit()

    async def rows(self, **where: Any) -> list[OutboxMessage]:
        async with self.db.sessions() as session:
            stmt = select(OutboxMessage).filter_by(**where).order_by(OutboxMessage.id)
            return list((await session.scalars(stmt)).all())


@pytest.fixture
async def env(db: Database):
    config = make_config()
    clock = FakeClock()
    await prepare(db, config, clock)  # the demo district
    fake = FakeTelegram()
    bot = fake.bot()
    await bot.initialize()
    yield Env(db, clock, config, fake, bot)
    await bot.shutdown()
    fake.assert_no_violations()


def _texts(fake: FakeTelegram, chat_id: int) -> list[str]:
    return fake.sent_texts(chat_id)


def _calls(fake: FakeTelegram, method: str, chat_id: int) -> list[Any]:
    """Calls to one chat (chats are served concurrently, so only their own order is fixed)."""
    return [c for c in fake.calls_to(method) if c.params.get("chat_id") == chat_id]


# -- sending and recording ---------------------------------------------------------------------


async def test_rows_go_out_in_order_and_what_they_sent_is_recorded(env: Env) -> None:
    await env.bind(GRID_GROUP, GRID, is_forum=True)
    ticket_id = await env.new_ticket(group=GRID_GROUP)
    t = {"ticket_id": ticket_id}
    ids = [
        await env.enqueue(GRID_GROUP, "createForumTopic", name="1123-0001 环境卫生",
                          purpose="topic", **t),
        await env.enqueue(GRID_GROUP, text="<b>1123-0001</b> card", parse_mode="HTML",
                          message_thread_id="$topic",
                          reply_markup={"inline_keyboard": [[{"text": "✋",
                                                              "callback_data": "tk:c:1"}]]},
                          purpose="card", **t),
        await env.enqueue(GRID_GROUP, "sendMediaGroup", message_thread_id="$topic",
                          media=[{"type": "photo", "media": "photo-a"},
                                 {"type": "photo", "media": "photo-b"}],
                          reply_parameters={"message_id": "$card",
                                            "allow_sending_without_reply": True}, **t),
        await env.enqueue(GRID_GROUP, "sendLocation", latitude=31.2, longitude=121.4,
                          message_thread_id="$topic",
                          reply_parameters={"message_id": "$card"}, **t),
        await env.enqueue(GRID_GROUP, "editMessageText", message_id="$card",
                          text="<b>1123-0001</b> claimed", parse_mode="HTML",
                          purpose="card_edit", **t),
        await env.enqueue(RESIDENT, text="已受理", **t),
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await env.sender().drain()
    assert not [w for w in caught if issubclass(w.category, PTBUserWarning)]

    in_group = [c.method for c in env.fake.calls if c.params.get("chat_id") == GRID_GROUP]
    # Before the group's first topic the bot asks whether it may create topics there.
    assert in_group == ["getChatMember", "createForumTopic", "sendMessage", "sendMediaGroup",
                        "sendLocation", "editMessageText"]
    ticket = await env.ticket(ticket_id)
    topic = env.fake.calls_to("createForumTopic")[0].result["message_thread_id"]
    card = _calls(env.fake, "sendMessage", GRID_GROUP)[0].result["message_id"]
    assert (ticket.topic_id, ticket.card_message_id, ticket.group_chat_id) == (
        topic, card, GRID_GROUP)
    assert _calls(env.fake, "sendMessage", GRID_GROUP)[0].params["message_thread_id"] == topic
    for method in ("sendMediaGroup", "sendLocation"):
        params = env.fake.calls_to(method)[0].params
        assert params["reply_parameters"]["message_id"] == card
        assert params["message_thread_id"] == topic
    assert env.fake.calls_to("editMessageText")[0].params["message_id"] == card
    assert _texts(env.fake, RESIDENT) == ["已受理"]

    for row_id in ids:
        row = await env.row(row_id)
        assert (row.status, row.attempts, row.last_error) == ("sent", 0, None)
        assert row.sent_at == env.clock.now()
    async with env.db.sessions() as session:
        remembered = {(m.chat_id, m.message_id): m.purpose
                      for m in await session.scalars(select(TicketMessage))}
    album = [m["message_id"] for m in env.fake.calls_to("sendMediaGroup")[0].result]
    location = env.fake.calls_to("sendLocation")[0].result["message_id"]
    resident_message = _calls(env.fake, "sendMessage", RESIDENT)[0].result["message_id"]
    assert remembered == {
        (GRID_GROUP, card): "card",
        **{(GRID_GROUP, m): "relay" for m in [*album, location]},
        (RESIDENT, resident_message): "relay",
    }


async def test_topic_is_dropped_without_one_and_rows_without_ticket_just_go(env: Env) -> None:
    await env.bind(GRID_GROUP, GRID)
    ticket_id = await env.new_ticket(group=GRID_GROUP)
    await env.enqueue(GRID_GROUP, text="card", purpose="card", ticket_id=ticket_id)
    await env.enqueue(GRID_GROUP, text="note", message_thread_id="$topic",
                      ticket_id=ticket_id)
    await env.enqueue(OTHER_RESIDENT, text="digest")
    await env.sender().drain()
    note = _calls(env.fake, "sendMessage", GRID_GROUP)[1]
    assert note.params == {"chat_id": GRID_GROUP, "text": "note"}
    assert _texts(env.fake, OTHER_RESIDENT) == ["digest"]
    async with env.db.sessions() as session:
        assert await session.scalar(select(TicketMessage).where(
            TicketMessage.chat_id == OTHER_RESIDENT)) is None


async def test_a_card_elsewhere_is_waited_for_and_given_up_when_it_failed(env: Env) -> None:
    await env.bind(GRID_GROUP, GRID)
    first, second = await env.new_ticket(), await env.new_ticket()
    sender = env.sender()
    cards = [await env.enqueue(GRID_GROUP, text=f"card {ticket_id}", purpose="card",
                               ticket_id=ticket_id) for ticket_id in (first, second)]
    async with UnitOfWork(env.db) as uow:  # as the notifier does when it queues a card
        for ticket_id in (first, second):
            (await uow.tickets.get(ticket_id)).group_chat_id = GRID_GROUP
        for row_id in cards:  # the cards are held up for a moment (say, a backoff)
            (await uow.outbox.get(row_id)).not_before = env.clock.now() + timedelta(seconds=1)
        await uow.commit()
    # Showing each card to its resident needs the card's message id.
    copies = [await env.enqueue(user, "copyMessage", from_chat_id=GRID_GROUP,
                                message_id="$card", ticket_id=ticket_id)
              for user, ticket_id in ((RESIDENT, first), (OTHER_RESIDENT, second))]
    await sender.run_once()
    assert env.fake.calls_to("copyMessage") == []
    for row_id in copies:
        row = await env.row(row_id)
        assert (row.status, row.attempts) == ("pending", 0)
        assert row.not_before == env.clock.now() + timedelta(seconds=2)

    env.fake.fail("sendMessage", chat_id=GRID_GROUP, error_code=400,
                  description="Bad Request: message is too long")  # the first card fails
    for _ in range(3):
        env.later(2)
        await sender.drain()
    card = (await env.ticket(second)).card_message_id
    assert card is not None
    [copy] = env.fake.calls_to("copyMessage")
    assert copy.params == {"chat_id": OTHER_RESIDENT, "from_chat_id": GRID_GROUP,
                           "message_id": card}
    assert (await env.row(copies[1])).status == "sent"
    failed = await env.row(copies[0])
    assert (failed.status, failed.last_error) == ("failed", "the ticket's card is not in that chat")


async def test_a_reply_to_a_missing_card_goes_without_it_but_an_edit_of_it_fails(
        env: Env) -> None:
    await env.bind(GRID_GROUP, GRID)
    ticket_id = await env.new_ticket(group=GRID_GROUP)  # its card failed: none, none coming
    t = {"ticket_id": ticket_id}
    note = await env.enqueue(GRID_GROUP, text="note", message_thread_id="$topic",
                             reply_parameters={"message_id": "$card",
                                               "allow_sending_without_reply": True},
                             purpose="relay", **t)
    photo = await env.enqueue(GRID_GROUP, "sendPhoto", photo="photo-a",
                              reply_parameters={"message_id": "$card"}, purpose="card_media",
                              **t)
    edit = await env.enqueue(GRID_GROUP, "editMessageText", message_id="$card", text="x",
                             purpose="card_edit", **t)
    copy = await env.enqueue(RESIDENT, "copyMessage", from_chat_id=GRID_GROUP,
                             message_id="$card", **t)
    await env.sender().drain()
    assert _calls(env.fake, "sendMessage", GRID_GROUP)[0].params == {
        "chat_id": GRID_GROUP, "text": "note"}
    assert env.fake.calls_to("sendPhoto")[0].params == {"chat_id": GRID_GROUP,
                                                         "photo": "photo-a"}
    assert [(await env.row(i)).status for i in (note, photo)] == ["sent", "sent"]
    for row_id in (edit, copy):
        row = await env.row(row_id)
        assert (row.status, row.last_error) == ("failed", "the ticket's card is not in that chat")
    assert env.fake.calls_to("editMessageText") == env.fake.calls_to("copyMessage") == []


BUTTONS = {"inline_keyboard": [[{"text": "✋", "callback_data": "tk:claim:1"}]]}


async def test_a_late_card_or_topic_for_a_group_the_ticket_left_changes_nothing(
        env: Env) -> None:
    await env.bind(GRID_GROUP, GRID, is_forum=True)
    await env.bind(DISTRICT_GROUP, DISTRICT)
    ticket_id = await env.new_ticket(group=DISTRICT_GROUP)  # it went on to the district
    t = {"ticket_id": ticket_id}
    await env.enqueue(GRID_GROUP, "createForumTopic", name="1123-0001", purpose="topic", **t)
    await env.enqueue(GRID_GROUP, text="late card", reply_markup=BUTTONS, purpose="card", **t)
    await env.sender().drain()

    ticket = await env.ticket(ticket_id)
    assert (ticket.group_chat_id, ticket.card_message_id, ticket.topic_id) == (
        DISTRICT_GROUP, None, None)
    late = _calls(env.fake, "sendMessage", GRID_GROUP)[0].result["message_id"]
    topic = env.fake.calls_to("createForumTopic")[0].result["message_thread_id"]
    # The late card keeps its text and loses its buttons; the topic is closed.
    [strip] = env.fake.calls_to("editMessageReplyMarkup")
    assert strip.params == {"chat_id": GRID_GROUP, "message_id": late,
                            "reply_markup": {"inline_keyboard": []}}
    shown = env.fake.server.messages[(GRID_GROUP, late)]
    assert shown["text"] == "late card" and not any(
        shown.get("reply_markup", {}).get("inline_keyboard", []))
    [close] = env.fake.calls_to("closeForumTopic")
    assert close.params == {"chat_id": GRID_GROUP, "message_thread_id": topic}
    async with env.db.sessions() as session:  # a reply to it is answered "moved on"
        link = await session.get(TicketMessage, (GRID_GROUP, late))
    assert (link.ticket_id, link.purpose) == (ticket_id, "card")

    # A second card for the group the ticket is in does not replace the first one either.
    await env.enqueue(DISTRICT_GROUP, text="card", reply_markup=BUTTONS, purpose="card", **t)
    await env.enqueue(DISTRICT_GROUP, text="card again", reply_markup=BUTTONS, purpose="card",
                      **t)
    await env.sender().drain()
    first, second = (c.result["message_id"]
                     for c in _calls(env.fake, "sendMessage", DISTRICT_GROUP))
    assert (await env.ticket(ticket_id)).card_message_id == first
    assert env.fake.calls_to("editMessageReplyMarkup")[-1].params["message_id"] == second


async def test_a_card_under_way_when_its_ticket_moved_is_recorded_but_not_adopted(
        env: Env) -> None:
    await env.bind(GRID_GROUP, GRID)
    await env.bind(DISTRICT_GROUP, DISTRICT)
    ticket_id = await env.new_ticket(group=GRID_GROUP)
    card = await env.enqueue(GRID_GROUP, text="card", reply_markup=BUTTONS, purpose="card",
                             ticket_id=ticket_id)
    server = env.fake.server
    original = server.call

    async def call(method, params, uploads):
        if method == "sendMessage" and params.get("chat_id") == GRID_GROUP:
            server.call = original
            # Meanwhile a worker escalates the ticket (as Notifier.post_card does).
            async with UnitOfWork(env.db) as uow:
                ticket = await uow.tickets.get(ticket_id)
                await uow.outbox.leave_chat(ticket_id, GRID_GROUP)
                ticket.group_chat_id = DISTRICT_GROUP
                await uow.commit()
        return await original(method, params, uploads)

    server.call = call
    await env.sender().drain()
    row = await env.row(card)
    assert (row.status, row.last_error) == ("sent", None)  # it went out after all
    ticket = await env.ticket(ticket_id)
    assert (ticket.group_chat_id, ticket.card_message_id) == (DISTRICT_GROUP, None)
    assert env.fake.calls_to("editMessageReplyMarkup")[0].params["chat_id"] == GRID_GROUP


async def test_a_card_does_not_wait_behind_the_updates_that_wait_for_their_turn(env: Env) -> None:
    """With every turn at the database taken and twenty updates waiting (a flood of
    residents), the sender's claim and its row's transactions go first: the card is sent
    after at most two of the updates had their turn, not after all twenty."""
    await env.bind(GRID_GROUP, GRID)
    row_id = await env.enqueue(GRID_GROUP, text="<b>1123-0001</b> card", parse_mode="HTML")

    def label(n: int) -> str:
        return f"update {n}, {len(_calls(env.fake, 'sendMessage', GRID_GROUP))} sent"

    async with Flood(env.db, waiting=20, label=label) as flood:
        sending = asyncio.create_task(env.sender().run_once())
        await asyncio.sleep(0)  # the sender queues too, last
        flood.let_one_go()
        assert await sending == 1
    before = [entry for entry in flood.order if entry.endswith(", 0 sent")]
    assert len(before) <= 2, flood.order
    assert (await env.row(row_id)).status == "sent"


async def test_a_kept_answer_does_not_wait_behind_the_updates_that_wait_for_their_turn(
        env: Env) -> None:
    """A ticket's number, kept by the submit and sent straight after its commit, finishes an
    update already under way: with every turn taken and twenty updates waiting, its two
    transactions go first (the resident waited three turns for it where a step waits one)."""
    lease = env.clock.now() + timedelta(seconds=30)
    row_id = await env.enqueue(RESIDENT, text="<b>1123-0001</b>", parse_mode="HTML")
    async with UnitOfWork(env.db) as uow:
        await uow.outbox.mark(row_id, not_before=lease)  # leased to the door, as kept
        await uow.commit()

    def label(n: int) -> str:
        return f"update {n}, {len(_texts(env.fake, RESIDENT))} sent"

    async with Flood(env.db, waiting=20, label=label) as flood:
        sending = asyncio.create_task(env.sender().send_held(row_id, RESIDENT, lease))
        await asyncio.sleep(0)  # it queues too, last
        flood.let_one_go()
        await sending
    before = [entry for entry in flood.order if entry.endswith(", 0 sent")]
    assert len(before) <= 2, flood.order
    assert (await env.row(row_id)).status == "sent"


# -- faults ------------------------------------------------------------------------------------


async def test_retry_after_waits_and_nothing_in_that_chat_overtakes(env: Env) -> None:
    sender = env.sender()
    ids = [await env.enqueue(RESIDENT, text=f"m{i}") for i in range(3)]
    await env.enqueue(OTHER_RESIDENT, text="other")
    env.fake.fail("sendMessage", chat_id=RESIDENT, retry_after=5)

    assert await sender.run_once() == 2  # the 429 and the other chat
    assert _texts(env.fake, OTHER_RESIDENT) == ["other"]
    first = await env.row(ids[0])
    assert (first.status, first.attempts) == ("pending", 0)
    assert first.not_before == env.clock.now() + timedelta(seconds=5)
    env.later(4)
    await sender.drain()
    assert _texts(env.fake, RESIDENT) == []

    env.later(1)
    await sender.drain()
    assert _texts(env.fake, RESIDENT) == ["m0", "m1", "m2"]
    assert len(env.fake.calls_to("sendMessage")) == 5  # 429, other, m0, m1, m2
    assert [(await env.row(i)).status for i in ids] == ["sent"] * 3


async def test_retry_after_in_two_chats_at_once_pauses_everything(env: Env) -> None:
    sender = env.sender()
    for chat_id in (RESIDENT, OTHER_RESIDENT):
        await env.enqueue(chat_id, text="x")
        env.fake.fail("sendMessage", chat_id=chat_id, retry_after=3)
    await env.enqueue(300_003, text="third")
    await sender.run_once()
    await env.enqueue(300_004, text="fourth")
    env.clock.advance(timedelta(seconds=3))  # the database says go, the pause says wait
    assert await sender.run_once() == 0
    env.mono.advance(3)
    await sender.drain()
    assert all(_texts(env.fake, c) for c in (RESIDENT, OTHER_RESIDENT, 300_003, 300_004))


async def test_timed_out_is_retried_with_backoff_and_nothing_overtakes(env: Env) -> None:
    env.config = make_config(delivery={"retry_backoffs": ["5s", "30s"]})
    sender = env.sender()
    retried = await env.enqueue(RESIDENT, text="retried")
    behind = await env.enqueue(RESIDENT, text="behind")
    env.fake.fail("sendMessage", chat_id=RESIDENT, timeout=True)
    await sender.drain()
    row = await env.row(retried)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "TimedOut: Timed out")
    assert (await env.row(behind)).status == "pending"  # does not overtake
    env.later(5)
    await sender.drain()
    assert _texts(env.fake, RESIDENT) == ["retried", "behind"]
    assert (await env.row(retried)).status == "sent"


async def settle(env: Env, sender: OutboxSender, row_id: int) -> list[float]:
    """Drain, then move both clocks on to the row's next try, until it is sent or failed;
    the waits it went through, in seconds."""
    waits: list[float] = []
    for _ in range(200):
        await sender.drain()
        row = await env.row(row_id)
        if row.status != "pending":
            return waits
        wait = (row.not_before - env.clock.now()).total_seconds()
        waits.append(wait)
        env.later(wait)
    raise AssertionError(f"row {row_id} still pending after {waits}")


async def test_a_failing_row_is_tried_past_the_backoffs_with_growing_waits(env: Env) -> None:
    # The demo's backoffs: six Bad Gateways in a row used to give the row up after four.
    env.config = make_config(delivery={"retry_backoffs": ["2s", "10s", "30s"]})
    sender = env.sender()
    row_id = await env.enqueue(OTHER_RESIDENT, text="arrives")
    after = await env.enqueue(OTHER_RESIDENT, text="after")
    env.fake.fail("sendMessage", chat_id=OTHER_RESIDENT, error_code=502, times=6)
    assert await settle(env, sender, row_id) == [2, 10, 30, 60, 120, 240]
    row = await env.row(row_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 6, None)
    assert _texts(env.fake, OTHER_RESIDENT) == ["arrives", "after"]
    assert (await env.row(after)).status == "sent"
    # Doubling stops at half an hour, or at the last backoff when that is longer.
    from bot.delivery.rows import backoff
    minute = timedelta(minutes=1)
    assert [backoff([minute], n) for n in (1, 2, 5, 6, 100)] == [
        minute, 2 * minute, 16 * minute, 30 * minute, 30 * minute]
    assert backoff([timedelta(hours=1)], 3) == timedelta(hours=1)


async def test_a_call_that_keeps_timing_out_is_not_repeated_past_the_backoffs(env: Env) -> None:
    # Each timed-out try may have arrived: trying for a day could show it fifty times.
    env.config = make_config(delivery={"retry_backoffs": ["2s", "10s"]})
    metrics = Metrics()
    sender = env.sender(metrics=metrics)
    row_id = await env.enqueue(RESIDENT, text="maybe")
    env.fake.fail("sendMessage", chat_id=RESIDENT, timeout=True, delivered=True, times=None)
    assert await settle(env, sender, row_id) == [2, 10]
    row = await env.row(row_id)
    assert (row.status, row.attempts) == ("failed", 3)
    assert _texts(env.fake, RESIDENT) == ["maybe"] * 3
    assert metrics.outbox_given_up._value.get() == 1


async def test_a_card_is_kept_trying_visibly_then_given_up_and_the_district_is_told(
        env: Env, catalogs) -> None:
    env.config = make_config(delivery={"retry_backoffs": ["2s", "10s", "30s"],
                                       "give_up_after": "30m"})
    await env.bind(GRID_GROUP, GRID)
    await env.bind(DISTRICT_GROUP, DISTRICT)
    rt = Runtime(config=env.config, db=env.db, clock=env.clock, catalogs=catalogs)
    metrics = Metrics()
    sender = env.sender(metrics=metrics, notices=delivery_notices(rt))
    ticket_id = await env.new_ticket(group=GRID_GROUP)
    card = await env.enqueue(GRID_GROUP, text="card", purpose="card", ticket_id=ticket_id)
    env.fake.fail("sendMessage", chat_id=GRID_GROUP, error_code=502, times=None)
    await sender.drain()
    env.later(2)
    await sender.drain()

    # While it waits, /readyz and /metrics show it.
    env.later(1)
    await metrics.refresh(env.db, env.clock.now())
    assert metrics.outbox_retrying._value.get() == 1
    assert metrics.outbox_oldest_retrying._value.get() == 3
    _, checks = await Health(env.db, env.clock, env.config).readiness()
    assert checks["outbox"] == {"ok": True, "backlog": 1, "retrying": 1,
                                "oldest_retrying_seconds": 3}

    await settle(env, sender, card)
    row = await env.row(card)
    assert (row.status, row.last_error) == ("failed", "NetworkError: Bad Gateway")
    assert env.clock.now() - row.created_at >= timedelta(minutes=30)
    assert metrics.outbox_given_up._value.get() == 1
    await sender.drain()
    ticket = await env.ticket(ticket_id)
    t = catalogs["zh_Hans"]
    [told] = _calls(env.fake, "sendMessage", DISTRICT_GROUP)
    async with UnitOfWork(env.db) as uow:
        grid = await uow.nodes.by_code(GRID)
    assert told.params["text"] == t(
        "⚠️ The card of <b>No. {number}</b> could not be delivered to the group of "
        "{place}. Please make sure the ticket is handled.", number=ticket.number,
        place=grid.display_name("zh_Hans"))
    assert "垃圾" not in told.params["text"]  # the report itself is not repeated there
    async with env.db.sessions() as session:
        kinds = (await session.scalars(select(TicketEvent.kind).where(
            TicketEvent.ticket_id == ticket_id))).all()
    assert kinds.count("card_failed") == 1


async def test_a_card_given_up_that_arrived_after_all_is_told_to_the_district_once(
        env: Env, catalogs) -> None:
    await env.bind(GRID_GROUP, GRID)
    await env.bind(DISTRICT_GROUP, DISTRICT)
    rt = Runtime(config=env.config, db=env.db, clock=env.clock, catalogs=catalogs)
    sender, other = (env.sender(notices=delivery_notices(rt)) for _ in range(2))
    ticket_id = await env.new_ticket(group=GRID_GROUP)
    card = await env.enqueue(GRID_GROUP, text="card", reply_markup=BUTTONS, purpose="card",
                             ticket_id=ticket_id)
    server = env.fake.server
    original = server.call

    async def call(method, params, uploads):
        if method == "sendMessage" and params.get("chat_id") == GRID_GROUP:
            server.call = original
            # The call takes longer than its lease: another instance takes the row over,
            # is refused and gives up on it, so the district centre hears the card is lost.
            env.later(env.config.delivery.lease.total_seconds() + 1)
            env.fake.fail("sendMessage", chat_id=GRID_GROUP, error_code=400,
                          description="Bad Request: can't parse entities")
            await other.drain()
            assert (await env.row(card)).status == "failed"
        return await original(method, params, uploads)

    server.call = call
    await sender.drain()  # ... and then the first call comes back: it did arrive
    await sender.drain()
    ticket = await env.ticket(ticket_id)
    assert ticket.card_message_id is not None
    t = catalogs["zh_Hans"]
    async with UnitOfWork(env.db) as uow:
        place = (await uow.nodes.by_code(GRID)).display_name("zh_Hans")
    assert [c.params["text"] for c in _calls(env.fake, "sendMessage", DISTRICT_GROUP)] == [
        t("⚠️ The card of <b>No. {number}</b> could not be delivered to the group of "
          "{place}. Please make sure the ticket is handled.", number=ticket.number,
          place=place),
        t("✅ The card of <b>No. {number}</b> did reach the group of {place} after all.",
          number=ticket.number, place=place)]
    async with env.db.sessions() as session:
        kinds = (await session.scalars(select(TicketEvent.kind).where(
            TicketEvent.ticket_id == ticket_id))).all()
    assert (kinds.count("card_failed"), kinds.count("card_arrived")) == (1, 1)


async def test_a_row_about_a_ticket_closed_meanwhile_stops(env: Env) -> None:
    env.config = make_config(delivery={"retry_backoffs": ["5s"]})
    await env.bind(DISTRICT_GROUP, DISTRICT)
    sender = env.sender()
    ticket_id = await env.new_ticket(group=GRID_GROUP)
    card = await env.enqueue(GRID_GROUP, text="card", purpose="card", ticket_id=ticket_id)
    env.fake.fail("sendMessage", chat_id=GRID_GROUP, error_code=502, times=None)
    await sender.drain()
    env.later(1)
    await env.update_ticket(ticket_id, status="withdrawn", closed_at=env.clock.now())
    # Said as it closes: still worth trying.
    goodbye = await env.enqueue(GRID_GROUP, text="closed", ticket_id=ticket_id)
    env.later(5)
    await sender.drain()
    assert ((await env.row(card)).status, (await env.row(card)).attempts) == ("failed", 2)
    assert ((await env.row(goodbye)).status, (await env.row(goodbye)).attempts) == (
        "pending", 1)
    assert _calls(env.fake, "sendMessage", DISTRICT_GROUP) == []  # nothing to report


# -- forum topics ------------------------------------------------------------------------------


async def test_where_the_bot_may_not_create_topics_it_asks_once_and_uses_general(
        env: Env, catalogs) -> None:
    await env.bind(GRID_GROUP, GRID, is_forum=True)
    env.fake.set_member(GRID_GROUP, BOT_ID, "member")  # a plain member of a forum
    rt = Runtime(config=env.config, db=env.db, clock=env.clock, catalogs=catalogs)
    sender = env.sender()
    ids = []
    for _ in range(3):
        ticket_id = await env.new_ticket()
        async with UnitOfWork(env.db) as uow:
            await Notifier(rt, uow).post_card(await uow.tickets.get(ticket_id))
            await uow.commit()
        ids.append(ticket_id)
        await sender.drain()
    assert env.fake.calls_to("createForumTopic") == []  # no refused call per ticket
    asked = [c.params for c in env.fake.calls_to("getChatMember")]
    assert asked == [{"chat_id": GRID_GROUP, "user_id": BOT_ID}]
    cards = _calls(env.fake, "sendMessage", GRID_GROUP)
    assert len(cards) == 3 and all("message_thread_id" not in c.params for c in cards)
    for ticket_id in ids:
        ticket = await env.ticket(ticket_id)
        assert ticket.topic_id is None and ticket.card_message_id is not None
    async with env.db.sessions() as session:
        assert (await session.get(GroupChat, GRID_GROUP)).can_manage_topics is False
    # Rights taken away without the news reaching the bot: learnt from the refusal, once.
    await env.update_group(GRID_GROUP, can_manage_topics=True)
    for _ in range(2):
        ticket_id = await env.new_ticket()
        async with UnitOfWork(env.db) as uow:
            await Notifier(rt, uow).post_card(await uow.tickets.get(ticket_id))
            await uow.commit()
        await sender.drain()
    refused = env.fake.calls_to("createForumTopic")
    assert len(refused) == 1 and "not enough rights" in refused[0].error["description"]
    assert len(_calls(env.fake, "sendMessage", GRID_GROUP)) == 5


async def test_an_administrator_that_may_manage_topics_gets_one_per_ticket(
        env: Env, catalogs) -> None:
    await env.bind(GRID_GROUP, GRID, is_forum=True)
    env.fake.set_member(GRID_GROUP, BOT_ID, "administrator")
    rt = Runtime(config=env.config, db=env.db, clock=env.clock, catalogs=catalogs)
    sender = env.sender()
    for _ in range(2):
        ticket_id = await env.new_ticket()
        async with UnitOfWork(env.db) as uow:
            await Notifier(rt, uow).post_card(await uow.tickets.get(ticket_id))
            await uow.commit()
        await sender.drain()
        assert (await env.ticket(ticket_id)).topic_id is not None
    assert len(env.fake.calls_to("getChatMember")) == 1
    assert len(env.fake.calls_to("createForumTopic")) == 2


async def test_a_send_that_timed_out_after_delivery_is_sent_again(env: Env) -> None:
    # The one accepted duplicate: Telegram got it, the answer was lost.
    env.fake.fail("sendMessage", timeout=True, delivered=True)
    row_id = await env.enqueue(RESIDENT, text="twice")
    metrics = Metrics()
    sender = env.sender(metrics=metrics)
    await sender.drain()
    env.later(5)
    await sender.drain()
    assert _texts(env.fake, RESIDENT) == ["twice", "twice"]
    assert (await env.row(row_id)).status == "sent"
    assert metrics.outbox_resent._value.get() == 1
    assert metrics.outbox_failures.labels("TimedOut")._value.get() == 1


async def test_a_retry_of_a_send_that_never_reached_telegram_is_no_repeat(env: Env) -> None:
    env.fake.fail("sendMessage", error_code=502, times=1)
    row_id = await env.enqueue(RESIDENT, text="once")
    metrics = Metrics()
    sender = env.sender(metrics=metrics)
    await sender.drain()
    assert (await env.row(row_id)).sent_at is None
    env.later(5)
    await sender.drain()
    assert _texts(env.fake, RESIDENT) == ["once"]
    assert metrics.outbox_resent._value.get() == 0
    assert metrics.outbox_failures.labels("NetworkError")._value.get() == 1


async def test_a_user_who_blocked_the_bot_is_unreachable_and_their_rows_fail(env: Env) -> None:
    ids = [await env.enqueue(RESIDENT, text=f"m{i}") for i in range(3)]
    other = await env.enqueue(OTHER_RESIDENT, text="still here")
    env.fake.block(RESIDENT)
    await env.sender().drain()
    assert len(env.fake.calls_to("sendMessage")) == 2  # one try for the blocked chat
    for row_id in ids:
        row = await env.row(row_id)
        assert row.status == "failed"
        assert row.last_error == "Forbidden: Forbidden: bot was blocked by the user"
    assert (await env.row(other)).status == "sent"
    async with env.db.sessions() as session:
        user = await session.get(User, RESIDENT)
    assert user is not None and user.unreachable


async def test_a_group_the_bot_left_is_inactive_and_its_tickets_go_up(env: Env) -> None:
    await env.bind(GRID_GROUP, GRID)
    await env.bind(DISTRICT_GROUP, DISTRICT)
    sender = env.sender()
    open_id = await env.new_ticket(group=GRID_GROUP)
    done_id = await env.new_ticket(group=GRID_GROUP)
    for ticket_id in (open_id, done_id):
        await env.enqueue(GRID_GROUP, text=f"card {ticket_id}", purpose="card",
                          ticket_id=ticket_id)
    await sender.drain()
    async with UnitOfWork(env.db) as uow:
        (await uow.tickets.get(done_id)).status = "closed"
        await uow.commit()

    env.fake.remove_bot_from(GRID_GROUP)
    # A resident's follow-up (the very row that meets the Forbidden), a card edit, and a
    # message about no ticket.
    said = await env.enqueue(GRID_GROUP, text="住户补充：还有异味", ticket_id=open_id,
                             purpose="relay", message_thread_id="$topic",
                             reply_parameters={"message_id": "$card",
                                               "allow_sending_without_reply": True})
    edit = await env.enqueue(GRID_GROUP, "editMessageText", message_id="$card", text="claimed",
                             ticket_id=open_id, purpose="card_edit")
    other = await env.enqueue(GRID_GROUP, text="digest")
    env.later(1)
    await sender.drain()

    async with env.db.sessions() as session:
        group = await session.get(GroupChat, GRID_GROUP)
        events = (await session.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == open_id, TicketEvent.kind == "rerouted"))).all()
    assert not group.active and group.node_id is not None  # still bound on paper
    assert (await env.row(other)).last_error.startswith("Forbidden:")
    assert (await env.row(edit)).status == "failed"  # the old card's edit is stale
    assert (await env.row(said)).status == "failed"  # ... and went again, to the district
    assert [(e.actor_role, e.data) for e in events] == [
        ("system", {"from_group": GRID_GROUP, "to_node": DISTRICT})]
    ticket = await env.ticket(open_id)
    note, follow_up = _calls(env.fake, "sendMessage", DISTRICT_GROUP)
    assert note.params["parse_mode"] == "HTML"
    assert f"<b>{ticket.number}</b>" in note.params["text"]
    assert (ticket.group_chat_id, ticket.card_message_id, ticket.topic_id) == (
        DISTRICT_GROUP, note.result["message_id"], None)
    assert follow_up.params == {"chat_id": DISTRICT_GROUP, "text": "住户补充：还有异味",
                                "reply_parameters": {"message_id": ticket.card_message_id,
                                                     "allow_sending_without_reply": True}}
    [moved] = await env.rows(chat_id=DISTRICT_GROUP, purpose="relay")
    assert (moved.status, moved.ticket_id) == ("sent", open_id)
    assert (await env.ticket(done_id)).group_chat_id == GRID_GROUP  # history stays


@pytest.mark.parametrize("description", [
    "Bad Request: chat not found",
    "Bad Request: not enough rights to send text messages to the chat",
    "Bad Request: CHAT_WRITE_FORBIDDEN",
])
async def test_a_group_the_bot_cannot_post_in_is_gone_like_after_a_forbidden(
        env: Env, description: str) -> None:
    await env.bind(GRID_GROUP, GRID)
    await env.bind(DISTRICT_GROUP, DISTRICT)
    ticket_id = await env.new_ticket(group=GRID_GROUP)
    await env.update_ticket(ticket_id, card_message_id=7)
    # PTB capitalises the description of a BadRequest ("Chat not found").
    env.fake.fail(None, chat_id=GRID_GROUP, times=None, error_code=400,
                  description=description)
    said = await env.enqueue(GRID_GROUP, text="住户补充", ticket_id=ticket_id, purpose="relay",
                             reply_parameters={"message_id": "$card",
                                               "allow_sending_without_reply": True})
    later = await env.enqueue(GRID_GROUP, text="digest")
    await env.sender().drain()
    async with env.db.sessions() as session:
        assert not (await session.get(GroupChat, GRID_GROUP)).active
    assert (await env.ticket(ticket_id)).group_chat_id == DISTRICT_GROUP
    assert (await env.row(said)).status == "failed"
    assert (await env.row(later)).status == "failed"
    assert len(_calls(env.fake, "sendMessage", GRID_GROUP)) == 1
    assert _texts(env.fake, DISTRICT_GROUP)[1:] == ["住户补充"]


async def test_a_restriction_of_one_kind_of_message_fails_only_that_row(env: Env) -> None:
    await env.bind(GRID_GROUP, GRID)
    env.fake.fail("sendPhoto", chat_id=GRID_GROUP, error_code=400,
                  description="Bad Request: not enough rights to send photos to the chat")
    env.fake.fail("sendMessage", chat_id=RESIDENT, error_code=400,
                  description="Bad Request: chat not found")  # a person, not a group
    env.fake.fail("copyMessage", chat_id=GRID_GROUP, error_code=400,
                  description="Bad Request: chat not found")  # the chat copied from, maybe
    photo = await env.enqueue(GRID_GROUP, "sendPhoto", photo="photo-a")
    copy = await env.enqueue(GRID_GROUP, "copyMessage", from_chat_id=OTHER_RESIDENT,
                             message_id=5)
    text = await env.enqueue(GRID_GROUP, text="still here")
    private = await env.enqueue(RESIDENT, text="hello")
    await env.sender().drain()
    assert [(await env.row(i)).status for i in (photo, copy)] == ["failed", "failed"]
    assert [(await env.row(i)).status for i in (text, private)] == ["sent", "failed"]
    async with env.db.sessions() as session:
        assert (await session.get(GroupChat, GRID_GROUP)).active
        user = await session.get(User, RESIDENT)
    assert user is None or not user.unreachable


async def test_reroute_goes_to_the_nearest_active_ancestor_through_post_card(env: Env) -> None:
    await env.bind(GRID_GROUP, GRID)
    await env.bind(-1001000000102, COMMUNITY)
    await env.bind(DISTRICT_GROUP, DISTRICT)
    ticket_id = await env.new_ticket()
    posted: list[tuple[int, int, str]] = []

    async def post_card(uow: UnitOfWork, ticket: Ticket, group: GroupChat, why: str) -> None:
        posted.append((ticket.id, group.chat_id, why))

    async with UnitOfWork(env.db) as uow:
        ticket = await uow.tickets.get(ticket_id)
        ticket.group_chat_id, ticket.card_message_id, ticket.topic_id = GRID_GROUP, 7, 5
        (await uow.groups.get(GRID_GROUP)).active = False
        moved = await reroute_from_group(uow, env.clock, env.config, GRID_GROUP,
                                         post_card=post_card)
        await uow.commit()
    assert [t.id for t in moved] == [ticket_id]
    assert posted == [(ticket_id, -1001000000102, "rerouted")]
    ticket = await env.ticket(ticket_id)
    assert (ticket.group_chat_id, ticket.card_message_id, ticket.topic_id) == (None, None, None)
    async with UnitOfWork(env.db) as uow:
        event = (await uow.tickets.events(ticket_id))[-1]
    assert (event.kind, event.data["to_node"]) == ("rerouted", COMMUNITY)


async def test_a_migrated_group_is_rebound_and_rows_follow_it(env: Env) -> None:
    old, new = -4_001, -1_001_000_004_001
    await env.bind(old, GRID, chat_type="group")
    ticket_id = await env.new_ticket(group=old)  # shown there, though its card never went out
    env.fake.migrate_chat(old, new)
    first = await env.enqueue(old, text="first", ticket_id=ticket_id)
    second = await env.enqueue(old, text="second")
    metrics = Metrics()
    await env.sender(metrics=metrics).drain()
    # Telegram delivered nothing to the old id: going to the new one is no repeat.
    assert metrics.outbox_resent._value.get() == 0
    assert metrics.outbox_failures.labels("ChatMigrated")._value.get() == 1

    # A ticket with no card anywhere gets one (the stand-in note by default), behind what
    # was waiting.
    ticket = await env.ticket(ticket_id)
    assert _texts(env.fake, new)[:2] == ["first", "second"]
    assert [c.params["chat_id"] for c in env.fake.calls_to("sendMessage")] == [old, new, new,
                                                                                 new]
    assert ticket.number in _texts(env.fake, new)[2]
    for row_id in (first, second):
        row = await env.row(row_id)
        assert (row.status, row.chat_id, row.params["chat_id"]) == ("sent", new, new)
    async with env.db.sessions() as session:
        old_row, new_row = await session.get(GroupChat, old), await session.get(GroupChat, new)
    assert not old_row.active and old_row.node_id is None
    assert new_row.active and new_row.node_id is not None and new_row.chat_type == "supergroup"
    assert ticket.group_chat_id == new
    assert ticket.card_message_id == _calls(env.fake, "sendMessage", new)[2].result[
        "message_id"]


async def test_after_a_migration_cards_are_posted_afresh_in_the_supergroup(env: Env) -> None:
    old, new = -4_002, -1_001_000_004_002
    await env.bind(old, GRID, chat_type="group")
    shown, waiting, closed = [await env.new_ticket(group=old) for _ in range(3)]
    buttons = {"inline_keyboard": [[{"text": "✋", "callback_data": "tk:claim:1"}]]}
    for ticket_id in (shown, closed):
        await env.enqueue(old, text=f"card {ticket_id}", purpose="card", ticket_id=ticket_id,
                          reply_markup=buttons)
    sender = env.sender()
    await sender.drain()
    old_cards = {t: (await env.ticket(t)).card_message_id for t in (shown, closed)}
    await env.update_ticket(closed, status="closed")

    env.fake.migrate_chat(old, new)
    edit = await env.enqueue(old, "editMessageText", message_id="$card", text="claimed",
                             ticket_id=shown, purpose="card_edit")
    said = await env.enqueue(old, text="住户补充", ticket_id=shown, purpose="relay",
                             reply_parameters={"message_id": "$card",
                                               "allow_sending_without_reply": True})
    card = await env.enqueue(old, text=f"card {waiting}", purpose="card", ticket_id=waiting,
                             reply_markup=buttons)
    retire = await env.enqueue(old, "editMessageText", message_id=old_cards[closed],
                               text="moved on")  # an old message, by its id
    env.later(1)
    await sender.drain()

    # The ticket whose card was shown: a fresh card (the stand-in note by default) in the
    # supergroup, its stale edit dropped, the resident's words behind the card, replying.
    ticket = await env.ticket(shown)
    in_new = _calls(env.fake, "sendMessage", new)
    waiting_card, fresh, follow_up = in_new
    assert waiting_card.params["text"] == f"card {waiting}"
    assert ticket.number in fresh.params["text"]
    assert (ticket.group_chat_id, ticket.card_message_id, ticket.topic_id) == (
        new, fresh.result["message_id"], None)
    assert follow_up.params["text"] == "住户补充"
    assert follow_up.params["reply_parameters"]["message_id"] == ticket.card_message_id
    for row_id in (edit, said, retire):
        assert (await env.row(row_id)).status == "failed"
    assert (await env.row(card)).status == "sent"
    # The ticket whose card was on its way: that card, to the new id, is its card.
    waiting_ticket = await env.ticket(waiting)
    assert (waiting_ticket.group_chat_id, waiting_ticket.card_message_id) == (
        new, waiting_card.result["message_id"])
    # The closed ticket stays with the old group, where its ids mean something.
    closed_ticket = await env.ticket(closed)
    assert (closed_ticket.group_chat_id, closed_ticket.card_message_id) == (
        old, old_cards[closed])
    assert [c.params["chat_id"] for c in env.fake.calls_to("editMessageText")] == [old]

    # Hearing the news again (the handlers get it twice) changes nothing.
    before = len(await env.rows())
    async with UnitOfWork(env.db) as uow:
        await group_migrated(uow, env.clock, old_chat_id=old, new_chat_id=new)
        await uow.commit()
    assert len(await env.rows()) == before
    assert (await env.ticket(shown)).card_message_id == ticket.card_message_id


async def test_bad_requests_not_modified_is_sent_missing_message_fails_quietly(
        env: Env) -> None:
    await env.bind(GRID_GROUP, GRID)
    ticket_id = await env.new_ticket(group=GRID_GROUP)
    await env.enqueue(GRID_GROUP, text="same", purpose="card", ticket_id=ticket_id)
    same = await env.enqueue(GRID_GROUP, "editMessageText", message_id="$card", text="same",
                             ticket_id=ticket_id, purpose="card_edit")
    gone = await env.enqueue(GRID_GROUP, "editMessageText", message_id=999, text="x")
    deleted = await env.enqueue(GRID_GROUP, "deleteMessage", message_id=998)
    env.fake.fail("sendMessage", chat_id=RESIDENT, error_code=400,
                  description='Bad Request: can\'t parse entities: Unsupported start tag "secret"')
    bad = await env.enqueue(RESIDENT, text="x")
    await env.sender().drain()

    row = await env.row(same)
    assert (row.status, row.sent_at) == ("sent", env.clock.now())
    for row_id, text in ((gone, "message to edit not found"),
                         (deleted, "message to delete not found")):
        row = await env.row(row_id)
        assert row.status == "failed" and text in row.last_error.lower()
    row = await env.row(bad)
    assert row.status == "failed"
    assert row.last_error == 'BadRequest: Can\'t parse entities: unsupported start tag "…"'


# -- rate limits -------------------------------------------------------------------------------


async def test_a_group_gets_twenty_messages_a_minute(env: Env) -> None:
    sender = env.sender()
    for i in range(25):
        await env.enqueue(GRID_GROUP, text=f"m{i}")
    assert await sender.run_once() == 20
    env.mono.advance(59.9)
    assert await sender.run_once() == 0
    env.mono.advance(0.1)
    assert await sender.run_once() == 5
    assert _texts(env.fake, GRID_GROUP) == [f"m{i}" for i in range(25)]


async def test_drain_gives_up_at_its_deadline_even_when_a_group_must_wait(env: Env) -> None:
    # On shutdown the drain has seconds, and a group's 21st message waits a minute.
    sender = OutboxSender(env.db, env.clock, env.config, env.bot)  # real time
    for i in range(21):
        await env.enqueue(GRID_GROUP, text=f"m{i}")
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError, match="1 outbox rows still due"):
        await sender.drain(timeout=0.5)
    assert asyncio.get_running_loop().time() - started < 5
    assert len(_texts(env.fake, GRID_GROUP)) == 20


async def test_a_stopping_drain_sends_what_was_queued_before_and_no_more(env: Env) -> None:
    before = [await env.enqueue(RESIDENT + i, text="before") for i in range(3)]
    last = before[-1]
    after = await env.enqueue(OTHER_RESIDENT, text="queued by another instance meanwhile")
    await env.sender().drain(up_to=last)
    assert [(await env.row(i)).status for i in before] == ["sent"] * 3
    assert (await env.row(after)).status == "pending"


async def test_drain_sleeps_only_as_long_as_the_limits_require(env: Env) -> None:
    sender = env.sender()
    for i in range(25):
        await env.enqueue(GRID_GROUP, text=f"m{i}")
    start = env.mono.now
    await sender.drain()
    assert len(_texts(env.fake, GRID_GROUP)) == 25
    assert 60 <= env.mono.now - start < 61


async def test_chats_interleave_and_a_backlog_does_not_crowd_others_out(env: Env) -> None:
    sender = env.sender()
    for i in range(3):
        await env.enqueue(RESIDENT, text=f"a{i}")
    for i in range(3):
        await env.enqueue(OTHER_RESIDENT, text=f"b{i}")
    for i in range(60):
        await env.enqueue(GRID_GROUP, text=f"g{i}")
    await env.enqueue(OTHER_GROUP, text="other group")
    seen = []
    for _ in range(3):
        await sender.run_once()
        seen.append((len(_texts(env.fake, RESIDENT)), len(_texts(env.fake, OTHER_RESIDENT))))
        env.mono.advance(1)
    assert seen == [(1, 1), (2, 2), (3, 3)]  # one a second each, side by side
    assert _texts(env.fake, OTHER_GROUP) == ["other group"]
    assert len(_texts(env.fake, GRID_GROUP)) == 20


async def test_the_global_cap_holds(env: Env) -> None:
    made_at = _timed_calls(env)
    sender = env.sender()
    for user in range(40):
        await env.enqueue(400_000 + user, text="hello")
    assert await sender.run_once() == 30
    # Rows are claimed a little ahead of the second's end (the database work is done by
    # then), and their calls wait for it.
    env.mono.advance(1 - GLOBAL_AHEAD - 0.01)
    assert await sender.run_once() == 0
    env.mono.advance(0.01)
    assert await sender.run_once() == 10
    assert [round(t - made_at[0], 3) for t in made_at] == [0] * 30 + [1] * 10


def _timed_calls(env: Env) -> list[float]:
    """The fake monotonic time of each call Telegram gets."""
    made_at: list[float] = []
    call = env.fake.server.call

    async def timed(method, params, uploads):
        made_at.append(env.mono.now)
        return await call(method, params, uploads)

    env.fake.server.call = timed
    return made_at


def test_a_call_counts_from_its_answer() -> None:
    # Telegram counts a call when it arrives: at some moment between its making and its
    # answer, later for one call than for another. Counted from its answer, the 31st call can
    # never arrive within the second of the first.
    mono = Monotonic()
    limits = RateLimiter(make_config().delivery, mono)
    for user in range(30):
        assert limits.reserve(400_000 + user)
        limits.stamp(400_000 + user)
    mono.advance(0.3)  # the way there and back
    assert not limits.reserve(500_000)  # calls under way hold their slots
    for user in range(30):
        limits.answered(400_000 + user)
    mono.advance(0.75)  # a second after the calls were made, not yet after their answers
    assert limits.reserve(500_000)  # claimed ahead (GLOBAL_AHEAD): it waits for its slot
    assert limits.global_wait() == pytest.approx(0.25)
    mono.advance(0.25)
    assert limits.global_wait() == 0


async def test_a_bulk_send_goes_on_as_soon_as_the_global_cap_allows(env: Env) -> None:
    # The loop rests its interval when there is nothing to do, but not when the cap held
    # rows back: it waits only until the cap lets the next one go.
    for user in range(70):
        await env.enqueue(400_000 + user, text="hello")
    made_at = _timed_calls(env)
    sender = env.sender()
    task = asyncio.create_task(sender.run_forever(interval=5))
    for _ in range(1000):
        if len(made_at) == 70:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [round(t - made_at[0], 3) for t in made_at] == [0] * 30 + [1] * 30 + [2] * 10


# -- crashes, several senders, the loop ----------------------------------------------------------


class StallingTelegram(FakeTelegram):
    """Hangs on the nth sendMessage until cancelled: the process dies mid-call."""

    def __init__(self, stall_on: int) -> None:
        super().__init__()
        self.stall_on = stall_on
        self.stalled = asyncio.Event()
        self.seen = 0

    async def do_request(self, url: str, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        if url.endswith("/sendMessage"):
            self.seen += 1
            if self.seen == self.stall_on:
                self.stalled.set()
                await asyncio.Event().wait()
        return await super().do_request(url, *args, **kwargs)


async def test_a_row_in_flight_when_the_process_died_is_sent_once_by_the_next(env: Env) -> None:
    stalling = StallingTelegram(stall_on=2)
    stalling.server = env.fake.server
    dying_bot = stalling.bot()
    await dying_bot.initialize()
    ids = [await env.enqueue(RESIDENT, text=f"m{i}") for i in range(3)]
    dying = OutboxSender(env.db, env.clock, env.config, dying_bot)
    task = asyncio.create_task(dying.run_forever(interval=0.01))
    await asyncio.wait_for(stalling.stalled.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await dying_bot.shutdown()
    assert [(await env.row(i)).status for i in ids] == ["sent", "pending", "pending"]

    metrics = Metrics()
    fresh = env.sender(metrics=metrics)
    await fresh.drain()
    assert _texts(env.fake, RESIDENT) == ["m0"]  # m1 is still leased to the dead sender
    env.later(60)
    await fresh.drain()
    assert _texts(env.fake, RESIDENT) == ["m0", "m1", "m2"]
    assert [(await env.row(i)).status for i in ids] == ["sent"] * 3
    # m1 had been handed to Telegram: sent again, and counted as possibly twice.
    assert metrics.outbox_resent._value.get() == 1
    assert metrics.outbox_sent._value.get() == 2  # m0 went out before the death


async def test_two_senders_on_one_database_send_everything_once_in_order(env: Env) -> None:
    chats = [400_100 + i for i in range(6)] + [-1001000000200 - i for i in range(3)]
    for i in range(4):
        for chat_id in chats:
            await env.enqueue(chat_id, text=f"{chat_id}:{i}")
    first, second = env.sender(), env.sender()
    for _ in range(6):
        await asyncio.gather(first.run_once(), second.run_once())
        env.mono.advance(1)
    for chat_id in chats:
        assert _texts(env.fake, chat_id) == [f"{chat_id}:{i}" for i in range(4)]


async def test_the_loop_survives_errors_and_stops_cleanly(env: Env, monkeypatch) -> None:
    sender = env.sender()
    original = sender._claim
    failures = iter([RuntimeError("database went away")])

    async def flaky_claim():
        for exc in failures:
            raise exc
        return await original()

    monkeypatch.setattr(sender, "_claim", flaky_claim)
    await env.enqueue(RESIDENT, text="eventually")
    task = sender.start()
    for _ in range(200):
        if _texts(env.fake, RESIDENT):
            break
        await asyncio.sleep(0)
    await sender.stop()
    assert task.done() and not task.cancelled()
    assert _texts(env.fake, RESIDENT) == ["eventually"]
