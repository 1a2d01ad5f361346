"""People who talk to the bot in private.

Every private update is answered in the person's language, which is on their row. A
``LanguageCache`` (one per Runtime, that is per process) remembers, per person, their choice
and the Telegram language code their last update carried, once the row is known to hold just
that: while a person's updates carry the same code, the row is neither read nor written.

* Nothing lives only here: a cached entry is what the committed row says. An update that has
  to change the row (a first update, a new Telegram language code, a person marked
  unreachable) reads and writes it, and only a later update that finds the row unchanged
  caches it.
* ``/language`` on this process drops the entry when the choice is made and again when it
  commits; the choice itself is written to the row.
* Another process (another instance) does not hear of it: entries expire ``ttl`` seconds after
  they were read, so a choice made through another instance is followed here within ``ttl``
  seconds. So is a person marked unreachable elsewhere (the outbox's failed delivery), who
  writes again: their row is read and marked reachable within ``ttl`` seconds (Telegram also
  says so at once when they unblock the bot, and that clears the mark).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import User


class LanguageCache:
    """user id → (language choice, Telegram language code), each for ``ttl`` seconds."""

    def __init__(self, *, ttl: float = 30.0, max_entries: int = 200_000,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._entries: dict[int, tuple[str | None, str | None, float]] = {}

    def get(self, user_id: int, telegram_code: str | None) -> tuple[str | None] | None:
        """``(choice,)`` when known for this Telegram language code, else None."""
        entry = self._entries.get(user_id)
        if entry is None:
            return None
        choice, code, until = entry
        if code != telegram_code or self._monotonic() >= until:
            return None
        return (choice,)

    def put(self, user_id: int, choice: str | None, telegram_code: str | None) -> None:
        if len(self._entries) >= self.max_entries:
            now = self._monotonic()
            self._entries = {key: entry for key, entry in self._entries.items()
                             if entry[2] > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[user_id] = (choice, telegram_code, self._monotonic() + self.ttl)

    def forget(self, user_id: int) -> None:
        self._entries.pop(user_id, None)


class UserRepository:
    def __init__(self, session: AsyncSession, languages: LanguageCache | None = None) -> None:
        self._s = session
        self._languages = languages

    async def get(self, user_id: int) -> User | None:
        return await self._s.get(User, user_id)

    async def seen(self, user_id: int, telegram_language_code: str | None,
                   now: datetime) -> User:
        """Fetch or create the user; a user who writes to us is reachable again."""
        user, _ = await self._seen(user_id, telegram_language_code, now)
        return user

    async def _seen(self, user_id: int, telegram_language_code: str | None,
                    now: datetime) -> tuple[User, bool]:
        user = await self._s.get(User, user_id)
        if user is None:
            user = User(id=user_id, language=None, telegram_language_code=telegram_language_code,
                        unreachable=False, created_at=now, updated_at=now)
            self._s.add(user)
            return user, True
        if user.telegram_language_code != telegram_language_code or user.unreachable:
            user.telegram_language_code = telegram_language_code
            user.unreachable = False
            user.updated_at = now
            return user, True
        return user, False

    async def seen_choice(self, user_id: int, telegram_language_code: str | None,
                          now: datetime) -> str | None:
        """``seen``, returning only the person's language choice (None: follow Telegram's
        code): from the cache while their row is known not to need a change."""
        if self._languages is not None:
            hit = self._languages.get(user_id, telegram_language_code)
            if hit is not None:
                return hit[0]
        user, changed = await self._seen(user_id, telegram_language_code, now)
        languages = self._languages
        if languages is not None:
            if not changed and user not in self._s.dirty:
                languages.put(user_id, user.language, telegram_language_code)
            else:
                # New, or noted as writing again: known as committed, once it is.
                event.listen(self._s.sync_session, "after_commit",
                             lambda _session: languages.put(user_id, user.language,
                                                            telegram_language_code),
                             once=True)
        return user.language

    def language_changes(self, user_id: int) -> None:
        """The person's language choice is being changed in this unit of work: forget what
        the cache holds now and once it commits."""
        languages = self._languages
        if languages is None:
            return
        languages.forget(user_id)
        event.listen(self._s.sync_session, "after_commit",
                     lambda _session: languages.forget(user_id), once=True)
