"""Satisfaction follow-up (回访) after a ticket is resolved.

A resolution is followed, after the survey delay and outside quiet hours, by one question to
each resident of the ticket (the reporter and every co-reporter): is it solved, and how
satisfied are you (5 非常满意 … 1 非常不满意), with an optional comment. One reminder goes
out after a day; after the give-up time the ticket closes as unanswered.

"Not solved", or a score at or below ``survey.reopen_max_score``, reopens the ticket one level
higher at once: the other residents' questions of that round are withdrawn, and the next
resolution asks everyone again (a new round). "Not solved" is a whole answer by itself (the
score may follow, for the record, but is not waited for: a resident who stops there must not
see the ticket closed as unanswered). When every resident of the round has answered content,
the ticket closes as rated.

Consultations and check-ups use the same follow-up: it knows tickets, not kinds.
Functions here change rows and schedule tasks; the caller tells people and commits.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.clock import Clock
from bot.config import Config
from bot.services import tickets
from storage.models import OrgNode, Ticket, TicketEvent, TicketStatus, TicketSurvey
from storage.uow import UnitOfWork

ASK, REMIND, GIVE_UP = "survey_ask", "survey_remind", "survey_give_up"
SURVEY_TASKS = (ASK, REMIND, GIVE_UP)
COMMENT_LIMIT = 1000
SCORES = (5, 4, 3, 2, 1)


def _key(kind: str, ticket: Ticket, round_: int) -> str:
    return f"{kind}:{ticket.id}:{round_}"


def not_quiet(config: Config, moment: datetime) -> datetime:
    """The first moment at or after ``moment`` when a resident may be messaged."""
    return config.quiet_hours.next_allowed(moment, config.timezone)


async def plan(uow: UnitOfWork, clock: Clock, config: Config, ticket: Ticket) -> None:
    """After a resolution: a question for each resident, asked after the delay."""
    now = clock.now()
    round_ = ticket.reopen_count
    for user_id in await uow.tickets.residents(ticket):
        uow.surveys.add(TicketSurvey(ticket_id=ticket.id, user_id=user_id, round=round_,
                                     node_id=ticket.node_id, status="waiting",
                                     created_at=now))
    await uow.tasks.schedule(ASK, not_quiet(config, now + config.timings.survey.delay), now,
                             ticket_id=ticket.id, payload={"round": round_},
                             key=_key(ASK, ticket, round_))


async def current(uow: UnitOfWork, ticket_id: int | None,
                  round_: int) -> Ticket | None:
    """The ticket, if its follow-up round ``round_`` is still running; read under the
    ticket's lock, so the round's answers committed meanwhile are seen (and none comes in
    while the timer acts)."""
    ticket = await uow.tickets.get_locked(ticket_id)
    if ticket is None or ticket.status != TicketStatus.RESOLVED or ticket.reopen_count != round_:
        return None
    return ticket


async def start_asking(uow: UnitOfWork, clock: Clock, config: Config,
                       ticket: Ticket) -> Sequence[TicketSurvey]:
    """The round's questions go out now: returns the surveys to send, marked asked, and
    schedules the reminder and the give-up. Residents who blocked the bot are skipped (they
    count as not answering)."""
    now = clock.now()
    round_ = ticket.reopen_count
    asked = []
    for survey in await uow.surveys.of_round(ticket.id, round_, ("waiting",)):
        user = await uow.users.get(survey.user_id)
        if user is not None and user.unreachable:
            continue
        survey.status, survey.asked_at = "asked", now
        asked.append(survey)
    timings = config.timings.survey
    payload = {"round": round_}
    await uow.tasks.schedule(REMIND, not_quiet(config, now + timings.remind_after), now,
                             ticket_id=ticket.id, payload=payload,
                             key=_key(REMIND, ticket, round_))
    await uow.tasks.schedule(GIVE_UP, now + timings.give_up_after, now, ticket_id=ticket.id,
                             payload=payload, key=_key(GIVE_UP, ticket, round_))
    return asked


async def unanswered(uow: UnitOfWork, ticket: Ticket) -> Sequence[TicketSurvey]:
    """The round's questions still open: those to remind."""
    return await uow.surveys.of_round(ticket.id, ticket.reopen_count, ("asked",))


async def give_up(uow: UnitOfWork, clock: Clock, ticket: Ticket) -> Ticket | None:
    """Time is up: who did not answer never will; the ticket closes, as rated if someone of
    the round answered content, else as unanswered."""
    round_ = ticket.reopen_count
    answered = False
    for survey in await uow.surveys.of_round(ticket.id, round_, ("waiting", "asked",
                                                                 "answered")):
        if survey.status == "answered":
            answered = True
        else:
            survey.status = "unanswered"
    return await tickets.close(uow, clock, ticket.id, "rated" if answered else "unanswered")


class Problem(enum.Enum):
    NOT_FOUND = "not_found"   # no such survey, or not this person's
    OVER = "over"             # answered already, or withdrawn by a reopening, or timed out


class Outcome(enum.Enum):
    RECORDED = "recorded"     # waiting for other residents of the round
    CLOSED = "closed"         # every resident is content: the ticket is closed
    REOPENED = "reopened"     # not solved or not satisfied: open again one level up


@dataclass
class Answer:
    survey: TicketSurvey
    ticket: Ticket
    outcome: Outcome | None = None
    moved_from: OrgNode | None = None
    moved_to: OrgNode | None = None
    old_chat: int | None = None
    old_card: int | None = None
    old_topic: int | None = None


class SurveyProblem(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.value)
        self.problem = problem


