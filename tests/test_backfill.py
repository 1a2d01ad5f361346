"""Tickets without timers (from before an upgrade) get them at start-up, once."""

from __future__ import annotations

from bot.actions.backfill import arm_missing
from bot.services import tickets
from storage.models import ScheduledTask, Ticket
from tests.harness import BotEnv


async def _ticket(bot: BotEnv, status: str) -> int:
    rt = bot.runtime
    async with rt.uow() as uow:
        grid = await uow.nodes.by_code("SFQ-DH-01-G1")
        ticket = await tickets.create(uow, rt.clock, rt.config, tickets.NewReport(
            category=rt.config.category("sanitation"), description="路灯坏了一个星期",
            reporter_id=840_001, language="zh_Hans", grid_id=grid.id))
        ticket.status = status
        if status == "resolved":
            ticket.resolution = "已修好"
        await uow.session.flush()
        # As if written before timers existed.
        await uow.session.execute(ScheduledTask.__table__.delete().where(
            ScheduledTask.ticket_id == ticket.id))
        await uow.commit()
        return ticket.id


async def test_open_and_resolved_tickets_without_timers_get_them_once(bot: BotEnv) -> None:
    open_id = await _ticket(bot, "open")
    held_id = await _ticket(bot, "claimed")
    resolved_id = await _ticket(bot, "resolved")
    assert await arm_missing(bot.runtime) == 3
    assert await arm_missing(bot.runtime) == 0
    async with bot.runtime.uow() as uow:
        kinds = {tid: {t.kind for t in await uow.tasks.pending(ticket_id=tid)}
                 for tid in (open_id, held_id, resolved_id)}
        resolved: Ticket = await uow.tickets.get(resolved_id)
        surveys = await uow.surveys.of_ticket(resolved.id)
    assert kinds[open_id] == {*tickets.CLAIM_TIMERS, *tickets.DEADLINE_TIMERS}
    assert kinds[held_id] == set(tickets.DEADLINE_TIMERS)
    assert kinds[resolved_id] == {"survey_ask"}
    assert [s.user_id for s in surveys] == [840_001]
