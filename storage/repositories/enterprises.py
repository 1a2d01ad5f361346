"""Enterprises and their contacts (issue 5)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Enterprise, EnterpriseContact


class EnterpriseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, enterprise_id: int) -> Enterprise | None:
        return await self._s.get(Enterprise, enterprise_id)

    async def of_user(self, user_id: int) -> Sequence[Enterprise]:
        """The enterprises this person may act for, in the order they joined them."""
        stmt = (select(Enterprise).join(EnterpriseContact,
                                        EnterpriseContact.enterprise_id == Enterprise.id)
                .where(EnterpriseContact.user_id == user_id)
                .order_by(EnterpriseContact.added_at, Enterprise.id))
        return (await self._s.scalars(stmt)).all()

    async def contact(self, enterprise_id: int, user_id: int) -> EnterpriseContact | None:
        """The person's contact record, if they may act for this enterprise."""
        return await self._s.get(EnterpriseContact, (enterprise_id, user_id))
