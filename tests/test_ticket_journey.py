"""The headline journey through the real Application, every step by real updates:
a resident reports with a photo and a location → the card reaches the right grid group →
two workers claim at once → relay both ways → resolve with a note → the resident is told."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from storage.models import Ticket
from tests.harness import ADMIN, BotEnv
from tests.telegram_fake import Chat, User
from tests.test_report_flow import press

RESIDENT = User(700_001, "李<四> & 邻居", language_code="zh-hans")
WORKER_A = User(700_101, "王网格员", language_code="zh-hans")
WORKER_B = User(700_102, "赵网格员", language_code="zh-hans")
GROUP = Chat(-1007000000001, "supergroup", title="东湖一社区第1网格 <工作群>")
WRONG_GROUP = Chat(-1007000000002, "supergroup", title="南苑一社区第1网格")
INSIDE = (31.23, 121.42)  # SFQ-DH-01-G1


def _card(bot: BotEnv):
    return next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                if c.params["chat_id"] == GROUP.id and c.params.get("reply_markup"))


async def test_report_to_resolution(bot: BotEnv, db) -> None:
    await bot.send(bot.updates.command(GROUP, "/bind", "SFQ-DH-01-G1", user=ADMIN))
    await bot.send(bot.updates.command(WRONG_GROUP, "/bind", "SFQ-NY-01-G1", user=ADMIN))
    for worker in (WORKER_A, WORKER_B):
        bot.fake.set_member(GROUP.id, worker.id, "member")

    # The resident reports: category, description, a photo, a location, contact, submit.
    await bot.send(bot.updates.command(RESIDENT, "/start"))
    await press(bot, RESIDENT, "rp:new")
    await press(bot, RESIDENT, "rp:cat:sanitation")
    await bot.send(bot.updates.private_text(RESIDENT, "楼道里堆满了垃圾<script>，已经一周没人清理"))
    await bot.send(bot.updates.photo(RESIDENT))
    await bot.send(bot.updates.location(RESIDENT, *INSIDE))
    await bot.send(bot.updates.contact(RESIDENT, "+86 138 1234 5678", user_id=RESIDENT.id))
    await press(bot, RESIDENT, "rp:submit")
    async with db.sessions() as session:
        ticket = await session.scalar(select(Ticket).where(Ticket.reporter_id == RESIDENT.id))
    assert ticket is not None and ticket.number in bot.last_text(RESIDENT.id)

    # The card reaches the grid's group (and no other), with the photo and the location.
    await bot.deliver()
    card = _card(bot)
    text = card.params["text"]
    assert ticket.number in text and "138****5678" in text and "13812345678" not in text
    assert "&lt;script&gt;" in text and "李&lt;四&gt; &amp; 邻居" in text
    assert not [t for t in bot.fake.sent_texts(WRONG_GROUP.id) if ticket.number in t]
    methods = [c.method for c in bot.fake.calls if c.params.get("chat_id") == GROUP.id]
    assert "sendPhoto" in methods and "sendLocation" in methods

    # Two workers press Claim at once: one wins, the other is told who holds it.
    claim = f"tk:claim:{ticket.id}"
    await asyncio.gather(bot.send(bot.updates.callback(WORKER_A, claim, card.result)),
                         bot.send(bot.updates.callback(WORKER_B, claim, card.result)))
    answers = [c.params.get("text") or "" for c in bot.fake.calls_to("answerCallbackQuery")]
    assert any("王网格员" in a or "赵网格员" in a for a in answers if a)
    async with db.sessions() as session:
        held = await session.get(Ticket, ticket.id)
        assert held.status == "claimed" and held.holder_id in (WORKER_A.id, WORKER_B.id)
    holder = WORKER_A if held.holder_id == WORKER_A.id else WORKER_B
    await bot.deliver()
    assert bot.fake.last("editMessageText").params["chat_id"] == GROUP.id

    # Relay: the worker replies to the card, the resident gets it without the account.
    reply = bot.updates.group_text(GROUP, holder, "我们明天上午来清理", reply_to=card.result)
    await bot.send(reply)
    await bot.deliver()
    relayed = bot.fake.sent_texts(RESIDENT.id)[-1]
    assert "我们明天上午来清理" in relayed and ticket.number in relayed
    assert str(holder.id) not in relayed
    # ... and the resident replies to that message; the group gets it.
    to_resident = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                       if c.params["chat_id"] == RESIDENT.id)
    await bot.send(bot.updates.private_text(RESIDENT, "好的，谢谢", reply_to=to_resident.result))
    await bot.deliver()
    assert "好的，谢谢" in bot.fake.sent_texts(GROUP.id)[-1]

    # Resolve with a note; the resident is told in their language.
    await bot.send(bot.updates.callback(holder, f"tk:resolve:{ticket.id}", card.result))
    prompt = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                  if c.params["chat_id"] == GROUP.id and c.params.get("reply_markup", {}).get(
                      "force_reply"))
    await bot.send(bot.updates.group_text(GROUP, holder, "已清理完毕", reply_to=prompt.result))
    await bot.deliver()
    async with db.sessions() as session:
        done = await session.get(Ticket, ticket.id)
        assert (done.status, done.resolution) == ("resolved", "已清理完毕")
    assert "已清理完毕" in bot.fake.sent_texts(RESIDENT.id)[-1]
