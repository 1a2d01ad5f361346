"""The retention sweep: with ``[privacy] personal_data_retention`` set, the personal data of
tickets closed or withdrawn longer ago than that is erased, as at a resident's request
(bot.services.privacy), and their cards are shown again without it.

Safe with several processes on one database, twice over: each local day's sweep is one
scheduled task whose key names the day (``retention:2026-11-24``), inserted only if new —
however many processes arm it, however often — and run by the ticker in exactly one of them
(``bot.actions.timers.retention``); and each ticket's erasure happens under its row lock and
only if it was not erased yet.
"""

from __future__ import annotations

from datetime import date

from bot.runtime import Runtime

KIND = "retention"


def task_key(day: date, part: int = 0) -> str:
    return f"{KIND}:{day.isoformat()}" + (f":{part}" if part else "")


async def arm(rt: Runtime) -> None:
    """Today's sweep, due now, unless it exists already (or no retention is configured).
    Commits."""
    if rt.config.privacy.personal_data_retention is None:
        return
    now = rt.clock.now()
    day = now.astimezone(rt.config.timezone).date()
    async with rt.uow() as uow:
        await uow.tasks.schedule(KIND, now, now, key=task_key(day), once=True,
                                 payload={"day": day.isoformat(), "part": 0})
        await uow.commit()
