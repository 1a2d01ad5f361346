"""Which Telegram updates were handled already (de-duplication by update_id)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ProcessedUpdate


class UpdateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def is_processed(self, update_id: int) -> bool:
        stmt = select(ProcessedUpdate.update_id).where(ProcessedUpdate.update_id == update_id)
        return await self._s.scalar(stmt) is not None

    async def record(self, update_id: int, at: datetime) -> bool:
        """Record the id in its own savepoint; False when it was recorded already."""
        try:
            async with self._s.begin_nested():
                self._s.add(ProcessedUpdate(update_id=update_id, processed_at=at))
        except IntegrityError:
            return False
        return True

    async def purge_before(self, moment: datetime) -> int:
        result = await self._s.execute(
            delete(ProcessedUpdate).where(ProcessedUpdate.processed_at < moment))
        return result.rowcount or 0
