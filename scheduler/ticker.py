"""The tick that runs due scheduled tasks.

A short periodic tick leases due rows in batches, then runs each task in a transaction of its
own that also marks it done: a task's effects (a notification in the outbox, an escalation)
and its "done" land together or not at all. A crash mid-task leaves the lease to expire and
the task runs again later; a task that fell due while the bot was down runs once when it is
back. A failing task backs off and is retried, then given up on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta

from sqlalchemy import select

from bot.clock import Clock
from bot.logs import bind_log_context, log_context
from storage.db import Database, first_in_line
from storage.models import ScheduledTask, Ticket
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

TaskHandler = Callable[[UnitOfWork, ScheduledTask], Awaitable[None]]


class Ticker:
    def __init__(self, db: Database, clock: Clock, handlers: Mapping[str, TaskHandler], *,
                 batch_size: int = 50, backoffs: Sequence[timedelta] = (),
                 lease: timedelta = timedelta(minutes=2)) -> None:
        self._db = db
        self._clock = clock
        self._handlers = handlers
        self._batch = batch_size
        self._backoffs = tuple(backoffs)
        self._lease = lease

    async def tick(self) -> int:
        """Run what is due now, batch after batch; returns how many tasks ran. Its units of
        work go before the updates' that wait (storage.db.first_in_line): a task due now
        must not wait behind a flood of residents."""
        with first_in_line():
            return await self._tick()

    async def _tick(self) -> int:
        ran = 0
        while True:
            async with UnitOfWork(self._db) as uow:
                claimed = await uow.tasks.claim_due(self._clock.now(), self._batch, self._lease)
                await uow.session.commit()
            for task_id, token in claimed:
                ran += await self._run(task_id, token)
            if len(claimed) < self._batch:
                return ran

    async def _run(self, task_id: int, token: str) -> int:
        # Whatever the task logs (and its failure below) names the task and its ticket.
        with log_context(task=task_id):
            try:
                async with UnitOfWork(self._db) as uow:
                    task = await uow.tasks.take(task_id, token)
                    if task is None:  # done or cancelled meanwhile, or leased again elsewhere
                        return 0
                    if task.ticket_id is not None:
                        # The number alone: a loaded Ticket would sit in the session unlocked,
                        # under the handler's own locked read of it.
                        bind_log_context(ticket=await uow.session.scalar(
                            select(Ticket.number).where(Ticket.id == task.ticket_id)))
                    handler = self._handlers.get(task.kind)
                    if handler is None:
                        raise LookupError(f"no handler for task kind {task.kind!r}")
                    await handler(uow, task)
                    task.status, task.done_at, task.lease = "done", self._clock.now(), None
                    await uow.session.commit()
                    return 1
            except Exception as exc:  # one task's failure must not stop the others
                log.warning("task %s failed: %s", task_id, type(exc).__name__, exc_info=True)
                await self._back_off(task_id, token, exc)
                return 0

    async def _back_off(self, task_id: int, token: str, exc: Exception) -> None:
        async with UnitOfWork(self._db) as uow:
            task = await uow.tasks.take(task_id, token)
            if task is None:
                return
            task.attempts += 1
            task.lease, task.leased_until = None, None
            task.last_error = type(exc).__name__[:256]
            if task.attempts > len(self._backoffs):
                task.status = "failed"
                log.error("task %s (%s) given up after %d attempts", task.id, task.kind,
                          task.attempts)
            else:
                task.due_at = self._clock.now() + self._backoffs[task.attempts - 1]
            await uow.session.commit()
