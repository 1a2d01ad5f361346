"""The periodic housekeeping job (``bot.actions.maintenance``): running it late or twice is
harmless."""

from __future__ import annotations

from bot.actions import console, maintenance
from bot.context import Context


async def purge_job(context: Context) -> None:
    """Hourly (bot.app): old processed update ids, old wrong invitation codes, the web
    chat's idle sessions and the console's idle sessions and spent sign-ins go."""
    await maintenance.purge_processed_updates(context.runtime)
    await maintenance.forget_invite_guesses(context.runtime)
    await maintenance.forget_idle_web_sessions(context.runtime)
    await console.forget_old(context.runtime)
