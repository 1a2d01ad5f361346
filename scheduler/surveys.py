"""The follow-up survey's timers (ask, remind once, give up): bot.actions.timers.surveys."""

from __future__ import annotations

from functools import partial

from bot.actions.timers import surveys as timers
from bot.runtime import Runtime
from bot.services import surveys
from scheduler.ticker import TaskHandler


def survey_handlers(rt: Runtime) -> dict[str, TaskHandler]:
    return {surveys.ASK: partial(timers.ask, rt), surveys.REMIND: partial(timers.remind, rt),
            surveys.GIVE_UP: partial(timers.give_up, rt)}
