"""What a resident's answer costs the database (bench/conversation.py measured these): the
flows' handlers read the person's conversation once per update, not once each, and a place's
path up the org tree is one query, not one per level."""

from __future__ import annotations

from sqlalchemy import event

from bot.clock import FakeClock
from bot.startup import prepare
from storage.uow import UnitOfWork
from tests.harness import BotEnv, make_config
from tests.telegram_fake import User

RESIDENT = User(300_101, "张三", language_code="zh-hans")


def _press(bot: BotEnv, data: str):
    for call in reversed(bot.fake.calls):
        markup = call.params.get("reply_markup") or {}
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if button.get("callback_data", "").startswith(data):
                    return bot.updates.callback(RESIDENT, button["callback_data"], call.result)
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
