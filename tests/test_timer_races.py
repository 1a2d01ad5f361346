"""A person's action racing a timer that is running for the same ticket, on PostgreSQL.

The person's update locks the ticket and then cancels its timers; a running timer holds its
task row and then locks the ticket. The cancel skips the running task instead of waiting for
it (no deadlock), and the timer, once it has the ticket, finds that it no longer applies."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial

import pytest
from sqlalchemy import select

import tests.test_survey as survey_journey
from bot.actions.timers import deadlines
from bot.services import surveys, tickets
from scheduler.surveys import survey_handlers
from storage.models import ScheduledTask
from tests.harness import BotEnv
from tests.test_deadlines import WORKER, _claim, _open, _run_until, _ticket


async def _race(bot: BotEnv, task_id: int, handler, person) -> dict[str, str]:
    """The timer takes its task row, the person acts meanwhile, then the timer goes on."""
    rt = bot.runtime
    results: dict[str, str] = {}
    taken = asyncio.Event()

    async def timer() -> None:
        async with rt.uow() as uow:
            task = await uow.session.scalar(select(ScheduledTask).where(
                ScheduledTask.id == task_id).with_for_update())
            taken.set()
            await asyncio.sleep(0.3)  # the person's update runs meanwhile
            await handler(uow, task)
            task.status = "done"
            await uow.commit()
            results["timer"] = "ok"

    async def act() -> None:
        await taken.wait()
        async with rt.uow() as uow:
            await person(uow)
            await uow.commit()
            results["person"] = "ok"

    await asyncio.wait_for(asyncio.gather(timer(), act()), timeout=20)
    return results


async def test_resolving_while_the_overdue_escalation_runs(bot: BotEnv, db) -> None:
    if db.is_sqlite:
        pytest.skip("one writer at a time on SQLite: nothing runs beside the update")
    rt = bot.runtime
    ticket_id = await _open(bot)
    await _claim(bot, ticket_id)
    before = await _ticket(bot, ticket_id)
    await _run_until(bot, before.deadline_at + timedelta(minutes=1))  # remind, overdue
    async with rt.uow() as uow:
        [escalate] = await uow.tasks.pending(ticket_id=ticket_id, kind="deadline_escalate")
    bot.clock.advance(escalate.due_at - bot.clock.now())

    async def resolve(uow) -> None:
        await tickets.resolve(uow, rt.clock, ticket_id, WORKER.id, "已处理")

    results = await _race(bot, escalate.id, partial(deadlines.escalate, rt),
                          resolve)
    assert results == {"timer": "ok", "person": "ok"}
    after = await _ticket(bot, ticket_id)
    # The resolution stands; the escalation found nothing left to escalate.
    assert (after.status, after.node_id) == ("resolved", before.node_id)


async def test_answering_while_the_survey_gives_up(bot: BotEnv, db) -> None:
    if db.is_sqlite:
        pytest.skip("one writer at a time on SQLite: nothing runs beside the update")
    rt = bot.runtime
    ticket_id = await survey_journey._resolved(bot)
    await survey_journey._at(bot, survey_journey.local("2026-11-23 11:00"))
    [survey] = await survey_journey._surveys(bot, ticket_id)
    async with rt.uow() as uow:
        await surveys.set_solved(uow, survey.id, survey_journey.RESIDENT.id, True)
        await uow.commit()
        [give_up] = await uow.tasks.pending(ticket_id=ticket_id, kind=surveys.GIVE_UP)
    bot.clock.advance(give_up.due_at - bot.clock.now())

    async def answer(uow) -> None:
        await surveys.set_score(uow, rt.clock, rt.config, survey.id,
                                survey_journey.RESIDENT.id, 5)

    results = await _race(bot, give_up.id, survey_handlers(rt)[surveys.GIVE_UP], answer)
    assert results == {"timer": "ok", "person": "ok"}
    ticket = await _ticket(bot, ticket_id)
    [survey] = await survey_journey._surveys(bot, ticket_id)
    assert (ticket.status, ticket.close_reason) == ("closed", "rated")
    assert (survey.status, survey.score) == ("answered", 5)
