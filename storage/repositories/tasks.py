"""Scheduled tasks: timers kept as rows, so a restart loses none."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Insert, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ScheduledTask

_TASKS = ScheduledTask.__table__
# A new draft's idle check is set on every report, so its statement is built once (per
# dialect), on the table.
_REARMED = ("kind", "due_at", "status", "ticket_id", "user_id", "payload", "attempts", "lease",
            "leased_until", "last_error", "done_at")
_KEYED: dict[tuple[str, bool], Insert] = {}


def _keyed_insert(dialect: str, once: bool) -> Insert:
    """INSERT of a keyed task: with ``once`` nothing when the key exists, else the key's task
    re-armed with the new values (all but the key and when it was first created)."""
    stmt = _KEYED.get((dialect, once))
    if stmt is None:
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(_TASKS)
        if once:
            stmt = stmt.on_conflict_do_nothing(index_elements=[_TASKS.c.key])
        else:
            stmt = stmt.on_conflict_do_update(
                index_elements=[_TASKS.c.key],
                set_={name: stmt.excluded[name] for name in _REARMED})
        _KEYED[(dialect, once)] = stmt
    return stmt


@dataclass(frozen=True)
class NewTask:
    kind: str
    due_at: datetime
    ticket_id: int | None = None
    user_id: int | None = None
    payload: dict | None = None


_INSERT = insert(_TASKS)


def _values(task: NewTask, now: datetime, key: str | None) -> dict:
    return {"kind": task.kind, "due_at": task.due_at, "status": "pending",
            "ticket_id": task.ticket_id, "user_id": task.user_id, "payload": task.payload or {},
            "key": key, "attempts": 0, "lease": None, "leased_until": None, "last_error": None,
            "created_at": now, "done_at": None}


class TaskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def schedule(self, kind: str, due_at: datetime, now: datetime, *,
                       ticket_id: int | None = None, user_id: int | None = None,
                       payload: dict | None = None, key: str | None = None,
                       once: bool = False) -> None:
        """Add a task; with a key, (re)arm the one task of that key instead of adding. With
        ``once``, a key that exists (pending, or already run) is left alone: such a task, a
        digest say, happens once ever, however many processes ask and however often."""
        values = _values(NewTask(kind, due_at, ticket_id, user_id, payload), now, key)
        if key is None:
            # An object flushed with the unit of work, with any others (add_all does it at
            # once, for several).
            self._s.add(ScheduledTask(**values))
            return
        dialect = self._s.get_bind().dialect.name
        await self._s.execute(_keyed_insert(dialect, once), values)

    async def add_all(self, tasks: Sequence[NewTask], now: datetime) -> None:
        """Add tasks (no keys) with one statement: a ticket's timers. Row by row, SQLite
        took an INSERT each (the ORM asks for each new id), PostgreSQL a round trip each."""
        if tasks:
            await self._s.execute(_INSERT, [_values(task, now, None) for task in tasks])

    async def cancel(self, kinds: Iterable[str], *, ticket_id: int | None = None,
                     key: str | None = None) -> int:
        """Cancel pending tasks, without waiting for one a ticker is running right now.

        A person's update locks the ticket, then cancels its timers; a running timer holds
        its task row, then locks the ticket. Waiting here would close that circle into a
        deadlock on PostgreSQL, so a task being run is skipped (SKIP LOCKED): its handler
        locks the ticket and looks again at what it finds, once the update has committed.
        Every ticket timer must therefore check, under the ticket's lock, that it still
        applies."""
        where = [ScheduledTask.status == "pending", ScheduledTask.kind.in_(list(kinds))]
        if ticket_id is not None:
            where.append(ScheduledTask.ticket_id == ticket_id)
        if key is not None:
            where.append(ScheduledTask.key == key)
        return await self._cancel(where)

    async def _cancel(self, where: list) -> int:
        if self._s.get_bind().dialect.name != "postgresql":
            # SQLite has no row locks to skip (one writer at a time): one UPDATE.
            result = await self._s.execute(update(ScheduledTask).where(*where)
                                           .values(status="cancelled")
                                           .execution_options(synchronize_session=False))
            return result.rowcount or 0
        stmt = select(ScheduledTask.id).where(*where).with_for_update(skip_locked=True)
        ids = list((await self._s.scalars(stmt)).all())
        if not ids:
            return 0
        await self._s.execute(update(ScheduledTask).where(ScheduledTask.id.in_(ids))
                              .values(status="cancelled")
                              .execution_options(synchronize_session=False))
        return len(ids)

    async def cancel_unless_running(self, kind: str, keys: Iterable[str]) -> int:
        """Cancel the pending tasks of these keys without waiting for one a ticker is running
        right now (on PostgreSQL its row is locked): that one is left to its handler, which
        must find out for itself that it no longer applies. For callers that must never wait
        on a task, such as a person's update."""
        return await self._cancel([ScheduledTask.status == "pending",
                                   ScheduledTask.kind == kind,
                                   ScheduledTask.key.in_(list(keys))])

    async def claim_due(self, now: datetime, limit: int, lease_for: timedelta) -> list[
            tuple[int, str]]:
        """Lease up to `limit` due tasks: (id, lease token). On PostgreSQL, rows another
        process is claiming at this moment are skipped, not waited for.

        The batch shares one token, set by one UPDATE: a token only has to tell this claim
        from any other, and a statement per task made a batch of 50 cost some 30 ms
        (bench/scheduler_tick.py)."""
        stmt = (select(ScheduledTask.id).where(
            ScheduledTask.status == "pending", ScheduledTask.due_at <= now,
            (ScheduledTask.leased_until.is_(None)) | (ScheduledTask.leased_until < now))
            .order_by(ScheduledTask.due_at, ScheduledTask.id).limit(limit))
        if self._s.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        ids = list((await self._s.scalars(stmt)).all())
        if not ids:
            return []
        token = secrets.token_hex(8)
        await self._s.execute(update(ScheduledTask).where(ScheduledTask.id.in_(ids))
                              .values(lease=token, leased_until=now + lease_for)
                              .execution_options(synchronize_session=False))
        return [(task_id, token) for task_id in ids]

    async def oldest_due(self, now: datetime) -> datetime | None:
        """When the most overdue pending task fell due (None when nothing is due): how far
        the scheduler is behind. Uses the (status, due_at) index."""
        return await self._s.scalar(select(func.min(ScheduledTask.due_at)).where(
            ScheduledTask.status == "pending", ScheduledTask.due_at <= now))

    async def take(self, task_id: int, token: str) -> ScheduledTask | None:
        """The task if it is still pending under our lease (locked on PostgreSQL until the
        transaction that runs it commits)."""
        stmt = select(ScheduledTask).where(ScheduledTask.id == task_id,
                                           ScheduledTask.status == "pending",
                                           ScheduledTask.lease == token)
        if self._s.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return await self._s.scalar(stmt)

    async def get(self, task_id: int) -> ScheduledTask | None:
        return await self._s.get(ScheduledTask, task_id)

    async def pending(self, *, ticket_id: int | None = None,
                      kind: str | None = None) -> Sequence[ScheduledTask]:
        stmt = select(ScheduledTask).where(ScheduledTask.status == "pending")
        if ticket_id is not None:
            stmt = stmt.where(ScheduledTask.ticket_id == ticket_id)
        if kind is not None:
            stmt = stmt.where(ScheduledTask.kind == kind)
        return (await self._s.scalars(stmt.order_by(ScheduledTask.due_at))).all()
