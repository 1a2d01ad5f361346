"""What an update costs the database (bench/conversation.py measured these): each step of a
report and each worker's button is one transaction (the draft read once, the update's id
recorded in it: no separate "seen before?" read), and a place's path up the org tree is one
query, not one per level."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from bot.clock import FakeClock
from bot.startup import prepare
from storage.uow import UnitOfWork
from tests.harness import ADMIN, BotEnv, make_config
from tests.telegram_fake import Chat, User

RESIDENT = User(300_101, "张三", language_code="zh-hans")
WORKER = User(200_101, "小王", language_code="zh-hans")
GROUP = Chat(-1001000000201, "supergroup", title="东湖一社区 <第1网格>")
INSIDE = (31.23, 121.42)  # in SFQ-DH-01-G1


@contextmanager
def counting(db):
    """The transactions begun meanwhile (one list entry each)."""
    began: list[object] = []

    def begin(conn) -> None:
        began.append(conn)

    event.listen(db.engine.sync_engine, "begin", begin)
    try:
        yield began
    finally:
        event.remove(db.engine.sync_engine, "begin", begin)


def _press(bot: BotEnv, data: str, user: User = RESIDENT):
    for call in reversed(bot.fake.calls):
        markup = call.params.get("reply_markup") or {}
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if button.get("callback_data", "").startswith(data):
                    return bot.updates.callback(user, button["callback_data"], call.result)
    raise AssertionError(f"no {data!r} button")


async def test_an_answer_to_a_report_takes_one_transaction(bot: BotEnv, db) -> None:
    await bot.send(bot.updates.command(RESIDENT, "/report"))
    await bot.send(_press(bot, "rp:cat:sanitation"))
    transactions: list[object] = []

    def began(conn) -> None:
        transactions.append(conn)

    event.listen(db.engine.sync_engine, "begin", began)
    try:
        await bot.send(bot.updates.private_text(RESIDENT, "楼道里堆满了垃圾，已经一周没人清理了"))
    finally:
        event.remove(db.engine.sync_engine, "begin", began)
    assert "rp:skip:media" in str(bot.fake.last("sendMessage").params["reply_markup"])
    # Whose conversation it is, the answer, and the update's id: one transaction.
    assert len(transactions) == 1


DESCRIPTION = "楼道里堆满了垃圾，已经一周没人清理了"


def _report_steps(bot: BotEnv):
    """The steps of a report as bench/conversation.py takes them: (name, make the update)."""
    return [
        ("/report", lambda: bot.updates.command(RESIDENT, "/report")),
        ("category", lambda: _press(bot, "rp:cat:sanitation")),
        ("description", lambda: bot.updates.private_text(RESIDENT, DESCRIPTION)),
        ("skip photos", lambda: _press(bot, "rp:skip:media")),
        ("location", lambda: bot.updates.location(RESIDENT, *INSIDE)),
        ("skip contact", lambda: _press(bot, "rp:skip:contact")),
        ("submit", lambda: _press(bot, "rp:submit")),
    ]


async def test_every_step_of_a_report_is_one_transaction(bot: BotEnv, db) -> None:
    costs = {}
    for name, update in _report_steps(bot):
        made = update()
        with counting(db) as began:
            await bot.send(made)
        costs[name] = len(began)
    # The submit's answer (the ticket number) is a kept outbox row, sent straight after the
    # commit by the outbox sender, which reads the held row and records Telegram's answer:
    # the outbox's own two transactions, beside the step's one.
    assert costs == {name: 1 for name, _ in _report_steps(bot)} | {"submit": 1 + 2}


async def test_a_worker_button_is_one_transaction(bot: BotEnv, db) -> None:
    bot.fake.set_member(GROUP.id, WORKER.id, "member")
    await bot.send(bot.updates.command(GROUP, "/bind", "SFQ-DH-01-G1", user=ADMIN))
    for _name, update in _report_steps(bot):
        await bot.send(update())
    await bot.deliver()
    claim = _press(bot, "tk:claim:", WORKER)
    with counting(db) as began:
        await bot.send(claim)
    assert len(began) == 1
    assert bot.fake.calls_to("answerCallbackQuery")


async def test_a_place_is_named_with_one_query(db) -> None:
    await prepare(db, make_config(), FakeClock())
    async with UnitOfWork(db) as uow:
        grid = await uow.nodes.by_code("SFQ-DH-01-G1")
        statements: list[str] = []

        def count(conn, cursor, statement, parameters, context, executemany) -> None:
            statements.append(statement)

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        try:
            path = await uow.nodes.path(grid)
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", count)
        assert [n.code for n in path] == ["SFQ", "SFQ-DH", "SFQ-DH-01", "SFQ-DH-01-G1"]
        assert len(statements) == 1
        root = path[0]
        assert await uow.nodes.path(root) == [root]


@contextmanager
def statements(db):
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)


async def test_a_submit_writes_its_timers_at_once_and_looks_for_nothing_twice(
        bot: BotEnv, db) -> None:
    await bot.send(bot.updates.command(GROUP, "/bind", "SFQ-DH-01-G1", user=ADMIN))
    *steps, (_, submit) = _report_steps(bot)
    for _name, update in steps:
        await bot.send(update())
    made = submit()
    with statements(db) as seen:
        await bot.send(made)
        await bot.deliver()
    # The ticket's five timers: one INSERT (row by row, SQLite took one each).
    assert sum(s.startswith("INSERT INTO scheduled_task") for s in seen) == 1
    # The attachments are read once for the card; whether the draft is still there is known
    # from its deletion; each outbox row is leased and read in one statement; a message
    # remembered for the ticket is one INSERT.
    assert sum(s.startswith("SELECT ticket_attachment") for s in seen) == 1
    assert not [s for s in seen if s.startswith("SELECT draft.id FROM draft")]
    sent = [s for s in seen if s.startswith("UPDATE outbox SET status=")]
    assert len(sent) == 3  # the number, the card and its location
    assert len([s for s in seen if s.startswith("SELECT outbox.id")
                and "WHERE outbox.id =" in s]) == len(sent)  # read as sent, not as leased
    assert not [s for s in seen if s.startswith("SELECT ticket_message")]
    assert len(bot.fake.calls_to("sendLocation")) == 1
