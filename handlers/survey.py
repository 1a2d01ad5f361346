"""The follow-up survey in a resident's private chat (rules: bot.services.surveys).

The question arrives as one message whose buttons change in place: "Is it solved?" (yes / no),
then "How satisfied are you?" (5 非常满意 … 1 非常不满意, with Back), then thanks and an
"Add a comment" button. Pressing that starts the one-step "survey_comment" draft: the next
private message is the comment. Like every private flow it is the person's one conversation
(storage.repositories.drafts), so it is only started when the person asks for it.

"Not solved" is an answer by itself: the ticket reopens at once, and the thanks offer the
scores as an optional addition.

Callback data: sv:<survey id>:y|n (solved), sv:<id>:s<1-5> (score), sv:<id>:b (back),
sv:<id>:c (comment). Each press is checked against the survey's owner and state, so forged,
foreign or stale buttons get a short answer and change nothing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ContextTypes,
    filters,
)

from bot.actions.notifier import Notifier
from bot.context import runtime
from bot.i18n import N_, Translator
from bot.runtime import Runtime
from bot.services import relay, reporting, surveys
from bot.services.surveys import Answer, Outcome, SurveyProblem
from bot.services.text import user_html
from bot.views.cards import category_name, trimmed, your_request
from bot.views.places import place_html
from bot.views.ratings import SCORE_LABELS, rating_words
from handlers.common import command_of, translator_for
from storage.models import OrgNode, Ticket, TicketSurvey
from storage.uow import UnitOfWork

PREFIX = "sv:"
COMMENT_FLOW = "survey_comment"
_DATA = re.compile(r"sv:(\d{1,12}):(y|n|b|c|s[1-5])")
_PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE



def register(app: Application) -> None:
    app.add_handler(CallbackQueryHandler(survey_callback, pattern=f"^{PREFIX}"))


# -- what the resident sees ------------------------------------------------------------------

# The follow-up asks about what the person asked for: a check-up had no problem to solve, a
# consultation was a question. {note} is the resolution (for a check-up, the lawyer's report).
_RESOLVED = {
    "consultation": N_("Your consultation was answered: {note}"),
    "checkup": N_("Your legal check-up is done. The lawyer's report: {note}"),
    "enterprise_dispute": N_("Your enterprise matter was resolved: {note}"),
}
_SOLVED_QUESTION = {
    "consultation": N_("Has your question been answered?"),
    "checkup": N_("Did the check-up help with what you wanted looked at?"),
}


def _heading(t: Translator, rt: Runtime, ticket: Ticket) -> str:
    number = t("No. {number}", number=ticket.number)
    category = html.escape(category_name(rt.config, ticket.category, t.language))
    return f"<b>{number}</b> · {category}"


def question(t: Translator, rt: Runtime, ticket: Ticket, survey: TicketSurvey, *,
             reminder: bool = False) -> tuple[str, dict]:
    """The survey message at the step the resident has reached: text and keyboard (as Bot
    API JSON, for the outbox)."""
    lines = [_heading(t, rt, ticket)]
    if reminder:
        lines.append(t("A reminder: we would still like to hear from you."))
    lines.append(t(_RESOLVED.get(ticket.kind, N_("Your report was resolved: {note}")),
                   note=user_html(trimmed(ticket.resolution or "", 600))))
    if survey.solved is None:
        lines += ["", t(_SOLVED_QUESTION.get(ticket.kind, N_("Is the problem solved?")))]
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
    return "\n".join(lines), {"inline_keyboard": rows}


def _button(text: str, survey: TicketSurvey, action: str) -> dict:
    return {"text": text, "callback_data": f"{PREFIX}{survey.id}:{action}"}


def answer_words(t: Translator, survey: TicketSurvey, ticket: Ticket) -> str:
    return rating_words(t, bool(survey.solved), survey.score, ticket.kind)




def _thanks(t: Translator, rt: Runtime, answer: Answer,
            path: Sequence[OrgNode]) -> tuple[str, InlineKeyboardMarkup]:
    lines = [_heading(t, rt, answer.ticket),
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
        rows = [[InlineKeyboardButton(t(SCORE_LABELS[score]),
                                      callback_data=f"{PREFIX}{survey.id}:s{score}")]
                for score in surveys.SCORES]
    rows.append([InlineKeyboardButton(t("✍️ Add a comment"),
                                      callback_data=f"{PREFIX}{survey.id}:c")])
    return "\n".join(lines), InlineKeyboardMarkup(rows)


# -- buttons ---------------------------------------------------------------------------------

async def survey_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    query = update.callback_query
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        alert, show, send = await _on_button(rt, uow, t, update)
    await query.answer(alert, show_alert=alert is not None)
    if show is not None:
        try:
            await query.edit_message_text(show[0], parse_mode="HTML", reply_markup=show[1])
        except BadRequest as exc:  # too old to edit, or pressed twice
            if "not modified" not in exc.message:
                await update.effective_chat.send_message(show[0], parse_mode="HTML",
                                                         reply_markup=show[1])
    if send is not None:
        await update.effective_chat.send_message(send, parse_mode="HTML")


async def _on_button(rt: Runtime, uow: UnitOfWork, t: Translator, update: Update):
    """(alert, (text, markup) to show in the pressed message, text to send); reads and
    writes in the unit of work and commits, nothing here talks to Telegram."""
    query = update.callback_query
    match = _DATA.fullmatch(query.data or "")
    chat = update.effective_chat
    if match is None or chat is None or chat.type != "private":
        return t("This button is no longer valid."), None, None
    survey_id, action = int(match[1]), match[2]
    user_id = update.effective_user.id
    try:
        if action in ("y", "b"):
            survey = await surveys.set_solved(uow, survey_id, user_id,
                                              None if action == "b" else True)
            ticket = await uow.tickets.get(survey.ticket_id)
            await uow.commit()
            text, markup = question(t, rt, ticket, survey)
            return None, (text, InlineKeyboardMarkup.de_json(markup, None)), None
        if action == "c":
            return await _start_comment(rt, uow, t, survey_id, user_id)
        if action == "n":  # a whole answer: acted on at once
            answer = await surveys.not_solved(uow, rt.clock, rt.config, survey_id, user_id)
        else:
            answer = await surveys.set_score(uow, rt.clock, rt.config, survey_id, user_id,
                                             int(action[1]))
        path = await uow.nodes.path(answer.moved_to) if answer.moved_to else []
        await tell_workers(rt, uow, answer, path)
        await uow.commit()
        return None, _thanks(t, rt, answer, path), None
    except SurveyProblem as exc:
        if exc.problem is surveys.Problem.OVER:
            return t("This survey is closed. Thank you."), None, None
        return t("This button is no longer valid."), None, None


async def tell_workers(rt: Runtime, uow: UnitOfWork, answer: Answer,
                       path: Sequence[OrgNode], *, resident_told: bool = True) -> None:
    """The group that handled the ticket hears every answer; a reopening moves the card.
    ``resident_told``: the resident who answered reads the outcome in the survey message,
    so the reopening's notice skips them."""
    notifier = Notifier(rt, uow)
    ticket, survey = answer.ticket, answer.survey
    # A request made for an enterprise was answered by one of its contacts, not a resident.
    contact = ticket.enterprise_id is not None
    if answer.outcome is Outcome.REOPENED:

        def left(t: Translator) -> str:
            words, place = answer_words(t, survey, ticket), place_html(path, t.language)
            if contact:
                return t("Reopened by an enterprise contact ({answer}) and passed to {place}.",
                         answer=words, place=place)
            return t("Reopened by a resident ({answer}) and passed to {place}.",
                     answer=words, place=place)

        def arrived(t: Translator) -> str:
            words = answer_words(t, survey, ticket)
            if contact:
                return t("Reopened by an enterprise contact ({answer}): please take it on "
                         "again.", answer=words)
            return t("Reopened by a resident ({answer}): please take it on again.",
                     answer=words)

        await notifier.moved(
            ticket, old_chat=answer.old_chat, old_card=answer.old_card,
            old_topic=answer.old_topic, left=left, arrived=arrived,
            residents=lambda t: t("We have reopened {request} and passed it to {place}.",
                                  request=your_request(t, ticket),
                                  place=place_html(path, t.language)),
            except_resident=survey.user_id if resident_told else None)
        return
    if ticket.group_chat_id is None:
        return
    group = await uow.groups.get(ticket.group_chat_id)
    t = rt.translator(group.language if group else rt.config.default_language)
    if contact:
        text = t("⭐ An enterprise contact rated <b>No. {number}</b>: {answer}.",
                 number=ticket.number, answer=answer_words(t, survey, ticket))
    else:
        text = t("⭐ A resident rated <b>No. {number}</b>: {answer}.", number=ticket.number,
                 answer=answer_words(t, survey, ticket))
    if answer.outcome is Outcome.CLOSED:
        text += "\n" + t("The ticket is closed.")
        await notifier.refresh_card(ticket)
    await notifier.to_group(ticket, text)


