"""The retention sweep: with ``[privacy] personal_data_retention`` set,
the personal data of tickets closed or withdrawn longer ago than that is erased, as at a
resident's request (bot.services.privacy), and their cards are shown again without it.

Safe with several processes on one database, twice over: each local day's sweep is one
scheduled task whose key names the day (``retention:2026-11-24``), inserted only if new —
however many processes arm it, however often — and run by the ticker in exactly one of them;
and each ticket's erasure happens under its row lock and only if it was not erased yet.

A sweep erases at most ``BATCH`` tickets in its transaction. When it found a full batch, it
schedules its continuation ``PAUSE`` later: a first sweep over years of tickets would
otherwise queue thousands of card edits at once, and a group's edits go out one after the
other, before its new cards.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from telegram.ext import ContextTypes

from bot.config import format_duration
from bot.runtime import Runtime
from bot.services import audit, privacy
from handlers.privacy import announce
from scheduler.ticker import TaskHandler
from storage.models import ScheduledTask
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

KIND = "retention"
BATCH = 100
PAUSE = timedelta(minutes=10)


def task_key(day: date, part: int = 0) -> str:
    return f"{KIND}:{day.isoformat()}" + (f":{part}" if part else "")


async def arm(rt: Runtime) -> None:
    """Today's sweep, due now, unless it exists already (or no retention is configured)."""
    if rt.config.privacy.personal_data_retention is None:
        return
    now = rt.clock.now()
    day = now.astimezone(rt.config.timezone).date()
    async with rt.uow() as uow:
        await uow.tasks.schedule(KIND, now, now, key=task_key(day), once=True,
                                 payload={"day": day.isoformat(), "part": 0})
        await uow.commit()


async def ensure_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """The periodic job (bot.app): arms the day's sweep; idempotent."""
    await arm(context.bot_data.runtime)


def retention_handlers(rt: Runtime) -> dict[str, TaskHandler]:
    async def sweep(uow: UnitOfWork, task: ScheduledTask) -> None:
        retention = rt.config.privacy.personal_data_retention
        if retention is None:  # switched off since the task was armed
            return
        erased = await privacy.erase_expired(uow, rt.clock, rt.config, limit=BATCH)
        for erasure in erased:
            await announce(rt, uow, erasure)
        if not erased:
            return
        audit.record(uow, rt.clock, audit.SYSTEM, "retention_erase",
                     tickets=len(erased), retention=format_duration(retention))
        if len(erased) >= BATCH:
            now = rt.clock.now()
            day = date.fromisoformat(task.payload.get("day") or now.date().isoformat())
            part = int(task.payload.get("part") or 0) + 1
            await uow.tasks.schedule(KIND, now + PAUSE, now, key=task_key(day, part),
                                     once=True, payload={"day": day.isoformat(),
                                                         "part": part})
        log.info("retention sweep: personal data of %d tickets erased", len(erased))

    return {KIND: sweep}
