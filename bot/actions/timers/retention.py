"""A day's retention sweep falling due (a timer action: the ticker commits it with the task's
"done", so it never commits itself).

A sweep erases at most ``BATCH`` tickets in its transaction. When it found a full batch, it
schedules its continuation ``PAUSE`` later: a first sweep over years of tickets would
otherwise queue thousands of card edits at once, and a group's edits go out one after the
other, before its new cards.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from bot.actions.privacy import announce
from bot.actions.retention import KIND, task_key
from bot.config import format_duration
from bot.runtime import Runtime
from bot.services import audit, privacy
from storage.models import ScheduledTask
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

BATCH = 100
PAUSE = timedelta(minutes=10)


async def sweep(rt: Runtime, uow: UnitOfWork, task: ScheduledTask) -> None:
    retention = rt.config.privacy.personal_data_retention
    if retention is None:  # switched off since the task was armed
        return
    # The web chat's copies of what residents wrote and were told, as old (bot.webchat).
    await uow.web.forget_old_conversations(rt.clock.now() - retention)
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
                                 once=True, payload={"day": day.isoformat(), "part": part})
    log.info("retention sweep: personal data of %d tickets erased", len(erased))
