"""The check-up timers' task kinds and their actions (bot.actions.timers.bookings)."""

from __future__ import annotations

from functools import partial

from bot.actions.timers import bookings as timers
from bot.runtime import Runtime
from bot.services import bookings
from scheduler.ticker import TaskHandler


def booking_handlers(rt: Runtime) -> dict[str, TaskHandler]:
    return {bookings.REMIND: partial(timers.remind, rt), bookings.AFTER: partial(timers.after, rt)}
