"""Check-up slots and bookings (issue 5)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Booking, CheckupSlot


class BookingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def slot(self, slot_id: int) -> CheckupSlot | None:
        return await self._s.get(CheckupSlot, slot_id)

    async def get(self, booking_id: int) -> Booking | None:
        return await self._s.get(Booking, booking_id)
