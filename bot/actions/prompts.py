"""Replies to the questions the bot asked a worker in a group (a resolution note, a transfer's
reason; see ``bot.actions.worker``). A reply is taken as the answer only from the worker who
pressed, to the latest question they were asked; any other reply to a question is told so."""

from __future__ import annotations

import html
from dataclasses import dataclass

from bot.actions import worker
from bot.actions.people import Who, translator
from bot.actions.updates import defer
from bot.actions.worker import PROMPT_FLOWS, Outcome, Prompt
from bot.i18n import N_, Translator
from bot.runtime import Runtime
from bot.services import surveys, tickets
from bot.services.tickets import TicketRefused
from bot.views import Answer, View
from bot.views import worker as words
from bot.views.places import place_html
from storage.models import Ticket
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class Reply:
    """A reply in a group, as the door read it: to which message, with what text, in which
    forum topic (None: not in one)."""

    who: Who
    name: str   # the worker's name, as cards and residents show it
    replied_to: int
    text: str
    message_thread: int | None


async def answer(rt: Runtime, reply: Reply) -> Outcome | None:
    """Take a reply to one of the bot's questions; None when it answers none of them (the
    relay may have it)."""
    async with rt.uow() as uow:
        known = await uow.tickets.message(reply.who.chat_id, reply.replied_to)
        if known is None or known.purpose not in PROMPT_FLOWS:
            return None
        t = await translator(rt, uow, reply.who)
        return await _take(rt, uow, t, reply, known.ticket_id, known.purpose)


def _said(thread: int | None, text: str) -> Outcome:
    return Outcome(Answer(say=[View(text)], thread=thread))


async def _take(rt: Runtime, uow: UnitOfWork, t: Translator, reply: Reply, ticket_id: int,
                purpose: str) -> Outcome:
    user_id, chat_id = reply.who.user_id, reply.who.chat_id
    flow = PROMPT_FLOWS[purpose]
    draft = await uow.drafts.get(user_id, flow)
    ticket = await uow.tickets.get(ticket_id)
    thread = (ticket.topic_id if ticket is not None and ticket.topic_id is not None
              else reply.message_thread)
    if (draft is None or ticket is None or draft.data.get("ticket_id") != ticket.id
            or draft.data.get("chat_id") != chat_id):
        return _said(thread, t(
            "Only the worker who pressed the button can answer this question, and only "
            "its latest version. Press the button on the card again if needed."))
    if ticket.group_chat_id != chat_id:
        await uow.drafts.discard(user_id, flow)
        await uow.commit()
        return _said(thread, html.escape(t(
            "No. {number} is handled in another group now.", number=ticket.number)))
    text = reply.text.strip()
    if text.split("@", 1)[0].split(" ", 1)[0] == "/cancel":
        await uow.drafts.discard(user_id, flow)
        await uow.commit()
        return _said(thread, html.escape(t(
            "Cancelled. No. {number} stays as it is.", number=ticket.number)))
    if not words.NOTE_MIN_CHARS <= len(text) <= words.NOTE_MAX_CHARS:
        # Nothing is written now: the draft is renewed with the new question
        # (worker.remember_prompt).
        question = await _question_again(uow, t, reply, ticket, purpose, dict(draft.data),
                                         thread=thread)
        await defer(uow)  # the question's commit records the update (remember_prompt)
        return Outcome(Answer(thread=thread), question)
    if flow == "resolve":
        return _said(thread, await _resolve_with(rt, uow, t, reply, ticket, text))
    await uow.drafts.discard(user_id, flow)
    outcome = await worker.move_ticket(rt, uow, t, reply.who, reply.name, ticket,
                                       to_node_id=draft.data["node_id"], reason=text,
                                       kind="transferred")
    if not outcome.moved:
        await uow.commit()  # nothing moved; the question is closed all the same
        return _said(thread, html.escape(outcome.text))
    return _said(thread, outcome.note)


async def _question_again(uow: UnitOfWork, t: Translator, reply: Reply, ticket: Ticket,
                          purpose: str, data: dict, *, thread: int | None) -> Prompt:
    if purpose == "resolve_prompt":
        question, placeholder = words.resolve_question(t, ticket)
    else:
        node = await uow.nodes.get(data.get("node_id") or ticket.node_id)
        path = await uow.nodes.path(node) if node else []
        question, placeholder = words.transfer_question(t, ticket,
                                                        place_html(path, t.language))
    data.pop("prompt_id", None)
    view = words.prompt_view(reply.who.user_id, reply.name,
                             words.note_problem(t) + "\n" + question, placeholder)
    return Prompt(purpose, ticket.id, data, view, thread)


async def _resolve_with(rt: Runtime, uow: UnitOfWork, t: Translator, reply: Reply,
                        ticket: Ticket, note: str) -> str:
    """Resolve with the note and commit; what to say in the group (HTML)."""
    user_id = reply.who.user_id
    await uow.drafts.discard(user_id, "resolve")
    try:
        ticket = await tickets.resolve(uow, rt.clock, ticket.id, user_id, note)
    except TicketRefused as exc:
        await uow.commit()  # the draft is done with either way
        return html.escape(words.refusal_text(t, exc, user_id))
    await surveys.plan(uow, rt.clock, rt.config, ticket)
    await worker.refresh_and_tell(
        rt, uow, reply.who.chat_id, ticket, ticket.holder_name or reply.name,
        N_("{role} {name} has resolved {request}.\nResolution: {note}"), note=note)
    await uow.commit()
    if ticket.enterprise_id is not None:
        return t("✅ No. {number} is resolved. The enterprise contact has been told.",
                 number=ticket.number)
    return t("✅ No. {number} is resolved. The resident has been told.", number=ticket.number)
