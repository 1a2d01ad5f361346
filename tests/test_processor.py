"""The update processor: chats in parallel, one chat in arrival order, each update once."""

from __future__ import annotations

import asyncio

from bot.clock import FakeClock
from bot.processor import ChatOrderedUpdateProcessor
from storage.db import Database
from storage.uow import UnitOfWork
from tests.telegram_fake import FakeTelegram, UpdateFactory, User

ANN, BOB = User(1, "Ann"), User(2, "Bob")


async def test_one_chat_in_order_other_chats_alongside(db: Database) -> None:
    processor = ChatOrderedUpdateProcessor(db, FakeClock(), workers=8)
    updates = UpdateFactory(FakeTelegram().bot())
    log: list[tuple[str, int]] = []
    bob_ran_while_ann_waited = asyncio.Event()

    async def handle(name: str, n: int, delay: float) -> None:
        log.append((name, n))
        await asyncio.sleep(delay)
        if name == "bob":
            bob_ran_while_ann_waited.set()

    ann = [updates.private_text(ANN, f"a{n}") for n in range(6)]
    bob = updates.private_text(BOB, "b")
    # The first of Ann's updates is the slowest: without per-chat order the later ones would
    # overtake it; Bob's must not wait for Ann at all.
    tasks = [asyncio.create_task(processor.process_update(u, handle("ann", n, 0.05 if n == 0
                                                                     else 0)))
             for n, u in enumerate(ann)]
    tasks.append(asyncio.create_task(processor.process_update(bob, handle("bob", 0, 0))))
    await asyncio.wait_for(bob_ran_while_ann_waited.wait(), timeout=2)
    assert ("ann", 5) not in log  # Bob finished while Ann's chat was still busy
    await asyncio.gather(*tasks)
    assert [n for name, n in log if name == "ann"] == list(range(6))
    assert processor._locks == {}  # nothing left behind for chats that went quiet


async def test_an_update_seen_before_is_dropped_and_one_that_wrote_nothing_is_recorded(
        db: Database) -> None:
    processor = ChatOrderedUpdateProcessor(db, FakeClock(), workers=2)
    update = UpdateFactory(FakeTelegram().bot()).private_text(ANN, "hi")
    runs = []

    async def handle() -> None:
        runs.append(1)

    await processor.process_update(update, handle())
    await processor.process_update(update, handle())
    assert runs == [1]
    async with UnitOfWork(db) as uow:
        assert await uow.updates.is_processed(update.update_id)