async def _open_survey(uow: UnitOfWork, survey_id: int, user_id: int, *,
                       statuses: tuple[str, ...] = ("asked",)) -> tuple[TicketSurvey, Ticket]:
    survey = await uow.surveys.get(survey_id)
    if survey is None or survey.user_id != user_id:
        raise SurveyProblem(Problem.NOT_FOUND)
    # The ticket's row lock makes the answers of one round take turns (PostgreSQL; SQLite has
    # one writer anyway): two residents answering content at once must not each see the other
    # still asked, and leave the ticket open until the give-up.
    ticket = await uow.tickets.get(survey.ticket_id, for_update=True)
    if ticket is None:
        raise SurveyProblem(Problem.NOT_FOUND)
    await uow.surveys.refresh(survey)
    if survey.status not in statuses:
        raise SurveyProblem(Problem.OVER)
    return survey, ticket


async def set_solved(uow: UnitOfWork, survey_id: int, user_id: int,
                     solved: bool | None) -> TicketSurvey:
    """The first half of the answer, "solved" (or, with None, taken back): it may be changed
    until the score is given. "Not solved" is an answer of its own: ``not_solved``."""
    survey, _ = await _open_survey(uow, survey_id, user_id)
    survey.solved = solved
    return survey


def reopens(config: Config, solved: bool, score: int | None) -> bool:
    return not solved or (score is not None and score <= config.survey.reopen_max_score)


def _rated(uow: UnitOfWork, survey: TicketSurvey, ticket: Ticket, now: datetime) -> None:
    uow.tickets.log(TicketEvent(ticket_id=ticket.id, at=now, kind="rated",
                                actor_id=survey.user_id, actor_role="resident",
                                data={"score": survey.score, "solved": survey.solved}))


async def not_solved(uow: UnitOfWork, clock: Clock, config: Config, survey_id: int,
                     user_id: int) -> Answer:
    """The resident says the problem is not solved: that is their answer, recorded now, and
    the ticket reopens one level up at once. The score may still be given (``set_score``)."""
    survey, ticket = await _open_survey(uow, survey_id, user_id)
    now = clock.now()
    survey.solved, survey.score, survey.status, survey.answered_at = False, None, "answered", now
    _rated(uow, survey, ticket, now)
    return await _act_on(uow, clock, config, survey, ticket)


async def set_score(uow: UnitOfWork, clock: Clock, config: Config, survey_id: int,
                    user_id: int, score: int) -> Answer:
    """The answer is complete: record it and act on it (close, reopen, or wait for the
    other residents of the round). After "not solved" (already acted on) the score is only
    recorded."""
    if score not in SCORES:
        raise SurveyProblem(Problem.NOT_FOUND)
    survey, ticket = await _open_survey(uow, survey_id, user_id,
                                        statuses=("asked", "answered"))
    if survey.status == "answered":
        if survey.solved is not False or survey.score is not None:
            raise SurveyProblem(Problem.OVER)  # answered already: the answer stands
        now = clock.now()
        survey.score = score
        _rated(uow, survey, ticket, now)
        return Answer(survey, ticket, Outcome.RECORDED)
    if survey.solved is None:  # a forged or stale button: the first question comes first
        raise SurveyProblem(Problem.NOT_FOUND)
    now = clock.now()
    survey.score, survey.status, survey.answered_at = score, "answered", now
    _rated(uow, survey, ticket, now)
    return await _act_on(uow, clock, config, survey, ticket)


async def _act_on(uow: UnitOfWork, clock: Clock, config: Config, survey: TicketSurvey,
                  ticket: Ticket) -> Answer:
    """What a complete answer does to the ticket: reopen it, close it, or nothing yet."""
    answer = Answer(survey, ticket)
    if ticket.status != TicketStatus.RESOLVED or ticket.reopen_count != survey.round:
        answer.outcome = Outcome.RECORDED
        return answer
    if reopens(config, bool(survey.solved), survey.score):
        answer.old_chat, answer.old_card, answer.old_topic = (
            ticket.group_chat_id, ticket.card_message_id, ticket.topic_id)
        moved = await tickets.reopen(uow, clock, config, ticket.id, actor_id=survey.user_id,
                                     reason="not_solved" if not survey.solved else "score")
        if moved is None:
            answer.outcome = Outcome.RECORDED
            return answer
        answer.ticket, answer.moved_from, answer.moved_to = moved
        for other in await uow.surveys.of_round(ticket.id, survey.round,
                                                ("waiting", "asked")):
            other.status = "cancelled"
        await uow.tasks.cancel(SURVEY_TASKS, ticket_id=ticket.id)
        answer.outcome = Outcome.REOPENED
        return answer
    if await uow.surveys.of_round(ticket.id, survey.round, ("waiting", "asked")):
        answer.outcome = Outcome.RECORDED
        return answer
    closed = await tickets.close(uow, clock, ticket.id, "rated")
    await uow.tasks.cancel(SURVEY_TASKS, ticket_id=ticket.id)
    answer.ticket = closed or ticket
    answer.outcome = Outcome.CLOSED if closed else Outcome.RECORDED
    return answer


async def set_comment(uow: UnitOfWork, clock: Clock, survey_id: int, user_id: int,
                      text: str) -> Answer:
    """A comment on an answered survey (once; a second replaces the first)."""
    survey, ticket = await _open_survey(uow, survey_id, user_id, statuses=("answered",))
    survey.comment = text[:COMMENT_LIMIT]
    uow.tickets.log(TicketEvent(ticket_id=ticket.id, at=clock.now(), kind="survey_comment",
                                actor_id=user_id, actor_role="resident",
                                data={"text": survey.comment}))
    return Answer(survey, ticket)
