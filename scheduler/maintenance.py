"""Housekeeping that needs no durability: running it late or twice is harmless."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.clock import Clock
from bot.services import enterprises
from storage.db import Database
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)


async def purge_processed_updates(db: Database, clock: Clock, retention: timedelta) -> int:
    """Forget update ids older than the retention.

    Telegram redelivers an update only until the bot confirms it (minutes, or a restart), so a
    few days of ids are plenty; after a week of silence Telegram may even start ids afresh.
    """
    async with UnitOfWork(db) as uow:
        removed = await uow.updates.purge_before(clock.now() - retention)
        await uow.session.commit()
    if removed:
        log.info("forgot %d processed update ids", removed)
    return removed


async def forget_invite_guesses(db: Database, clock: Clock) -> int:
    """Wrong invitation codes older than the window they count in: of no use any more, and a
    person's id with them (each person's own are removed when they guess again)."""
    async with UnitOfWork(db) as uow:
        removed = await uow.enterprises.forget_guesses_before(clock.now()
                                                              - enterprises.JOIN_WINDOW)
        await uow.session.commit()
    return removed
