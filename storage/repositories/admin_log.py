"""The admin action log: who did what to the data, and when."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AdminAction


class AdminLogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    def add(self, action: AdminAction) -> None:
        self._s.add(action)

    async def since(self, since: datetime | None, *, limit: int | None = None
                    ) -> Sequence[AdminAction]:
        """Oldest first, from ``since`` on; with ``limit``, the latest that many."""
        stmt = select(AdminAction)
        if since is not None:
            stmt = stmt.where(AdminAction.at >= since)
        if limit is None:
            return (await self._s.scalars(stmt.order_by(AdminAction.at, AdminAction.id))).all()
        latest = (await self._s.scalars(
            stmt.order_by(AdminAction.at.desc(), AdminAction.id.desc()).limit(limit))).all()
        return list(reversed(latest))
