"""Housekeeping that needs no durability: running it late or twice is harmless. Periodic jobs
(``scheduler.maintenance``), each committing its own unit of work."""

from __future__ import annotations

import logging

from bot.runtime import Runtime
from bot.services import enterprises

log = logging.getLogger(__name__)


async def purge_processed_updates(rt: Runtime) -> int:
    """Forget update ids older than ``runtime.processed_update_retention``.

    Telegram redelivers an update only until the bot confirms it (minutes, or a restart), so a
    few days of ids are plenty; after a week of silence Telegram may even start ids afresh.
    """
    async with rt.uow() as uow:
        removed = await uow.updates.purge_before(
            rt.clock.now() - rt.config.runtime.processed_update_retention)
        await uow.session.commit()  # a job's, not an update's: nothing to record
    if removed:
        log.info("forgot %d processed update ids", removed)
    return removed


async def forget_invite_guesses(rt: Runtime) -> int:
    """Wrong invitation codes older than the window they count in: of no use any more, and a
    person's id with them (each person's own are removed when they guess again)."""
    async with rt.uow() as uow:
        removed = await uow.enterprises.forget_guesses_before(rt.clock.now()
                                                              - enterprises.JOIN_WINDOW)
        await uow.session.commit()  # a job's, not an update's: nothing to record
    return removed


async def forget_idle_web_sessions(rt: Runtime) -> int:
    """Browsers' sessions of the web chat unused for ``[web] session_idle``: their cookies
    open nothing any more (the person's conversation stays, and their recovery code opens it)."""
    async with rt.uow() as uow:
        removed = await uow.web.forget_sessions_idle_since(rt.clock.now()
                                                           - rt.config.web.session_idle)
        await uow.session.commit()  # a job's, not an update's: nothing to record
    return removed