# -- the comment -----------------------------------------------------------------------------

async def _start_comment(rt: Runtime, uow: UnitOfWork, t: Translator, survey_id: int,
                         user_id: int):
    survey = await uow.surveys.get(survey_id)
    if survey is None or survey.user_id != user_id or survey.status != "answered":
        return t("This button is no longer valid."), None, None
    dropped = await uow.drafts.discard_other_private(user_id, COMMENT_FLOW)
    await uow.drafts.start(user_id, COMMENT_FLOW, "wait", {"survey_id": survey.id},
                           rt.clock.now())
    await uow.commit()
    text = t("Please write your comment in one message (up to {limit} characters), or send "
             "/cancel.", limit=surveys.COMMENT_LIMIT)
    if reporting.FLOW in dropped:
        text = t("Your unfinished report was discarded.") + "\n\n" + text
    return None, None, text


async def comment_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    user = update.effective_user
    if user is None:
        return
    rt = runtime(context)
    async with rt.uow() as uow:
        draft = await uow.drafts.any_of(user.id)
        if draft is None or draft.flow != COMMENT_FLOW:
            return
        if command_of(message) not in (None, "cancel"):
            # Other commands keep their meaning (/start, /report …): the comment waits, or
            # goes when a new conversation begins.
            return
        t = await translator_for(rt, uow, update)
        text = await _take_comment(rt, uow, t, int(draft.data.get("survey_id") or 0), message)
        await uow.commit()
    await message.reply_html(text)
    raise ApplicationHandlerStop


