"""The timer door of the periodic digests (``bot.actions.digests`` says what they are): the
task that sends a cadence's digest, and the hourly job that keeps the next ones scheduled."""

from __future__ import annotations

from functools import partial

from bot.actions.digests import KIND, schedule_upcoming
from bot.actions.timers.digests import send
from bot.context import Context
from bot.runtime import Runtime
from scheduler.ticker import TaskHandler


def digest_handlers(rt: Runtime) -> dict[str, TaskHandler]:
    return {KIND: partial(send, rt)}


async def ensure_job(context: Context) -> None:
    """The periodic job (bot.app). Each digest schedules the next; should one fail for good
    (its retries spent), this makes sure the cadence goes on all the same (idempotent: each
    is scheduled once)."""
    await schedule_upcoming(context.runtime)
