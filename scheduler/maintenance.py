"""The periodic housekeeping job (``bot.actions.maintenance``): running it late or twice is
harmless."""

from __future__ import annotations

from bot.actions import maintenance
from bot.context import Context


async def purge_job(context: Context) -> None:
    """Hourly (bot.app): old processed update ids and old wrong invitation codes go."""
    await maintenance.purge_processed_updates(context.runtime)
    await maintenance.forget_invite_guesses(context.runtime)
