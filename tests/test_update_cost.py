"""What a resident's answer costs the database: the flows' handlers read the person's
conversation once per update, not once each (bench/conversation.py measured five reads of
the same draft row at some 10 ms an answer)."""

from __future__ import annotations

from sqlalchemy import event

from tests.harness import BotEnv
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


async def test_an_answer_to_a_report_takes_three_transactions(bot: BotEnv, db) -> None:
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
    # Is this update new; whose conversation is it (read once for all the flows' handlers);
    # the answer itself, stored with the update's id.
    assert len(transactions) == 3