async def _take_comment(rt: Runtime, uow: UnitOfWork, t: Translator, survey_id: int,
                        message: Message) -> str:
    user_id = message.from_user.id
    if command_of(message) == "cancel":
        await uow.drafts.discard(user_id, COMMENT_FLOW)
        return t("No comment then. Thank you for your answer.")
    comment = relay.clean_text(message.text or "")
    if not comment:
        return t("Please write your comment as text, or send /cancel.")
    if len(comment) > surveys.COMMENT_LIMIT:
        return t("That is {length} characters; please keep it under {limit}.",
                 length=len(comment), limit=surveys.COMMENT_LIMIT)
    await uow.drafts.discard(user_id, COMMENT_FLOW)
    try:
        answer = await surveys.set_comment(uow, rt.clock, survey_id, user_id, comment)
    except SurveyProblem:
        return t("This survey is closed. Thank you.")
    ticket = answer.ticket
    if ticket.group_chat_id is not None:
        group = await uow.groups.get(ticket.group_chat_id)
        gt = rt.translator(group.language if group else rt.config.default_language)
        await Notifier(rt, uow).to_group(ticket, gt(
            "💬 A resident's comment on <b>No. {number}</b>: {comment}", number=ticket.number,
            comment=user_html(comment)))
    return t("Thank you, your comment has been recorded.")
