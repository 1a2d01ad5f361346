"""The outbox: Bot API calls waiting to be made (DESIGN §7)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxMessage


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

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

    async def retarget(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group migrated: what was waiting for the old id goes to the new one."""
        rows = await self.pending_for_chat(old_chat_id)
        for row in rows:
            params = dict(row.params)
            if params.get("chat_id") == old_chat_id:
                params["chat_id"] = new_chat_id
            row.chat_id, row.params = new_chat_id, params

    async def backlog(self) -> int:
        stmt = select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status == "pending")
        return await self._s.scalar(stmt) or 0

    async def mark(self, row_id: int, **values) -> None:
        await self._s.execute(update(OutboxMessage).where(OutboxMessage.id == row_id)
                              .values(**values))
