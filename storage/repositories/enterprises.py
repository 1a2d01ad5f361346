"""Enterprises and their contacts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Enterprise, EnterpriseContact, InviteGuess, OrgNode

# The org-tree levels an enterprise belongs to (its park, street or town).
PLACE_LEVELS = ("street", "town", "park")


class EnterpriseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, enterprise_id: int, *, lock: bool = False) -> Enterprise | None:
        """With `lock`, changes to its contacts take turns (on PostgreSQL; SQLite writers
        always do), so two last contacts leaving at once cannot both go."""
        if lock and self._s.get_bind().dialect.name == "postgresql":
            return await self._s.scalar(select(Enterprise).where(Enterprise.id == enterprise_id)
                                        .with_for_update())
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

    async def by_credit_code(self, credit_code: str) -> Enterprise | None:
        return await self._s.scalar(select(Enterprise)
                                    .where(Enterprise.credit_code == credit_code))

    async def by_invite_code(self, invite_code: str) -> Enterprise | None:
        return await self._s.scalar(select(Enterprise)
                                    .where(Enterprise.invite_code == invite_code))

    async def contacts(self, enterprise_id: int) -> Sequence[EnterpriseContact]:
        """Its contacts, longest-standing first."""
        stmt = (select(EnterpriseContact)
                .where(EnterpriseContact.enterprise_id == enterprise_id)
                .order_by(EnterpriseContact.added_at, EnterpriseContact.user_id))
        return (await self._s.scalars(stmt)).all()

    async def contact_counts(self, enterprise_ids: Iterable[int]) -> dict[int, int]:
        ids = list(enterprise_ids)
        if not ids:
            return {}
        stmt = (select(EnterpriseContact.enterprise_id, func.count())
                .where(EnterpriseContact.enterprise_id.in_(ids))
                .group_by(EnterpriseContact.enterprise_id))
        return {enterprise_id: count for enterprise_id, count in await self._s.execute(stmt)}

    async def latest_contact(self, user_id: int) -> EnterpriseContact | None:
        """The person's most recent contact record (to offer the same name and number)."""
        stmt = (select(EnterpriseContact).where(EnterpriseContact.user_id == user_id)
                .order_by(EnterpriseContact.added_at.desc()).limit(1))
        return await self._s.scalar(stmt)

    async def places(self) -> Sequence[OrgNode]:
        """The parks, streets and towns an enterprise can belong to."""
        stmt = select(OrgNode).where(OrgNode.level.in_(PLACE_LEVELS)).order_by(OrgNode.code)
        return (await self._s.scalars(stmt)).all()

    def add(self, enterprise: Enterprise) -> None:
        self._s.add(enterprise)

    def add_contact(self, contact: EnterpriseContact) -> None:
        self._s.add(contact)

    async def remove_contact(self, enterprise_id: int, user_id: int) -> bool:
        result = await self._s.execute(delete(EnterpriseContact).where(
            EnterpriseContact.enterprise_id == enterprise_id,
            EnterpriseContact.user_id == user_id))
        return bool(result.rowcount)

    async def flush(self) -> None:
        await self._s.flush()

    # -- wrong invitation codes ------------------------------------------------------------------
    async def guesses_since(self, user_id: int, since: datetime) -> list[datetime]:
        """When the person typed a wrong invitation code after ``since``, oldest first."""
        stmt = (select(InviteGuess.at).where(InviteGuess.user_id == user_id,
                                             InviteGuess.at > since)
                .order_by(InviteGuess.at))
        return list((await self._s.scalars(stmt)).all())

    async def record_guess(self, user_id: int, at: datetime, *, forget_before: datetime) -> None:
        """One more wrong code; the person's guesses older than ``forget_before`` go."""
        await self._s.execute(delete(InviteGuess).where(InviteGuess.user_id == user_id,
                                                        InviteGuess.at <= forget_before))
        self._s.add(InviteGuess(user_id=user_id, at=at))
        await self._s.flush()

    async def forget_guesses_before(self, moment: datetime) -> int:
        result = await self._s.execute(delete(InviteGuess).where(InviteGuess.at <= moment))
        return result.rowcount or 0
