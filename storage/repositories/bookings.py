"""Check-up slots and bookings.

A place is taken and given back with one conditional UPDATE each, never read-then-write: on
PostgreSQL a second transaction taking the last place waits for the first one's row lock and
then finds ``booked < capacity`` false; SQLite has one writer at a time. The CHECK constraint
on ``checkup_slot`` (0 <= booked <= capacity) is the last line of defence.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    ACTIVE_BOOKING_STATUSES,
    Booking,
    CheckupSlot,
    CheckupWaiting,
    EnterpriseContact,
)

ACTIVE_BOOKING = ACTIVE_BOOKING_STATUSES


class BookingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def slot(self, slot_id: int) -> CheckupSlot | None:
        """The slot as the database has it now (its ``booked`` changes behind the session's
        back through the conditional updates below)."""
        return await self._s.get(CheckupSlot, slot_id, populate_existing=True)

    async def get(self, booking_id: int, *, for_update: bool = False) -> Booking | None:
        """With ``for_update``, the row as it is now, locked until the transaction ends (on
        PostgreSQL; SQLite has one writer anyway): a booking's changes take turns."""
        stmt = select(Booking).where(Booking.id == booking_id)
        if for_update:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return await self._s.scalar(stmt)

    async def of_ticket(self, ticket_id: int) -> Booking | None:
        return await self._s.scalar(select(Booking).where(Booking.ticket_id == ticket_id))

    def add_slot(self, slot: CheckupSlot) -> None:
        self._s.add(slot)

    def add(self, booking: Booking) -> None:
        self._s.add(booking)

    async def flush(self) -> None:
        await self._s.flush()

    async def refresh(self, row: object) -> None:
        await self._s.refresh(row)

    async def take_place(self, slot_id: int, earliest: datetime) -> bool:
        """One place in an open slot that starts no earlier than ``earliest``, atomically."""
        result = await self._s.execute(
            update(CheckupSlot)
            .where(CheckupSlot.id == slot_id, CheckupSlot.status == "open",
                   CheckupSlot.booked < CheckupSlot.capacity,
                   CheckupSlot.starts_at >= earliest)
            .values(booked=CheckupSlot.booked + 1)
            .execution_options(synchronize_session=False))
        return result.rowcount == 1

    async def free_place(self, slot_id: int) -> bool:
        result = await self._s.execute(
            update(CheckupSlot).where(CheckupSlot.id == slot_id, CheckupSlot.booked > 0)
            .values(booked=CheckupSlot.booked - 1)
            .execution_options(synchronize_session=False))
        return result.rowcount == 1

    async def close_slot(self, slot_id: int, desk_id: int) -> bool:
        result = await self._s.execute(
            update(CheckupSlot).where(CheckupSlot.id == slot_id,
                                      CheckupSlot.desk_id == desk_id,
                                      CheckupSlot.status == "open")
            .values(status="closed").execution_options(synchronize_session=False))
        return result.rowcount == 1

    async def slots_between(self, desk_id: int, start: datetime, end: datetime, *,
                            free_only: bool = False, open_only: bool = True,
                            limit: int | None = None,
                            not_of: int | None = None) -> Sequence[CheckupSlot]:
        """The desk's slots starting in [start, end), earliest first; with ``not_of``, only
        those where that enterprise holds no place."""
        stmt = select(CheckupSlot).where(CheckupSlot.desk_id == desk_id,
                                         CheckupSlot.starts_at >= start,
                                         CheckupSlot.starts_at < end)
        if open_only:
            stmt = stmt.where(CheckupSlot.status == "open")
        if free_only:
            stmt = stmt.where(CheckupSlot.booked < CheckupSlot.capacity)
        if not_of is not None:
            stmt = stmt.where(~select(Booking.id).where(
                Booking.slot_id == CheckupSlot.id, Booking.enterprise_id == not_of,
                Booking.status.in_(ACTIVE_BOOKING)).exists())
        stmt = stmt.order_by(CheckupSlot.starts_at, CheckupSlot.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return (await self._s.scalars(stmt.execution_options(populate_existing=True))).all()

    async def overlapping(self, desk_id: int, start: datetime, end: datetime) -> bool:
        """Whether an open slot of the desk overlaps [start, end)."""
        stmt = select(CheckupSlot.id).where(
            CheckupSlot.desk_id == desk_id, CheckupSlot.status == "open",
            and_(CheckupSlot.starts_at < end, CheckupSlot.ends_at > start)).limit(1)
        return await self._s.scalar(stmt) is not None

    async def active_in_slot(self, slot_id: int) -> Sequence[Booking]:
        stmt = select(Booking).where(Booking.slot_id == slot_id,
                                     Booking.status.in_(ACTIVE_BOOKING)).order_by(Booking.id)
        return (await self._s.scalars(stmt)).all()

    async def held_by(self, slot_id: int, enterprise_id: int) -> Booking | None:
        """The enterprise's active booking in this slot (it may hold only one)."""
        return await self._s.scalar(select(Booking).where(
            Booking.slot_id == slot_id, Booking.enterprise_id == enterprise_id,
            Booking.status.in_(ACTIVE_BOOKING)).limit(1))

    async def waiting(self, enterprise_id: int, *, lock: bool = False) -> CheckupWaiting | None:
        stmt = select(CheckupWaiting).where(CheckupWaiting.enterprise_id == enterprise_id)
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return await self._s.scalar(stmt)

    def add_waiting(self, row: CheckupWaiting) -> None:
        self._s.add(row)

    async def stop_waiting(self, enterprise_id: int) -> None:
        await self._s.execute(delete(CheckupWaiting)
                              .where(CheckupWaiting.enterprise_id == enterprise_id))

    async def contacts(self, enterprise_id: int) -> Sequence[EnterpriseContact]:
        stmt = (select(EnterpriseContact).where(EnterpriseContact.enterprise_id == enterprise_id)
                .order_by(EnterpriseContact.added_at, EnterpriseContact.user_id))
        return (await self._s.scalars(stmt)).all()

    async def of_enterprises(self, enterprise_ids: Sequence[int], *,
                             limit: int = 20) -> Sequence[tuple[Booking, CheckupSlot]]:
        """Bookings of these enterprises, the coming ones first, then the latest past ones."""
        if not enterprise_ids:
            return []
        stmt = (select(Booking, CheckupSlot).join(CheckupSlot, CheckupSlot.id == Booking.slot_id)
                .where(Booking.enterprise_id.in_(list(enterprise_ids)))
                .order_by(CheckupSlot.starts_at.desc(), Booking.id.desc()).limit(limit))
        return [(b, s) for b, s in (await self._s.execute(stmt)).all()]
