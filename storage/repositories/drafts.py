"""Conversation drafts: one row per person and flow, and at most one private conversation per
person (DESIGN §3).

A person talks to the bot in one private conversation at a time: starting a private flow (a
report, adding information, a withdrawal) discards that person's other private drafts, so an
answer can never be taken by a flow the person has moved away from. Group questions (a
resolution note, a transfer reason) are not private conversations and are never touched.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Draft

# Drafts of questions a worker answers in a group (a resolution note, a transfer reason):
# they must never capture the same person's private conversation.
GROUP_FLOWS = ("resolve", "transfer")


def is_private(flow: str) -> bool:
    return flow not in GROUP_FLOWS


class DraftRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, user_id: int, flow: str) -> Draft | None:
        return await self._s.scalar(select(Draft).where(Draft.user_id == user_id,
                                                        Draft.flow == flow))

    async def any_of(self, user_id: int) -> Draft | None:
        """The person's private conversation (group questions are not one). Rows written
        before the one-conversation rule may still be several: the newest counts."""
        stmt = select(Draft).where(Draft.user_id == user_id, Draft.flow.not_in(GROUP_FLOWS))
        stmt = stmt.order_by(Draft.updated_at.desc(), Draft.id.desc())
        return await self._s.scalar(stmt.limit(1))

    async def start(self, user_id: int, flow: str, step: str, data: dict,
                    now: datetime) -> Draft:
        """A fresh draft of `flow`; for a private flow, the person's only private one."""
        await self.discard(user_id, flow)
        if is_private(flow):
            await self.discard_other_private(user_id, flow)
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

    async def discard_other_private(self, user_id: int, keep: str) -> list[str]:
        """Remove the person's private drafts other than `keep`; returns their flows."""
        stmt = select(Draft.flow).where(Draft.user_id == user_id, Draft.flow != keep,
                                        Draft.flow.not_in(GROUP_FLOWS))
        flows = list((await self._s.scalars(stmt)).all())
        if flows:
            await self._s.execute(delete(Draft).where(Draft.user_id == user_id,
                                                      Draft.flow.in_(flows)))
        return flows
