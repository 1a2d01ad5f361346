"""Conversation drafts: one row per person and flow, and at most one private conversation per
person.

A person talks to the bot in one private conversation at a time: starting a private flow (a
report, adding information, a withdrawal) discards that person's other private drafts, so an
answer can never be taken by a flow the person has moved away from. Group questions (a
resolution note, a transfer reason) are not private conversations and are never touched.

Every draft has one durable idle check (a scheduled task row; bot.actions.timers.drafts decides
what it does: remind the resident once, then expire the draft). The repository arms it when the
draft starts and cancels it when the draft is discarded; answers do not touch it, so no task is
written per step: the check reads `updated_at` when it runs and sets itself again for the moment
that matters. The timings are configuration: given them (``FirstCheck``, as the bot's units of
work are) the first check is set for the first moment it can act (a private draft's reminder, a
group question's expiry), so a draft costs no task run before then; without them it runs at
the next tick and sets itself for that moment. A task cannot re-arm itself (the ticker marks it
done once its handler returns), so a draft's check lives under two keys in turn: each run arms
the other.

Locks, on PostgreSQL: a running check holds its task row, then the draft row, then the other
key's row. A person's update never waits for a task row: discarding deletes the draft first and
cancels its checks without waiting for one that is running (that one finds the draft gone), and
a new draft's check has keys of its own (they name the draft's id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from storage.models import Draft, ScheduledTask
from storage.repositories.tasks import TaskRepository

# Drafts of questions a worker answers in a group (a resolution note, a transfer reason):
# they must never capture the same person's private conversation.
GROUP_FLOWS = ("resolve", "transfer")


# The scheduled task that looks at an idle draft (handled in bot.actions.timers.drafts).
CHECK_KIND = "draft_check"


@dataclass(frozen=True)
class FirstCheck:
    """How long after its start a draft's idle check can first act: a private draft is
    reminded after ``private`` (the reminder comes before the expiry), a group question
    expires after ``group``."""

    private: timedelta
    group: timedelta


# Every step of every conversation reads and writes its draft, so these statements are built
# once (SQLAlchemy caches their compiled form, but building the expression itself cost as much
# as running it), and the writes are Core statements on the table: an ORM object flushed cost
# several times the UPDATE it ends in. The objects read stay ORM objects (``Draft``), kept in
# step with what was written (``save``, ``_delete``), so callers see no difference.
_DRAFTS = Draft.__table__
_GET = select(Draft).where(Draft.user_id == bindparam("user_id"),
                           Draft.flow == bindparam("flow"))
_EXISTS = select(_DRAFTS.c.id).where(_DRAFTS.c.user_id == bindparam("user_id"),
                                     _DRAFTS.c.flow == bindparam("flow"))
_ANY_OF = (select(Draft).where(Draft.user_id == bindparam("user_id"),
                               Draft.flow.not_in(GROUP_FLOWS))
           .order_by(Draft.updated_at.desc(), Draft.id.desc()).limit(1))
_INSERT = insert(_DRAFTS).returning(_DRAFTS.c.id)
_SAVE = (update(_DRAFTS).where(_DRAFTS.c.id == bindparam("draft_id"))
         .values(step=bindparam("step"), data=bindparam("data"),
                 updated_at=bindparam("updated_at"), reminded_at=None))


def is_private(flow: str) -> bool:
    return flow not in GROUP_FLOWS


def check_keys(draft_id: int) -> tuple[str, str]:
    """The two keys a draft's idle check alternates between."""
    return f"draft:{draft_id}:a", f"draft:{draft_id}:b"


