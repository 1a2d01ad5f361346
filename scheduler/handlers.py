"""Every kind of scheduled task and the function that does it."""

from __future__ import annotations

from bot.actions.timers.drafts import draft_handlers
from bot.runtime import Runtime
from scheduler.bookings import booking_handlers
from scheduler.claims import claim_handlers
from scheduler.deadlines import deadline_handlers
from scheduler.digests import digest_handlers
from scheduler.retention import retention_handlers
from scheduler.surveys import survey_handlers
from scheduler.ticker import TaskHandler


def task_handlers(rt: Runtime) -> dict[str, TaskHandler]:
    return {
        **claim_handlers(rt),
        **digest_handlers(rt),
        **deadline_handlers(rt),
        **survey_handlers(rt),
        **draft_handlers(rt),
        **booking_handlers(rt),
        **retention_handlers(rt),
    }
