"""The follow-up survey, as the resident answers it (rules: bot.services.surveys).

The question is one message whose buttons change in place: "Is it solved?" (yes / no), then
"How satisfied are you?" (scores, with Back), then thanks and "Add a comment". Pressing that
starts the one-step "survey_comment" draft: the next private message is the comment. Like
every private flow it is the person's one conversation (storage.repositories.drafts), so it
is only started when the person asks for it.

"Not solved" is an answer by itself: the ticket reopens at once, and the thanks offer the
scores as an optional addition. Each press is checked against the survey's owner and state,
so forged, foreign or stale buttons get a short answer and change nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.actions.notifier import Notifier
from bot.actions.people import Who, translator
from bot.i18n import Translator
from bot.runtime import Runtime
from bot.services import relay, reporting, surveys
from bot.services.surveys import Answer as SurveyAnswer
from bot.services.surveys import Outcome, SurveyProblem
from bot.views import Answer, View
from bot.views import survey as views
from storage.models import Draft, OrgNode
from storage.uow import UnitOfWork

COMMENT_FLOW = "survey_comment"
CHOICES = ("y", "n", "b", "c", *(f"s{score}" for score in surveys.SCORES))


_DATA = re.compile(r"sv:(\d{1,12}):(y|n|b|c|s[1-5])")


async def press_data(rt: Runtime, who: Who, data: str) -> Answer:
    """A button of the survey by its data: sv:<survey id>:y|n (solved), sv:<id>:s<1-5>
    (score), sv:<id>:b (back), sv:<id>:c (comment)."""
    match = _DATA.fullmatch(data or "")
    survey_id, choice = (int(match[1]), match[2]) if match else (None, None)
    return await press(rt, who, survey_id, choice)


async def press(rt: Runtime, who: Who, survey_id: int | None, choice: str | None) -> Answer:
    """A button under the survey message; ``survey_id`` None: data that is no survey's."""
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        if survey_id is None or choice not in CHOICES or who.in_group or who.user_id is None:
            return Answer(alert=t("This button is no longer valid."))
        user_id = who.user_id
        try:
            if choice in ("y", "b"):
                survey = await surveys.set_solved(uow, survey_id, user_id,
                                                  None if choice == "b" else True)
                ticket = await uow.tickets.get(survey.ticket_id)
                await uow.commit()
                return Answer(edit=views.question(t, rt.config, ticket, survey))
            if choice == "c":
                return await _start_comment(rt, uow, t, survey_id, user_id)
            if choice == "n":  # a whole answer: acted on at once
                answer = await surveys.not_solved(uow, rt.clock, rt.config, survey_id, user_id)
            else:
                answer = await surveys.set_score(uow, rt.clock, rt.config, survey_id, user_id,
                                                 int(choice[1]))
            path = await uow.nodes.path(answer.moved_to) if answer.moved_to else []
            await tell_workers(rt, uow, answer, path)
            await uow.commit()
            return Answer(edit=views.thanks(t, rt.config, answer, path))
        except SurveyProblem as exc:
            if exc.problem is surveys.Problem.OVER:
                return Answer(alert=views.survey_closed(t))
            return Answer(alert=t("This button is no longer valid."))


async def tell_workers(rt: Runtime, uow: UnitOfWork, answer: SurveyAnswer,
                       path: Sequence[OrgNode], *, resident_told: bool = True) -> None:
    """The group that handled the ticket hears every answer; a reopening moves the card.
    ``resident_told``: the resident who answered reads the outcome in the survey message,
    so the reopening's notice skips them. In the caller's transaction."""
    notifier = Notifier(rt, uow)
    ticket, survey = answer.ticket, answer.survey
    if answer.outcome is Outcome.REOPENED:
        await notifier.moved(
            ticket, old_chat=answer.old_chat, old_card=answer.old_card,
            old_topic=answer.old_topic,
            left=lambda t: views.reopened_left(t, survey, ticket, path),
            arrived=lambda t: views.reopened_arrived(t, survey, ticket),
            residents=lambda t: views.reopened_residents(t, ticket, path),
            except_resident=survey.user_id if resident_told else None)
        return
    if ticket.group_chat_id is None:
        return
    group = await uow.groups.get(ticket.group_chat_id)
    t = rt.translator(group.language if group else rt.config.default_language)
    closed = answer.outcome is Outcome.CLOSED
    if closed:
        await notifier.refresh_card(ticket)
    await notifier.to_group(ticket, views.rated(t, survey, ticket, closed=closed))


# -- the comment -----------------------------------------------------------------------------

async def _start_comment(rt: Runtime, uow: UnitOfWork, t: Translator, survey_id: int,
                         user_id: int) -> Answer:
    survey = await uow.surveys.get(survey_id)
    if survey is None or survey.user_id != user_id or survey.status != "answered":
        return Answer(alert=t("This button is no longer valid."))
    dropped = await uow.drafts.discard_other_private(user_id, COMMENT_FLOW)
    await uow.drafts.start(user_id, COMMENT_FLOW, "wait", {"survey_id": survey.id},
                           rt.clock.now())
    await uow.commit()
    return Answer(say=[views.comment_prompt(t, report_dropped=reporting.FLOW in dropped)])


async def take(rt: Runtime, uow: UnitOfWork, t: Translator, who: Who, draft: Draft,
               text: str | None, *, cancel: bool) -> Answer:
    """Inside the caller's unit of work (the caller commits): the message while ``draft``,
    the person's newest, is the comment draft; not this flow's otherwise."""
    if who.user_id is None or draft.flow != COMMENT_FLOW:
        return Answer.not_mine()
    user_id = who.user_id
    survey_id = int(draft.data.get("survey_id") or 0)
    if cancel:
        await uow.drafts.discard(user_id, COMMENT_FLOW)
        view = views.no_comment(t)
    else:
        words = relay.clean_text(text or "")
        if not words:
            view = views.comment_as_text(t)
        elif len(words) > surveys.COMMENT_LIMIT:
            view = views.comment_too_long(t, len(words))
        else:
            view = await _take_comment(rt, uow, t, survey_id, user_id, words)
    return Answer(say=[view])


async def _take_comment(rt: Runtime, uow: UnitOfWork, t: Translator, survey_id: int,
                        user_id: int, words: str) -> View:
    await uow.drafts.discard(user_id, COMMENT_FLOW)
    try:
        answer = await surveys.set_comment(uow, rt.clock, survey_id, user_id, words)
    except SurveyProblem:
        return View(views.survey_closed(t))
    ticket = answer.ticket
    if ticket.group_chat_id is not None:
        group = await uow.groups.get(ticket.group_chat_id)
        gt = rt.translator(group.language if group else rt.config.default_language)
        await Notifier(rt, uow).to_group(ticket, views.comment_for_group(gt, ticket, words))
    return views.comment_recorded(t)
