"""The periodic housekeeping job (``bot.actions.maintenance``): running it late or twice is
harmless."""

from __future__ import annotations

from bot.actions import maintenance
from bot.context import Context


async def purge_job(context: Context) -> None:
    """Hourly (bot.app): old processed update ids, old wrong invitation codes and the web
    chat's idle sessions go."""
    await maintenance.purge_processed_updates(context.runtime)
    await maintenance.forget_invite_guesses(context.runtime)
    await maintenance.forget_idle_web_sessions(context.runtime)
