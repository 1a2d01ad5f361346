"""People who talk to the bot in private."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, user_id: int) -> User | None:
        return await self._s.get(User, user_id)

    async def seen(self, user_id: int, telegram_language_code: str | None,
                   now: datetime) -> User:
        """Fetch or create the user; a user who writes to us is reachable again."""
        user = await self._s.get(User, user_id)
        if user is None:
            user = User(id=user_id, language=None, telegram_language_code=telegram_language_code,
                        unreachable=False, created_at=now, updated_at=now)
            self._s.add(user)
            return user
        if user.telegram_language_code != telegram_language_code or user.unreachable:
            user.telegram_language_code = telegram_language_code
            user.unreachable = False
            user.updated_at = now
        return user
