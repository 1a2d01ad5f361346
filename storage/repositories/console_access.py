"""Who may use the console: sign-ins waiting for the bot's confirmation, and open sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ConsoleSession, ConsoleSignin, TicketEvent


class ConsoleAccessRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    def add_signin(self, signin: ConsoleSignin) -> None:
        self._s.add(signin)

    async def signin(self, nonce_hash: str, *, lock: bool = False) -> ConsoleSignin | None:
        stmt = select(ConsoleSignin).where(ConsoleSignin.nonce_hash == nonce_hash)
        if lock:
            stmt = stmt.with_for_update()
        return await self._s.scalar(stmt)

    async def signin_of_browser(self, browser_hash: str) -> ConsoleSignin | None:
        return await self._s.scalar(
            select(ConsoleSignin).where(ConsoleSignin.browser_hash == browser_hash)
            .order_by(ConsoleSignin.created_at.desc()).limit(1).with_for_update())

    def add_session(self, session: ConsoleSession) -> None:
        self._s.add(session)

    async def session(self, token_hash: str) -> ConsoleSession | None:
        return await self._s.get(ConsoleSession, token_hash)

    async def end_session(self, token_hash: str) -> None:
        await self._s.execute(delete(ConsoleSession)
                              .where(ConsoleSession.token_hash == token_hash))

    async def touch(self, token_hash: str, now: datetime) -> None:
        await self._s.execute(update(ConsoleSession)
                              .where(ConsoleSession.token_hash == token_hash)
                              .values(last_seen_at=now))

    async def forget(self, *, sessions_idle_since: datetime, signins_expired_before: datetime
                     ) -> int:
        gone = await self._s.execute(delete(ConsoleSession).where(
            ConsoleSession.last_seen_at < sessions_idle_since))
        old = await self._s.execute(delete(ConsoleSignin).where(or_(
            ConsoleSignin.expires_at < signins_expired_before)))
        return (gone.rowcount or 0) + (old.rowcount or 0)

    async def changes(self) -> int:
        """A number that grows whenever any ticket changes (every change is a ticket event)."""
        return await self._s.scalar(select(func.max(TicketEvent.id))) or 0
