"""The follow-up survey's timers: ask, remind once, give up (bot.services.surveys).

The questions go to residents, so they never go out in quiet hours: they are scheduled
outside them, and a task that runs late (the bot was down) and finds itself inside quiet hours
puts itself off until they end, as a new task, since the running one is marked done.
"""

from __future__ import annotations

from bot.actions.notifier import Notifier
from bot.runtime import Runtime
from bot.services import surveys
from handlers.survey import question, tell_workers
from scheduler.ticker import TaskHandler
from storage.models import ScheduledTask
from storage.uow import UnitOfWork


def survey_handlers(rt: Runtime) -> dict[str, TaskHandler]:
    async def put_off_if_quiet(uow: UnitOfWork, task: ScheduledTask) -> bool:
        now = rt.clock.now()
        allowed = surveys.not_quiet(rt.config, now)
        if allowed == now:
            return False
        await uow.tasks.schedule(task.kind, allowed, now, ticket_id=task.ticket_id,
                                 payload=task.payload)
        return True

    async def ask(uow: UnitOfWork, task: ScheduledTask) -> None:
        ticket = await surveys.current(uow, task.ticket_id, task.payload.get("round", -1))
        if ticket is None or await put_off_if_quiet(uow, task):
            return
        notifier = Notifier(rt, uow)
        for survey in await surveys.start_asking(uow, rt.clock, rt.config, ticket):
            t = rt.translator(await notifier.resident_language(survey.user_id))
            text, markup = question(t, rt, ticket, survey)
            notifier.say(survey.user_id, text, reply_markup=markup, ticket=ticket,
                         purpose="survey")

    async def remind(uow: UnitOfWork, task: ScheduledTask) -> None:
        ticket = await surveys.current(uow, task.ticket_id, task.payload.get("round", -1))
        if ticket is None or await put_off_if_quiet(uow, task):
            return
        notifier = Notifier(rt, uow)
        for survey in await surveys.unanswered(uow, ticket):
            t = rt.translator(await notifier.resident_language(survey.user_id))
            text, markup = question(t, rt, ticket, survey, reminder=True)
            notifier.say(survey.user_id, text, reply_markup=markup, ticket=ticket,
                         purpose="survey")

    async def give_up(uow: UnitOfWork, task: ScheduledTask) -> None:
        ticket = await surveys.current(uow, task.ticket_id, task.payload.get("round", -1))
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
        if closed.close_reason == "unanswered" and closed.enterprise_id is not None:
            text = t("<b>No. {number}</b> is closed: the enterprise contact did not answer "
                     "the follow-up.", number=closed.number)
        elif closed.close_reason == "unanswered":
            text = t("<b>No. {number}</b> is closed: the resident did not answer the "
                     "follow-up.", number=closed.number)
        else:
            text = t("<b>No. {number}</b> is closed.", number=closed.number)
        await notifier.to_group(closed, text)

    return {surveys.ASK: ask, surveys.REMIND: remind, surveys.GIVE_UP: give_up}
