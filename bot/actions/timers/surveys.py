"""The follow-up survey's timers: ask, remind once, give up (bot.services.surveys).

The questions go to residents, so they never go out in quiet hours: they are scheduled
outside them, and a task that runs late (the bot was down) and finds itself inside quiet hours
puts itself off until they end, as a new task, since the running one is marked done.

Each gets ``(uow, task)`` from the scheduler's ticker, which owns the transaction: the
task's effects and its "done" commit together. They never commit themselves.
"""

from __future__ import annotations

from bot.actions.notifier import Notifier
from bot.actions.survey import tell_workers
from bot.delivery.render import markup_json
from bot.runtime import Runtime
from bot.services import surveys
from bot.views import survey as views
from storage.models import ScheduledTask, Ticket
from storage.uow import UnitOfWork


async def _put_off_if_quiet(rt: Runtime, uow: UnitOfWork, task: ScheduledTask) -> bool:
    now = rt.clock.now()
    allowed = surveys.not_quiet(rt.config, now)
    if allowed == now:
        return False
    await uow.tasks.schedule(task.kind, allowed, now, ticket_id=task.ticket_id,
                             payload=task.payload)
    return True


async def _current(rt: Runtime, uow: UnitOfWork, task: ScheduledTask) -> Ticket | None:
    return await surveys.current(uow, task.ticket_id, task.payload.get("round", -1))


async def ask(rt: Runtime, uow: UnitOfWork, task: ScheduledTask) -> None:
    ticket = await _current(rt, uow, task)
    if ticket is None or await _put_off_if_quiet(rt, uow, task):
        return
    notifier = Notifier(rt, uow)
    for survey in await surveys.start_asking(uow, rt.clock, rt.config, ticket):
        t = rt.translator(await notifier.resident_language(survey.user_id))
        view = views.question(t, rt.config, ticket, survey)
        notifier.say(survey.user_id, view.text, reply_markup=markup_json(view), ticket=ticket,
                     purpose="survey")


async def remind(rt: Runtime, uow: UnitOfWork, task: ScheduledTask) -> None:
    ticket = await _current(rt, uow, task)
    if ticket is None or await _put_off_if_quiet(rt, uow, task):
        return
    notifier = Notifier(rt, uow)
    for survey in await surveys.unanswered(uow, ticket):
        t = rt.translator(await notifier.resident_language(survey.user_id))
        view = views.question(t, rt.config, ticket, survey, reminder=True)
        notifier.say(survey.user_id, view.text, reply_markup=markup_json(view), ticket=ticket,
                     purpose="survey")


async def give_up(rt: Runtime, uow: UnitOfWork, task: ScheduledTask) -> None:
    ticket = await _current(rt, uow, task)
    if ticket is None:
        return
    # "Not solved" said under an earlier version, which waited for the score: it is an
    # answer, and reopens the ticket; never closed as unanswered.
    for survey in await surveys.unanswered(uow, ticket):
        if survey.solved is False:
            answer = await surveys.not_solved(uow, rt.clock, rt.config, survey.id,
                                              survey.user_id)
            path = await uow.nodes.path(answer.moved_to) if answer.moved_to else []
            await tell_workers(rt, uow, answer, path, resident_told=False)
            return
    closed = await surveys.give_up(uow, rt.clock, ticket)
    if closed is None or closed.group_chat_id is None:
        return
    notifier = Notifier(rt, uow)
    await notifier.refresh_card(closed)
    group = await uow.groups.get(closed.group_chat_id)
    t = rt.translator(group.language if group else rt.config.default_language)
    await notifier.to_group(closed, views.closed_unanswered(t, closed))