class DraftRepository:
    def __init__(self, session: AsyncSession, first_check: FirstCheck | None = None) -> None:
        self._s = session
        self._tasks = TaskRepository(session)
        self._first_check = first_check
        # (user, flow) of drafts deleted in this unit of work and not started again: whether
        # one exists is known without asking (a summary's buttons go once its report is sent).
        self._gone: set[tuple[int, str]] = set()

    async def get(self, user_id: int, flow: str) -> Draft | None:
        return await self._s.scalar(_GET, {"user_id": user_id, "flow": flow})

    async def exists(self, user_id: int, flow: str) -> bool:
        if (user_id, flow) in self._gone:
            return False
        return await self._s.scalar(_EXISTS, {"user_id": user_id, "flow": flow}) is not None

    async def by_id(self, draft_id: int, *, lock: bool = False) -> Draft | None:
        """With `lock`, the row is held until the transaction ends (on PostgreSQL), so two
        checks of one draft never both act on it."""
        stmt = select(Draft).where(Draft.id == draft_id)
        if lock and self._s.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return await self._s.scalar(stmt)

    async def any_of(self, user_id: int) -> Draft | None:
        """The person's private conversation (group questions are not one). Rows written
        before the one-conversation rule may still be several: the newest counts."""
        return await self._s.scalar(_ANY_OF, {"user_id": user_id})

    async def start(self, user_id: int, flow: str, step: str, data: dict,
                    now: datetime) -> Draft:
        """A fresh draft of `flow`; for a private flow, the person's only private one."""
        if is_private(flow):
            # This flow's old draft and the person's other private ones, in one statement.
            await self._delete(_DRAFTS.c.user_id == user_id, _DRAFTS.c.flow.not_in(GROUP_FLOWS))
        else:
            await self.discard(user_id, flow)
        values = {"user_id": user_id, "flow": flow, "step": step, "data": data,
                  "created_at": now, "updated_at": now, "reminded_at": None}
        draft_id = (await self._s.execute(_INSERT, values)).scalar_one()
        self._gone.discard((user_id, flow))
        # Outside the session (nothing of it is left to flush), readable like a loaded one.
        draft = Draft(id=draft_id, **values)
        due = now
        if self._first_check is not None:
            private = is_private(flow)
            due += self._first_check.private if private else self._first_check.group
        await self._tasks.schedule(CHECK_KIND, due, now, user_id=user_id,
                                   payload={"draft_id": draft.id},
                                   key=check_keys(draft.id)[0])
        return draft

    async def save(self, draft: Draft, *, step: str, data: dict, now: datetime) -> None:
        # A new dict each time: the JSON column is not mutation-tracked. An answer starts a
        # new idle spell, which is reminded again. Written at once; the object takes the
        # values as committed ones, so the session has nothing of it to flush.
        data = dict(data)
        await self._s.execute(_SAVE, {"draft_id": draft.id, "step": step, "data": data,
                                      "updated_at": now})
        for name, value in (("step", step), ("data", data), ("updated_at", now),
                            ("reminded_at", None)):
            set_committed_value(draft, name, value)

    async def check_again(self, running: ScheduledTask, due_at: datetime,
                          now: datetime) -> None:
        """From inside a draft's check: look again at `due_at`, under the other key."""
        first, second = check_keys(running.payload["draft_id"])
        await self._tasks.schedule(CHECK_KIND, due_at, now, user_id=running.user_id,
                                   payload=dict(running.payload),
                                   key=second if running.key == first else first)

    async def discard(self, user_id: int, flow: str) -> None:
        await self._delete(_DRAFTS.c.user_id == user_id, _DRAFTS.c.flow == flow)

    async def _delete(self, *where) -> list[str]:
        """Delete drafts, then cancel their checks; returns the flows deleted."""
        deleted = (await self._s.execute(
            delete(_DRAFTS).where(*where)
            .returning(_DRAFTS.c.id, _DRAFTS.c.flow, _DRAFTS.c.user_id))).all()
        self._gone.update((user_id, flow) for _, flow, user_id in deleted)
        # A Core DELETE leaves the rows' objects in the session: they leave it too (still
        # readable), so that nothing changed on them is flushed to a row that is gone.
        session = self._s.sync_session
        for draft_id, _, _ in deleted:
            loaded = session.identity_map.get(identity_key(Draft, draft_id))
            if loaded is not None:
                session.expunge(loaded)
        keys = [key for draft_id, _, _ in deleted for key in check_keys(draft_id)]
        if keys:
            await self._tasks.cancel_unless_running(CHECK_KIND, keys)
        return [flow for _, flow, _ in deleted]

    async def discard_all(self, user_id: int) -> list[str]:
        """Every draft of the person, private or group questions alike (their data is being
        erased); returns the flows."""
        return await self._delete(_DRAFTS.c.user_id == user_id)

    async def discard_other_private(self, user_id: int, keep: str) -> list[str]:
        """Remove the person's private drafts other than `keep`; returns their flows."""
        return await self._delete(_DRAFTS.c.user_id == user_id, _DRAFTS.c.flow != keep,
                                  _DRAFTS.c.flow.not_in(GROUP_FLOWS))
