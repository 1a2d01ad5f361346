"""Periodic digests, at the programme's own cadence: daily to grid, community and desk groups,
weekly to street groups, monthly to the district's, at ``digests.send_at`` local time.

Each occurrence is one scheduled task keyed by cadence and send day (``digest:daily:2026-11-24``)
and inserted only if its key is new, so however many processes start, and however often, each
digest exists once and runs once. Start-up makes sure the next occurrence of each cadence
exists; each occurrence, when it runs (``bot.actions.timers.digests``), adds the one after it.
A digest that fell due while the bot was down runs when it is back; if the bot was down so
long that a later one is due too, only the latest is sent (yesterday's numbers, not those of
a week ago).
"""

from __future__ import annotations

from datetime import date, datetime

from bot.config import Config
from bot.runtime import Runtime
from bot.services import stats
from bot.services.stats import Cadence
from storage.uow import UnitOfWork

KIND = "digest"


def task_key(cadence: Cadence, day: date) -> str:
    return f"{KIND}:{cadence.value}:{day.isoformat()}"


async def arm(uow: UnitOfWork, config: Config, cadence: Cadence, due: datetime,
              now: datetime) -> None:
    """The digest of this cadence sent at ``due``, unless it exists already (in the caller's
    unit of work)."""
    day = stats.send_day(due, config)
    await uow.tasks.schedule(KIND, due, now, key=task_key(cadence, day), once=True,
                             payload={"cadence": cadence.value, "day": day.isoformat()})


async def schedule_upcoming(rt: Runtime) -> None:
    """At start-up, and hourly: the next digest of every cadence is scheduled (a no-op if it
    is). Commits."""
    now = rt.clock.now()
    async with rt.uow() as uow:
        for cadence in Cadence:
            await arm(uow, rt.config, cadence, stats.next_send(cadence, now, rt.config), now)
        await uow.commit()
