"""The inbox: updates the webhook acknowledged and no instance has handled yet.

Only the oldest row of a chat may be leased (its *head*), so one chat's updates are handled
one at a time and in update_id order across all instances; the next row becomes the head once
the handled one is removed. Leases are compare-and-set, so two instances never hold the same
row, and a lease that runs out (its instance died) can be taken over.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import InboundUpdate

# The chat_key prefix of updates set aside: kept, out of every chat's line (see set_aside).
SET_ASIDE = "set-aside:"


_INBOX = InboundUpdate.__table__


def _head_of_chat():
    earlier = _INBOX.alias("earlier")
    return ~exists().where(earlier.c.chat_key == _INBOX.c.chat_key,
                           earlier.c.update_id < _INBOX.c.update_id)


# Every webhook update is stored, leased, removed and its chat's next looked up: these are
# built once (building them, an alias and a subquery each, cost more than running them).
_STORE = {name: insert(_INBOX).on_conflict_do_nothing(index_elements=["update_id"])
          for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}
_LEASE_STORED = (update(_INBOX)
                 .where(_INBOX.c.update_id == bindparam("stored_id"), _INBOX.c.lease.is_(None),
                        _head_of_chat(),
                        ~_INBOX.c.chat_key.startswith(SET_ASIDE, autoescape=True))
                 .values(lease=bindparam("token"), leased_until=bindparam("until"),
                         attempts=_INBOX.c.attempts + 1))
_REMOVE = delete(_INBOX).where(_INBOX.c.update_id == bindparam("update_id"),
                               _INBOX.c.lease == bindparam("token"))
_HEAD_OF = select(func.min(_INBOX.c.update_id)).where(
    _INBOX.c.chat_key == bindparam("chat_key"))


class InboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, *, update_id: int, chat_key: str, payload: dict,
                  now: datetime) -> bool:
        """Store a received update; False when it is stored already (Telegram sent it again)."""
        dialect = self._s.get_bind().dialect.name
        result = await self._s.execute(
            _STORE["postgresql" if dialect == "postgresql" else "sqlite"],
            {"update_id": update_id, "chat_key": chat_key, "payload": payload,
             "received_at": now, "attempts": 0})
        return bool(result.rowcount)

    @staticmethod
    def _is_head():
        earlier = aliased(InboundUpdate)
        return ~exists().where(earlier.chat_key == InboundUpdate.chat_key,
                               earlier.update_id < InboundUpdate.update_id)

    @staticmethod
    def _in_line():
        return ~InboundUpdate.chat_key.startswith(SET_ASIDE, autoescape=True)

    @staticmethod
    def _free(now: datetime):
        return InboundUpdate.leased_until.is_(None) | (InboundUpdate.leased_until < now)

    async def free_heads(self, now: datetime, *, limit: int,
                         skip_chats: Sequence[str] = ()) -> Sequence[tuple[int, str]]:
        """(update_id, chat_key) of chats' oldest rows nobody holds, oldest first."""
        stmt = select(InboundUpdate.update_id, InboundUpdate.chat_key).where(
            self._free(now), self._is_head(), self._in_line())
        if skip_chats:
            stmt = stmt.where(InboundUpdate.chat_key.not_in(list(skip_chats)))
        rows = await self._s.execute(stmt.order_by(InboundUpdate.update_id).limit(limit))
        return [(row.update_id, row.chat_key) for row in rows]

    async def lease_stored(self, update_id: int, token: str, *, until: datetime) -> bool:
        """In the transaction that stored the row: take it at once if it is its chat's head
        (an earlier update of the chat still waiting keeps the chat's order: then no)."""
        result = await self._s.execute(_LEASE_STORED, {"stored_id": update_id, "token": token,
                                                        "until": until})
        return bool(result.rowcount)

    async def head_of(self, chat_key: str) -> int | None:
        return await self._s.scalar(_HEAD_OF, {"chat_key": chat_key})

    async def lease(self, update_id: int, token: str, *, now: datetime,
                    until: datetime) -> dict | None:
        """Take the row if it is still its chat's head and nobody holds it; its payload and
        the number of leases taken so far, or None when another instance was quicker."""
        result = await self._s.execute(
            update(InboundUpdate)
            .where(InboundUpdate.update_id == update_id, self._free(now), self._is_head(),
                   self._in_line())
            .values(lease=token, leased_until=until, attempts=InboundUpdate.attempts + 1)
            .execution_options(synchronize_session=False))
        if not result.rowcount:
            return None
        row = await self._s.execute(select(InboundUpdate.payload, InboundUpdate.attempts)
                                    .where(InboundUpdate.update_id == update_id))
        payload, attempts = row.one()
        return {"payload": payload, "attempts": attempts}

    async def renew(self, token: str, update_ids: Sequence[int], until: datetime) -> int:
        """Extend the leases ``token`` holds on these rows (a heartbeat for the updates being
        handled); returns how many. Only these: a row left behind by a failure then runs out
        of lease and is taken over, instead of being held for as long as the instance lives."""
        if not update_ids:
            return 0
        result = await self._s.execute(
            update(InboundUpdate)
            .where(InboundUpdate.lease == token, InboundUpdate.update_id.in_(list(update_ids)))
            .values(leased_until=until).execution_options(synchronize_session=False))
        return result.rowcount or 0

    async def remove(self, update_id: int, token: str) -> bool:
        """Delete a handled row, if this lease still holds it (in the update's first commit:
        also the fence a lease lost meanwhile cannot pass)."""
        result = await self._s.execute(_REMOVE, {"update_id": update_id, "token": token})
        return bool(result.rowcount)

    async def release(self, update_id: int, token: str, *, not_before: datetime) -> bool:
        """Give one row back (its handling failed), to be tried again, here or elsewhere, from
        ``not_before`` on (its lease ends then; the chat waits, in order)."""
        result = await self._s.execute(
            update(InboundUpdate)
            .where(InboundUpdate.update_id == update_id, InboundUpdate.lease == token)
            # A failure given back is no attempt: only leases that never come back (their
            # instance died, perhaps of this very update) count towards setting it aside.
            .values(lease=None, leased_until=not_before, attempts=InboundUpdate.attempts - 1)
            .execution_options(synchronize_session=False))
        return bool(result.rowcount)

    async def set_aside(self, update_id: int, token: str) -> bool:
        """Take a row out of its chat's line for good, kept for an operator to look at: its
        chat_key gets the SET_ASIDE prefix (so it is no chat's head), and no lease ends."""
        result = await self._s.execute(
            update(InboundUpdate)
            .where(InboundUpdate.update_id == update_id, InboundUpdate.lease == token)
            .values(chat_key=SET_ASIDE + InboundUpdate.chat_key, lease=None, leased_until=None)
            .execution_options(synchronize_session=False))
        return bool(result.rowcount)

    async def release_all(self, token: str) -> int:
        """Give up every lease ``token`` holds, for another instance to take at once."""
        result = await self._s.execute(
            update(InboundUpdate).where(InboundUpdate.lease == token)
            .values(lease=None, leased_until=None).execution_options(synchronize_session=False))
        return result.rowcount or 0

    async def backlog(self) -> int:
        """Updates waiting to be handled (not those set aside)."""
        return await self._s.scalar(select(func.count()).select_from(InboundUpdate)
                                    .where(self._in_line())) or 0

    async def set_aside_count(self) -> int:
        return await self._s.scalar(select(func.count()).select_from(InboundUpdate)
                                    .where(~self._in_line())) or 0
