"""The web chat's people, their browsers' sessions, their conversations and their photos."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    OPEN_STATUSES,
    WEB_USER_BASE,
    Ticket,
    WebEntry,
    WebFile,
    WebResident,
    WebSession,
)


class WebRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    # -- people and sessions ----------------------------------------------------------------

    async def new_resident(self, now: datetime) -> WebResident:
        resident = WebResident(last_seq=0, created_at=now)
        self._s.add(resident)
        await self._s.flush()
        return resident

    async def resident(self, resident_id: int) -> WebResident | None:
        return await self._s.get(WebResident, resident_id)

    async def resident_by_recovery(self, recovery_hash: str) -> WebResident | None:
        return await self._s.scalar(
            select(WebResident).where(WebResident.recovery_hash == recovery_hash))

    async def set_recovery(self, resident: WebResident, recovery_hash: str) -> bool:
        """False if the hash is taken (a code drawn twice: draw again)."""
        try:
            async with self._s.begin_nested():
                resident.recovery_hash = recovery_hash
                await self._s.flush()
        except IntegrityError:
            return False
        return True

    def add_session(self, session: WebSession) -> None:
        self._s.add(session)

    async def session(self, token_hash: str) -> WebSession | None:
        return await self._s.get(WebSession, token_hash)

    async def drop_session(self, token_hash: str) -> None:
        await self._s.execute(delete(WebSession).where(WebSession.token_hash == token_hash))

    async def rekey_session(self, old_hash: str, new_hash: str) -> None:
        await self._s.execute(update(WebSession).where(WebSession.token_hash == old_hash)
                              .values(token_hash=new_hash, rotated=True))

    async def touch_session(self, token_hash: str, now: datetime) -> None:
        await self._s.execute(update(WebSession).where(WebSession.token_hash == token_hash)
                              .values(last_seen_at=now))

    async def place_of(self, resident_id: int) -> str | None:
        """The code of the place on the poster the person last opened the chat from."""
        return await self._s.scalar(
            select(WebSession.at_code).where(WebSession.resident_id == resident_id,
                                             WebSession.at_code.is_not(None))
            .order_by(WebSession.last_seen_at.desc()).limit(1))

    async def forget_sessions_idle_since(self, moment: datetime) -> int:
        result = await self._s.execute(delete(WebSession)
                                       .where(WebSession.last_seen_at < moment))
        return result.rowcount or 0

    # -- the conversation -------------------------------------------------------------------

    async def append(self, resident_id: int, *, sender: str, body: dict, now: datetime,
                     edit_of: int | None = None, outbox_id: int | None = None) -> WebEntry:
        """A new entry at the end of the conversation; the resident's row stays locked until
        the commit, so entries commit in the order of their numbers."""
        resident = await self._s.scalar(select(WebResident).where(WebResident.id == resident_id)
                                        .with_for_update())
        if resident is None:
            raise LookupError("no such web resident")
        resident.last_seq += 1
        seq = resident.last_seq
        # A message is known by the number it came in with; an edit names the one it changes.
        entry = WebEntry(resident_id=resident_id, seq=seq, edit=edit_of is not None,
                         message_id=seq if edit_of is None else edit_of, sender=sender,
                         body=body, outbox_id=outbox_id, created_at=now)
        self._s.add(entry)
        await self._s.flush()
        return entry

    async def delivered(self, outbox_id: int) -> WebEntry | None:
        return await self._s.scalar(select(WebEntry).where(WebEntry.outbox_id == outbox_id))

    async def message(self, resident_id: int, message_id: int) -> WebEntry | None:
        """The message as first written (not its edits)."""
        return await self._s.scalar(select(WebEntry).where(
            WebEntry.resident_id == resident_id, WebEntry.message_id == message_id,
            WebEntry.edit.is_(False)))

    async def latest(self, resident_id: int, message_id: int) -> WebEntry | None:
        """The message as it shows now: its newest edit, or itself."""
        return await self._s.scalar(
            select(WebEntry).where(WebEntry.resident_id == resident_id,
                                   WebEntry.message_id == message_id)
            .order_by(WebEntry.seq.desc()).limit(1))

    async def entries_after(self, resident_id: int, after: int,
                            limit: int = 500) -> Sequence[WebEntry]:
        return (await self._s.scalars(
            select(WebEntry).where(WebEntry.resident_id == resident_id, WebEntry.seq > after)
            .order_by(WebEntry.seq).limit(limit))).all()

    async def last_seq(self, resident_id: int) -> int:
        return await self._s.scalar(select(WebResident.last_seq)
                                    .where(WebResident.id == resident_id)) or 0

    async def forget_conversation(self, resident_id: int) -> None:
        """What the person wrote and was told, and their photos (their data erased)."""
        await self._s.execute(delete(WebEntry).where(WebEntry.resident_id == resident_id))
        await self._s.execute(delete(WebFile).where(WebFile.resident_id == resident_id))

    async def forget_old_conversations(self, moment: datetime) -> int:
        """Entries and photos older than ``moment`` of the people with no open ticket (the
        retention of personal data; an open ticket's conversation is still in use)."""
        busy = select(Ticket.reporter_id - WEB_USER_BASE).where(
            Ticket.reporter_id >= WEB_USER_BASE, Ticket.status.in_(OPEN_STATUSES))
        entries = await self._s.execute(delete(WebEntry).where(
            WebEntry.created_at < moment, WebEntry.resident_id.not_in(busy)))
        files = await self._s.execute(delete(WebFile).where(
            WebFile.created_at < moment, WebFile.resident_id.not_in(busy)))
        return (entries.rowcount or 0) + (files.rowcount or 0)

    # -- photos -----------------------------------------------------------------------------

    def add_file(self, file: WebFile) -> None:
        self._s.add(file)

    async def file(self, token: str) -> WebFile | None:
        return await self._s.get(WebFile, token)


def resident_of(user_id: int) -> int:
    """The web resident behind a web user id."""
    return user_id - WEB_USER_BASE


def user_of(resident_id: int) -> int:
    return WEB_USER_BASE + resident_id
