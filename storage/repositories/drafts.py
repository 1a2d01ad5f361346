"""Conversation drafts: one row per person and flow."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Draft

# Drafts of questions a worker answers in a group (a resolution note, a transfer reason):
# they must never capture the same person's private conversation.
GROUP_FLOWS = ("resolve", "transfer")


class DraftRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, user_id: int, flow: str) -> Draft | None:
        return await self._s.scalar(select(Draft).where(Draft.user_id == user_id,
                                                        Draft.flow == flow))

    async def any_of(self, user_id: int) -> Draft | None:
        """The person's newest private conversation (group questions are not one)."""
        stmt = select(Draft).where(Draft.user_id == user_id, Draft.flow.not_in(GROUP_FLOWS))
        stmt = stmt.order_by(Draft.updated_at.desc())
        return await self._s.scalar(stmt.limit(1))

    async def start(self, user_id: int, flow: str, step: str, data: dict,
                    now: datetime) -> Draft:
        await self.discard(user_id, flow)
        draft = Draft(user_id=user_id, flow=flow, step=step, data=data, created_at=now,
                      updated_at=now)
        self._s.add(draft)
        await self._s.flush()
        return draft

    def save(self, draft: Draft, *, step: str, data: dict, now: datetime) -> None:
        # A new dict each time: the JSON column is not mutation-tracked.
        draft.step, draft.data, draft.updated_at = step, dict(data), now

    async def discard(self, user_id: int, flow: str) -> None:
        await self._s.execute(delete(Draft).where(Draft.user_id == user_id, Draft.flow == flow))
