"""Resolution deadlines: a reminder to the holder before the deadline, an overdue notice at
it, and after the grace period the ticket goes up one level. Timer actions: the ticker gives
them its unit of work and commits it (they never commit).

The deadline itself is counted when the ticket opens at a node (working days on the Chinese
calendar, or wall-clock hours for urgent tickets; see bot.services.tickets); these timers only
act on it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.actions.moving import move_and_show
from bot.actions.notifier import Notifier
from bot.i18n import Translator
from bot.runtime import Runtime
from bot.services import routing, tickets
from bot.services.tickets import TicketRefused
from bot.views import timers as words
from bot.views.cards import local_time, your_request
from storage.models import OPEN_STATUSES, GroupChat, ScheduledTask, Ticket
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)


async def _still_due(uow: UnitOfWork, task: ScheduledTask) -> Ticket | None:
    """The ticket, if it is still being handled at the node and against the deadline the
    timer was set for (a move or a reopening sets new timers). Read under the ticket's lock:
    see TaskRepository.cancel."""
    ticket = await uow.tickets.get_locked(task.ticket_id)
    if ticket is None or ticket.status not in OPEN_STATUSES or ticket.deadline_at is None:
        return None
    if ticket.node_id != task.payload.get("node_id"):
        return None
    if ticket.deadline_at != datetime.fromisoformat(task.payload.get("deadline", "")):
        return None
    return ticket


def _translator(rt: Runtime, group: GroupChat | None) -> Translator:
    return rt.translator(group.language if group else rt.config.default_language)


async def remind(rt: Runtime, uow: UnitOfWork, task: ScheduledTask) -> None:
    ticket = await _still_due(uow, task)
    if ticket is None or ticket.group_chat_id is None:
        return
    if rt.clock.now() >= ticket.deadline_at:  # ran late (the bot was down): too late
        return
    t = _translator(rt, await uow.groups.get(ticket.group_chat_id))
    when = local_time(rt.config, ticket.deadline_at)
    # Nobody above to ask for help: the district, or no group bound above.
    top = await routing.escalation_target(uow, await uow.nodes.get(ticket.node_id)) is None
    await Notifier(rt, uow).to_group(ticket, words.due_soon(t, ticket, when, top=top))


async def overdue(rt: Runtime, uow: UnitOfWork, task: ScheduledTask) -> None:
    ticket = await _still_due(uow, task)
    if ticket is None or ticket.group_chat_id is None:
        return
    t = _translator(rt, await uow.groups.get(ticket.group_chat_id))
    node = await uow.nodes.get(ticket.node_id)
    grace = rt.config.sla(ticket.category, level=tickets.sla_level(node)
                          ).resolution_escalate_after_overdue
    when = local_time(rt.config, ticket.deadline_at)
    # Passing up is promised only when it will happen: something above can take the
    # ticket now, and its timer is armed.
    if (await routing.escalation_target(uow, node) is None
            or not await uow.tasks.pending(ticket_id=ticket.id, kind="deadline_escalate")):
        text = words.overdue(t, ticket, when, None)
    elif rt.clock.now() >= ticket.deadline_at + grace:
        return  # ran late: the escalation, due as well, says it all
    else:
        text = words.overdue(t, ticket, when, t.duration(grace))
    await Notifier(rt, uow).to_group(ticket, text)


async def escalate(rt: Runtime, uow: UnitOfWork, task: ScheduledTask) -> None:
    """Up one level after the grace period (none at the top: it stays)."""
    ticket = await _still_due(uow, task)
    if ticket is None:
        return
    due = local_time(rt.config, ticket.deadline_at)
    try:
        moved = await move_and_show(
            rt, uow, ticket.id, to_node_id=None, actor_id=None, role="system",
            reason="overdue", kind="escalated", system=True,
            left=lambda t, place: t("Passed up to {place}: it was not resolved by {time}.",
                                    place=place, time=due),
            arrived=lambda t, place: t(
                "Passed up to this group from {place}: it was not resolved by {time}.",
                place=place, time=due),
            residents=lambda t, place: t(
                "It was not resolved in time, so we have passed {request} up to {place}.",
                request=your_request(t, ticket), place=place))
    except TicketRefused as refused:
        log.info("ticket %s not passed up (overdue): %s", ticket.number, refused.refusal.value)
        return
    # Resolved later at the new level, it is still late.
    moved.ticket.missed_deadline = True
