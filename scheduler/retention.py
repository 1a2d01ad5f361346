"""The timer door of the retention sweep (``bot.actions.retention`` says what it does): the
day's sweep as a task, and the hourly job that arms it."""

from __future__ import annotations

from functools import partial

from bot.actions.retention import KIND, arm
from bot.actions.timers.retention import sweep
from bot.context import Context
from bot.runtime import Runtime
from scheduler.ticker import TaskHandler


async def ensure_job(context: Context) -> None:
    """The periodic job (bot.app): arms the day's sweep; idempotent."""
    await arm(context.runtime)


def retention_handlers(rt: Runtime) -> dict[str, TaskHandler]:
    return {KIND: partial(sweep, rt)}
