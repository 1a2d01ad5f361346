"""The outbox: Bot API calls waiting to be made, written in the transaction that caused them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import OutboxMessage

# What a ticket's row is to its group (OutboxMessage.purpose). The card and what hangs on it
# (its forum topic, its edits, the report's photos and place under it) belong to one chat and
# are stale once the ticket has a card elsewhere; the conversation ("relay": messages between
# residents and workers, notices about the ticket) follows the ticket wherever it goes.
CARD_PARTS = ("card", "topic", "card_edit", "card_media")
CONVERSATION = "relay"

_INSERT = OutboxMessage.__table__.insert().returning(OutboxMessage.__table__.c.id)
# Every row sent is leased again just before its call (a compare-and-set on its lease) and
# read by the same statement: built once.
_ROWS = OutboxMessage.__table__
_TAKE_LEASE = (select(OutboxMessage).from_statement(
    update(_ROWS).where(_ROWS.c.id == bindparam("row_id"), _ROWS.c.status == "pending",
                        _ROWS.c.not_before == bindparam("held_until"))
    .values(not_before=bindparam("until")).returning(*_ROWS.c))
    .execution_options(populate_existing=True))


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def insert(self, *, chat_id: int, method: str, params: dict, now: datetime,
                     not_before: datetime, ticket_id: int | None = None,
                     purpose: str | None = None) -> int:
        """``add``, written at once by a Core INSERT (no ORM object to build and flush): the
        new row's id. Rows added before and not yet flushed are written first, so that a
        chat's messages keep the order they were written in (ids)."""
        if self._s.new:
            await self._s.flush()
        result = await self._s.execute(_INSERT, {
            "chat_id": chat_id, "method": method, "params": params, "ticket_id": ticket_id,
            "purpose": purpose, "status": "pending", "attempts": 0, "not_before": not_before,
            "created_at": now})
        return result.scalar_one()

    def add(self, *, chat_id: int, method: str, params: dict, now: datetime,
            ticket_id: int | None = None, purpose: str | None = None) -> OutboxMessage:
        row = OutboxMessage(chat_id=chat_id, method=method, params=params, ticket_id=ticket_id,
                            purpose=purpose, status="pending", attempts=0, not_before=now,
                            created_at=now)
        self._s.add(row)
        return row

    async def due(self, now: datetime, limit: int) -> Sequence[OutboxMessage]:
        """Pending rows that may be sent now, oldest first (per chat, order is kept by id)."""
        stmt = (select(OutboxMessage).where(OutboxMessage.status == "pending",
                                            OutboxMessage.not_before <= now)
                .order_by(OutboxMessage.id).limit(limit))
        return (await self._s.scalars(stmt)).all()

    async def get(self, row_id: int) -> OutboxMessage | None:
        return await self._s.get(OutboxMessage, row_id)

    async def pending_for_chat(self, chat_id: int) -> Sequence[OutboxMessage]:
        stmt = select(OutboxMessage).where(OutboxMessage.chat_id == chat_id,
                                           OutboxMessage.status == "pending")
        return (await self._s.scalars(stmt.order_by(OutboxMessage.id))).all()

    async def retarget(self, old_chat_id: int, new_chat_id: int) -> int:
        """A group migrated: what was waiting for the old id goes to the new one, in the same
        order. A supergroup numbers its messages afresh, so a row that acts on a message of
        the old chat by its id (an edit, a deletion) fails, and a reply to one loses its
        reply. Returns how many rows failed."""
        failed = 0
        for row in await self.pending_for_chat(old_chat_id):
            params = dict(row.params)
            if params.get("chat_id") == old_chat_id:
                params["chat_id"] = new_chat_id
            row.chat_id = new_chat_id
            if _names_message_in(params, old_chat_id):
                row.status = "failed"
                row.last_error = "the message is in the group from before it became a supergroup"
                failed += 1
            reply = params.get("reply_parameters")
            if (isinstance(reply, dict) and isinstance(reply.get("message_id"), int)
                    and reply.get("chat_id", old_chat_id) == old_chat_id):
                del params["reply_parameters"]
            row.params = params
        return failed

    async def pending_for_ticket(self, ticket_id: int, chat_id: int) -> Sequence[OutboxMessage]:
        stmt = select(OutboxMessage).where(OutboxMessage.ticket_id == ticket_id,
                                           OutboxMessage.chat_id == chat_id,
                                           OutboxMessage.status == "pending")
        return (await self._s.scalars(stmt.order_by(OutboxMessage.id))).all()

    async def leave_chat(self, ticket_id: int, chat_id: int) -> list[OutboxMessage]:
        """The ticket's card in ``chat_id`` stops being its card (the ticket moved on, or a
        fresh card replaces it). Its pending card rows there fail as stale; its pending
        conversation rows there are returned, still pending, for ``follow`` to queue again
        behind the new card once that is queued."""
        conversation = []
        for row in await self.pending_for_ticket(ticket_id, chat_id):
            if row.purpose in CARD_PARTS:
                row.status, row.last_error = "failed", "stale: the ticket's card is elsewhere now"
            elif row.purpose == CONVERSATION:
                conversation.append(row)
        return conversation

    def follow(self, rows: Sequence[OutboxMessage], chat_id: int | None,
               now: datetime) -> list[OutboxMessage]:
        """Queue conversation rows (from ``leave_chat``) again for the ticket's new group,
        behind everything queued so far, so they come after its new card and can reply to
        it; the originals fail with a note saying so. With no group (``chat_id`` None) they
        just fail. Rows no longer pending are left alone."""
        copies = []
        for row in rows:
            if row.status != "pending":
                continue
            row.status = "failed"
            if chat_id is None:
                row.last_error = "the ticket has no group any more"
                continue
            row.last_error = "moved: queued again for the ticket's new group"
            copies.append(self.add(chat_id=chat_id, method=row.method,
                                   params=_readdressed(row.params, row.chat_id, chat_id),
                                   now=now, ticket_id=row.ticket_id, purpose=row.purpose))
        return copies

    async def backlog(self) -> int:
        stmt = select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status == "pending")
        return await self._s.scalar(stmt) or 0

    async def mark(self, row_id: int, **values) -> None:
        await self._s.execute(update(OutboxMessage).where(OutboxMessage.id == row_id)
                              .values(**values))

    # -- for the sender (bot.delivery) -----------------------------------------------------------
    # A pending row whose not_before lies in the future (a lease, a backoff, a RetryAfter) holds
    # back every later row of its chat, so a chat's messages never overtake one another.

    def _claimable(self, now: datetime, up_to: int | None = None):
        earlier = aliased(OutboxMessage)
        held_back = exists().where(earlier.chat_id == OutboxMessage.chat_id,
                                   earlier.status == "pending", earlier.id < OutboxMessage.id,
                                   earlier.not_before > now)
        stmt = select(OutboxMessage).where(OutboxMessage.status == "pending",
                                           OutboxMessage.not_before <= now, ~held_back)
        return stmt if up_to is None else stmt.where(OutboxMessage.id <= up_to)

    async def last_id(self) -> int:
        return await self._s.scalar(select(func.max(OutboxMessage.id))) or 0

    async def claimable(self, now: datetime, *, limit: int, skip_chats: Sequence[int] = (),
                        up_to: int | None = None) -> Sequence[OutboxMessage]:
        """Due rows no earlier row of their chat holds back, oldest first, locked for this
        transaction (only rows up to id ``up_to``, if given). On PostgreSQL rows another
        sender has locked are skipped (SKIP LOCKED); SQLite has one writer at a time anyway
        and ignores FOR UPDATE."""
        stmt = self._claimable(now, up_to)
        if skip_chats:
            stmt = stmt.where(OutboxMessage.chat_id.not_in(list(skip_chats)))
        stmt = (stmt.order_by(OutboxMessage.id).limit(limit)
                .with_for_update(skip_locked=True, of=OutboxMessage))
        return (await self._s.scalars(stmt)).all()

    async def count_claimable(self, now: datetime, up_to: int | None = None) -> int:
        stmt = select(func.count()).select_from(self._claimable(now, up_to).subquery())
        return await self._s.scalar(stmt) or 0

    async def first_pending(self, chat_ids: Sequence[int]) -> dict[int, int]:
        """The oldest pending row id of each chat (locked rows included, unlike claimable)."""
        if not chat_ids:
            return {}
        stmt = (select(OutboxMessage.chat_id, func.min(OutboxMessage.id))
                .where(OutboxMessage.status == "pending",
                       OutboxMessage.chat_id.in_(list(chat_ids)))
                .group_by(OutboxMessage.chat_id))
        return {chat_id: row_id for chat_id, row_id in (await self._s.execute(stmt)).all()}

    async def take_lease(self, row_id: int, *, held_until: datetime,
                         until: datetime) -> OutboxMessage | None:
        """Compare-and-set on the lease: renew it only if it is still the one this sender
        wrote (another sender takes a row over only after its lease ran out). The row, read
        by the same statement; None when the lease was not ours any more."""
        return await self._s.scalar(_TAKE_LEASE, {"row_id": row_id, "held_until": held_until,
                                                  "until": until})

    async def release(self, row_ids: Sequence[int], *, held_until: datetime,
                      at: datetime) -> None:
        """Give back leased rows that were not sent (their chat was held up)."""
        if row_ids:
            await self._s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(list(row_ids)), OutboxMessage.status == "pending",
                       OutboxMessage.not_before == held_until)
                .values(not_before=at).execution_options(synchronize_session=False))

    async def locked(self, row_id: int) -> OutboxMessage | None:
        stmt = select(OutboxMessage).where(OutboxMessage.id == row_id).with_for_update()
        return await self._s.scalar(stmt.execution_options(populate_existing=True))

    async def fail_pending_for_chat(self, chat_id: int, error: str) -> int:
        """Everything still waiting for a chat the bot can no longer write to."""
        result = await self._s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.chat_id == chat_id, OutboxMessage.status == "pending")
            .values(status="failed", last_error=error[:256])
            .execution_options(synchronize_session=False))
        return result.rowcount

    async def pending_tickets(self, chat_id: int, also: int | None = None) -> list[int]:
        """The tickets the pending rows for a chat are about (and row ``also``'s, pending
        or not), in order."""
        cond = OutboxMessage.status == "pending"
        if also is not None:
            cond = cond | (OutboxMessage.id == also)
        stmt = (select(OutboxMessage.ticket_id)
                .where(OutboxMessage.chat_id == chat_id, OutboxMessage.ticket_id.is_not(None),
                       cond)
                .distinct().order_by(OutboxMessage.ticket_id))
        return list((await self._s.scalars(stmt)).all())

    async def retrying(self) -> tuple[int, datetime | None]:
        """How many pending rows failed at least once and wait to be tried again, and when
        the oldest of them was queued."""
        stmt = select(func.count(), func.min(OutboxMessage.created_at)).where(
            OutboxMessage.status == "pending", OutboxMessage.attempts > 0)
        count, oldest = (await self._s.execute(stmt)).one()
        return count or 0, oldest

    async def pending_card(self, ticket_id: int, chat_id: int) -> int | None:
        """The id of a ticket's card still waiting to be sent to a chat, if there is one."""
        stmt = select(func.min(OutboxMessage.id)).where(
            OutboxMessage.ticket_id == ticket_id, OutboxMessage.chat_id == chat_id,
            OutboxMessage.purpose == "card", OutboxMessage.status == "pending")
        return await self._s.scalar(stmt)


def _names_message_in(params: dict, chat_id: int) -> bool:
    """Whether the call acts on a message of ``chat_id`` given by its id (the "$card"
    placeholder is not an id: it is filled in from the ticket at send time)."""
    source = params.get("from_chat_id", chat_id)
    if source != chat_id:
        return False
    return (isinstance(params.get("message_id"), int)
            or isinstance(params.get("message_ids"), list))


def _readdressed(params: dict, old_chat_id: int, new_chat_id: int) -> dict:
    """A conversation row's params for the ticket's new group: its topic and its card there
    instead of any message or topic of the old chat."""
    out = dict(params)
    if out.get("chat_id") == old_chat_id:
        out["chat_id"] = new_chat_id
    if isinstance(out.get("message_thread_id"), int):
        out["message_thread_id"] = "$topic"
    reply = out.get("reply_parameters")
    if (isinstance(reply, dict) and isinstance(reply.get("message_id"), int)
            and reply.get("chat_id", old_chat_id) == old_chat_id):
        out["reply_parameters"] = {"message_id": "$card", "allow_sending_without_reply": True}
    return out
