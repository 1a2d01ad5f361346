"""The update processor: chats in parallel, one chat in arrival order, each update once."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from bot.actions.updates import settle
from bot.clock import FakeClock
from bot.metrics import Metrics
from bot.processor import ChatOrderedUpdateProcessor
from storage.db import Database
from storage.uow import DuplicateUpdate, UnitOfWork
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


async def test_an_update_seen_before_fails_at_its_commit_before_anything_is_said(
        db: Database) -> None:
    """No separate "seen before?" read: the second delivery's commit is refused (the id's
    primary key), before the handler goes on to say anything."""
    metrics = Metrics()
    processor = ChatOrderedUpdateProcessor(db, FakeClock(), workers=2, metrics=metrics)
    update = UpdateFactory(FakeTelegram().bot()).private_text(ANN, "hi")
    said, refused = [], []

    async def handle() -> None:
        try:
            async with UnitOfWork(db) as uow:
                await uow.commit()
        except DuplicateUpdate:
            refused.append(1)
            return
        said.append(1)

    await processor.process_update(update, handle())
    await processor.process_update(update, handle())
    assert said == [1] and refused == [1]
    async with UnitOfWork(db) as uow:
        assert await uow.updates.is_processed(update.update_id)


async def test_an_update_that_wrote_nothing_is_recorded_and_its_redelivery_counted(
        db: Database) -> None:
    metrics = Metrics()
    processor = ChatOrderedUpdateProcessor(db, FakeClock(), workers=2, metrics=metrics)
    update = UpdateFactory(FakeTelegram().bot()).private_text(ANN, "hi")

    async def handle() -> None:
        pass

    await processor.process_update(update, handle())
    async with UnitOfWork(db) as uow:
        assert await uow.updates.is_processed(update.update_id)
    await processor.process_update(update, handle())  # recorded already: let go quietly
    assert metrics.duplicates._value.get() == 1


async def test_an_answer_no_commit_came_before_records_the_id_first(db: Database) -> None:
    """A read-only answer: settle() records the id before the door says anything, so a
    second delivery stops there."""
    rt = SimpleNamespace(uow=lambda: UnitOfWork(db))
    processor = ChatOrderedUpdateProcessor(db, FakeClock(), workers=2)
    update = UpdateFactory(FakeTelegram().bot()).private_text(ANN, "hi")
    said, refused = [], []

    async def handle() -> None:
        try:
            await settle(rt)  # type: ignore[arg-type]
            await settle(rt)  # type: ignore[arg-type]  (recorded: no second transaction)
        except DuplicateUpdate:
            refused.append(1)
            return
        said.append(1)

    await processor.process_update(update, handle())
    await processor.process_update(update, handle())
    assert said == [1] and refused == [1]
