"""The follow-up survey in words: the question as the resident has reached it, the thanks,
and what the group that handled the ticket is told of an answer.

Callback data: sv:<survey id>:y|n (solved), sv:<id>:s<1-5> (score), sv:<id>:b (back),
sv:<id>:c (comment).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from bot.config import Config
from bot.i18n import N_, Translator
from bot.services import surveys
from bot.services.surveys import Outcome
from bot.services.text import user_html
from bot.views import Button, View
from bot.views.cards import category_name, trimmed, your_request
from bot.views.places import place_html
from bot.views.ratings import SCORE_LABELS, rating_words
from storage.models import OrgNode, Ticket, TicketSurvey

PREFIX = "sv:"

# The follow-up asks about what the person asked for: a check-up had no problem to solve, a
# consultation was a question. {note} is the resolution (for a check-up, the lawyer's report).
_RESOLVED = {
    "consultation": N_("Your consultation was answered: {note}"),
    "checkup": N_("Your legal check-up is done. The lawyer's report: {note}"),
    "enterprise_dispute": N_("Your enterprise matter was resolved: {note}"),
}
# Apart from the dictionaries' values (each an N_ of its own): an N_ inside a call of t() is
# not seen by the extractor.
_RESOLVED_REPORT = N_("Your report was resolved: {note}")
_SOLVED_PROBLEM = N_("Is the problem solved?")
_SOLVED_QUESTION = {
    "consultation": N_("Has your question been answered?"),
    "checkup": N_("Did the check-up help with what you wanted looked at?"),
}


def _heading(t: Translator, config: Config, ticket: Ticket) -> str:
    number = t("No. {number}", number=ticket.number)
    category = html.escape(category_name(config, ticket.category, t.language))
    return f"<b>{number}</b> · {category}"


def _button(label: str, survey: TicketSurvey, action: str) -> Button:
    return Button(label, f"{PREFIX}{survey.id}:{action}")


def question(t: Translator, config: Config, ticket: Ticket, survey: TicketSurvey, *,
             reminder: bool = False) -> View:
    """The survey message at the step the resident has reached."""
    lines = [_heading(t, config, ticket)]
    if reminder:
        lines.append(t("A reminder: we would still like to hear from you."))
    lines.append(t(_RESOLVED.get(ticket.kind, _RESOLVED_REPORT),
                   note=user_html(trimmed(ticket.resolution or "", 600))))
    if survey.solved is None:
        lines += ["", t(_SOLVED_QUESTION.get(ticket.kind, _SOLVED_PROBLEM))]
        if ticket.kind in _SOLVED_QUESTION:
            yes, no = t("✅ Yes"), t("❌ No")
        else:
            yes, no = t("✅ Yes, solved"), t("❌ Not solved")
        rows = [[_button(yes, survey, "y"), _button(no, survey, "n")]]
    else:
        if ticket.kind in _SOLVED_QUESTION:
            solved = t("Yes") if survey.solved else t("No")
        else:
            solved = t("Solved") if survey.solved else t("Not solved")
        lines += ["", t("You said: {answer}.", answer=solved),
                  t("How satisfied are you with how it was handled?")]
        rows = [[_button(t(SCORE_LABELS[score]), survey, f"s{score}")]
                for score in surveys.SCORES]
        rows.append([_button(t("◀️ Back"), survey, "b")])
    return View("\n".join(lines), View.rows(*rows))


def answer_words(t: Translator, survey: TicketSurvey, ticket: Ticket) -> str:
    return rating_words(t, bool(survey.solved), survey.score, ticket.kind)


def thanks(t: Translator, config: Config, answer: surveys.Answer,
           path: Sequence[OrgNode]) -> View:
    lines = [_heading(t, config, answer.ticket),
             t("Thank you. Your answer: {answer}.",
               answer=answer_words(t, answer.survey, answer.ticket))]
    survey = answer.survey
    request = your_request(t, answer.ticket)
    if answer.outcome is Outcome.CLOSED:
        lines.append(t("We have closed {request}.", request=request))
    elif answer.outcome is Outcome.REOPENED and survey.solved:
        # Solved, but a poor score: the resident did not say it is unsolved.
        lines.append(t("We are sorry you are not satisfied: {request} has been reopened "
                       "and passed to {place}.", request=request,
                       place=place_html(path, t.language)))
    elif answer.outcome is Outcome.REOPENED:
        lines.append(t("We are sorry it is not settled yet: {request} has been reopened "
                       "and passed to {place}.", request=request,
                       place=place_html(path, t.language)))
    rows = []
    if survey.solved is False and survey.score is None:
        # "Not solved" has been acted on; the score is welcome but not waited for.
        lines += ["", t("If you like, tell us how satisfied you are with how it was "
                        "handled so far.")]
        rows = [[_button(t(SCORE_LABELS[score]), survey, f"s{score}")]
                for score in surveys.SCORES]
    rows.append([_button(t("✍️ Add a comment"), survey, "c")])
    return View("\n".join(lines), View.rows(*rows))


# -- the comment -----------------------------------------------------------------------------

def comment_prompt(t: Translator, *, report_dropped: bool) -> View:
    text = t("Please write your comment in one message (up to {limit} characters), or send "
             "/cancel.", limit=surveys.COMMENT_LIMIT)
    if report_dropped:
        text = t("Your unfinished report was discarded.") + "\n\n" + text
    return View(text)


def no_comment(t: Translator) -> View:
    return View(t("No comment then. Thank you for your answer."))


def comment_as_text(t: Translator) -> View:
    return View(t("Please write your comment as text, or send /cancel."))


def comment_too_long(t: Translator, length: int) -> View:
    return View(t("That is {length} characters; please keep it under {limit}.",
                  length=length, limit=surveys.COMMENT_LIMIT))


def comment_recorded(t: Translator) -> View:
    return View(t("Thank you, your comment has been recorded."))


def survey_closed(t: Translator) -> str:
    return t("This survey is closed. Thank you.")


# -- what the workers are told ---------------------------------------------------------------

def reopened_left(t: Translator, survey: TicketSurvey, ticket: Ticket,
                  path: Sequence[OrgNode]) -> str:
    """On the old card of a ticket a survey answer reopened and moved on."""
    words, place = answer_words(t, survey, ticket), place_html(path, t.language)
    if ticket.enterprise_id is not None:
        return t("Reopened by an enterprise contact ({answer}) and passed to {place}.",
                 answer=words, place=place)
    return t("Reopened by a resident ({answer}) and passed to {place}.",
             answer=words, place=place)


def reopened_arrived(t: Translator, survey: TicketSurvey, ticket: Ticket) -> str:
    words = answer_words(t, survey, ticket)
    if ticket.enterprise_id is not None:
        return t("Reopened by an enterprise contact ({answer}): please take it on "
                 "again.", answer=words)
    return t("Reopened by a resident ({answer}): please take it on again.",
             answer=words)


def reopened_residents(t: Translator, ticket: Ticket, path: Sequence[OrgNode]) -> str:
    return t("We have reopened {request} and passed it to {place}.",
             request=your_request(t, ticket), place=place_html(path, t.language))


def rated(t: Translator, survey: TicketSurvey, ticket: Ticket, *, closed: bool) -> str:
    """To the group that handled the ticket: the answer (a request made for an enterprise
    was answered by one of its contacts, not a resident)."""
    if ticket.enterprise_id is not None:
        text = t("⭐ An enterprise contact rated <b>No. {number}</b>: {answer}.",
                 number=ticket.number, answer=answer_words(t, survey, ticket))
    else:
        text = t("⭐ A resident rated <b>No. {number}</b>: {answer}.", number=ticket.number,
                 answer=answer_words(t, survey, ticket))
    if closed:
        text += "\n" + t("The ticket is closed.")
    return text


def comment_for_group(t: Translator, ticket: Ticket, comment: str) -> str:
    return t("💬 A resident's comment on <b>No. {number}</b>: {comment}", number=ticket.number,
             comment=user_html(comment))


def closed_unanswered(t: Translator, ticket: Ticket) -> str:
    """To the group, when the follow-up gave up waiting and closed the ticket."""
    if ticket.close_reason == "unanswered" and ticket.enterprise_id is not None:
        return t("<b>No. {number}</b> is closed: the enterprise contact did not answer "
                 "the follow-up.", number=ticket.number)
    if ticket.close_reason == "unanswered":
        return t("<b>No. {number}</b> is closed: the resident did not answer the "
                 "follow-up.", number=ticket.number)
    return t("<b>No. {number}</b> is closed.", number=ticket.number)
