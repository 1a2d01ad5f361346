"""Every kind of scheduled task and the function that does it."""

from __future__ import annotations

from functools import partial

from bot.actions.timers import claims, deadlines
from bot.actions.timers.drafts import draft_handlers
from bot.runtime import Runtime
from scheduler.bookings import booking_handlers
from scheduler.digests import digest_handlers
from scheduler.retention import retention_handlers
from scheduler.surveys import survey_handlers
from scheduler.ticker import TaskHandler


def task_handlers(rt: Runtime) -> dict[str, TaskHandler]:
    return {
        "claim_remind": partial(claims.remind, rt),
        "claim_escalate": partial(claims.escalate, rt),
        **digest_handlers(rt),
        "deadline_remind": partial(deadlines.remind, rt),
        "deadline_overdue": partial(deadlines.overdue, rt),
        "deadline_escalate": partial(deadlines.escalate, rt),
        **survey_handlers(rt),
        **draft_handlers(rt),
        **booking_handlers(rt),
        **retention_handlers(rt),
    }
