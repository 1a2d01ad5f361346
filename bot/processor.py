"""Per-chat ordered update processing with de-duplication.

Updates of different chats run concurrently; updates of one chat run strictly in arrival order,
so a resident's answers are never applied out of order. Each update_id is handled once: the id is
recorded in the same transaction as the handler's effects (see storage.uow), whose primary key
refuses a second delivery at that commit, before anything is said (an answer no commit came
before records the id first: bot.actions.updates.settle). There is no separate "seen before?"
read: it would cost every update a transaction of its own to spare the rare duplicate one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.clock import Clock
from bot.logs import log_context
from bot.metrics import Metrics, update_type
from storage.db import Database
from storage.uow import (
    DuplicateUpdate,
    UnitOfWork,
    UpdateScope,
    current_inbox_lease,
    current_update,
)

log = logging.getLogger(__name__)


def chat_key(update: object) -> object:
    """What orders an update: its chat, else its user (inline queries), else nothing."""
    if isinstance(update, Update):
        if update.effective_chat is not None:
            return ("chat", update.effective_chat.id)
        if update.effective_user is not None:
            return ("user", update.effective_user.id)
    return None


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    """Chats in parallel, one chat in order, each update_id once.

    PTB's base class holds its semaphore while `do_process_update` waits, so a chat flooding the
    bot would occupy every slot waiting for its own lock and starve other chats. Its limit is
    therefore only a bound on updates in flight; the real work limit (`workers`) is taken *after*
    the chat lock, so waiting behind one's own chat costs no worker.
    """

    def __init__(self, db: Database, clock: Clock, *, workers: int = 32,
                 max_in_flight: int = 4096, metrics: Metrics | None = None) -> None:
        super().__init__(max_concurrent_updates=max_in_flight)
        self._db = db
        self._clock = clock
        self._metrics = metrics
        self._workers = asyncio.Semaphore(workers)
        self._locks: dict[object, asyncio.Lock] = {}
        self._waiting: dict[object, int] = {}

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = chat_key(update)
        if key is None:
            await self._run(update, coroutine)
            return
        # The lock is taken before anything else is awaited: tasks start in arrival order and
        # asyncio.Lock wakes waiters first-in first-out, so one chat's updates keep their order.
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                await self._run(update, coroutine)
        finally:
            self._waiting[key] -= 1
            if self._waiting[key] == 0:
                del self._waiting[key]
                del self._locks[key]

    async def _run(self, update: object, coroutine: Awaitable[Any]) -> None:
        update_id = update.update_id if isinstance(update, Update) else None
        # Every line logged while handling it names the update (and no person).
        with log_context(update_id=update_id):
            await self._run_logged(update, update_id, coroutine)

    async def _run_logged(self, update: object, update_id: int | None,
                          coroutine: Awaitable[Any]) -> None:
        async with self._workers:
            if update_id is None:
                await coroutine
                return
            scope = UpdateScope(update_id=update_id, received_at=self._clock.now(),
                                inbox=current_inbox_lease.get())
            token = current_update.set(scope)
            started = time.perf_counter()
            try:
                await coroutine
            finally:
                current_update.reset(token)
                took = time.perf_counter() - started
                kind = update_type(update)
                log.debug("update %s (%s) handled in %.1f ms", update_id, kind, took * 1000)
            again = scope.duplicate
            if not again and not scope.recorded:
                # No handler committed (an ignored update): record the id alone, through the
                # same commit (and inbox lease check) as a handler's.
                scope_token = current_update.set(scope)
                try:
                    async with UnitOfWork(self._db) as uow:
                        await uow.commit()
                except DuplicateUpdate:
                    again = True
                finally:
                    current_update.reset(scope_token)
            if again:
                # Handled before (another delivery, another instance): its commit was
                # refused before anything was said.
                log.info("update %s delivered again; it was handled first elsewhere",
                         update_id)
            if self._metrics is not None:
                if again:
                    self._metrics.duplicates.inc()
                else:
                    self._metrics.updates.labels(kind).inc()
                    self._metrics.handling.labels(kind).observe(took)
