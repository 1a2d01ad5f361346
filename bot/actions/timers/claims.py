"""Unclaimed tickets: a reminder in their group, then an escalation up the tree. Timer
actions: the ticker gives them its unit of work and commits it (they never commit)."""

from __future__ import annotations

import logging

from bot.actions.moving import move_and_show
from bot.actions.notifier import Notifier
from bot.runtime import Runtime
from bot.services.tickets import TicketRefused
from bot.views.cards import your_request
from bot.views.timers import unclaimed
from storage.models import ScheduledTask, Ticket, TicketStatus
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)


async def _still_waiting(uow: UnitOfWork, task: ScheduledTask) -> Ticket | None:
    """The ticket, if it is still open and unclaimed at the node the timer was set for
    (read under its lock: see TaskRepository.cancel)."""
    ticket = await uow.tickets.get_locked(task.ticket_id)
    if ticket is None or ticket.status != TicketStatus.OPEN:
        return None
    if ticket.node_id != task.payload.get("node_id"):
        return None
    return ticket


async def remind(rt: Runtime, uow: UnitOfWork, task: ScheduledTask) -> None:
    ticket = await _still_waiting(uow, task)
    if ticket is None or ticket.group_chat_id is None:
        return
    group = await uow.groups.get(ticket.group_chat_id)
    t = rt.translator(group.language if group else rt.config.default_language)
    waited = t.duration(rt.clock.now() - ticket.updated_at, approximate=True)
    node = await uow.nodes.get(group.node_id) if group and group.node_id else None
    await Notifier(rt, uow).to_group(ticket, unclaimed(t, node, ticket.number, waited))


async def escalate(rt: Runtime, uow: UnitOfWork, task: ScheduledTask) -> None:
    """Up one level, from the group that handles it to the nearest one above (none at the
    top: it stays)."""
    ticket = await _still_waiting(uow, task)
    if ticket is None:
        return
    waited = rt.clock.now() - ticket.updated_at
    try:
        await move_and_show(
            rt, uow, ticket.id, to_node_id=None, actor_id=None, role="system", reason="",
            kind="escalated", system=True,
            left=lambda t, place: t("Passed up to {place}: nobody claimed it within {waited}.",
                                    place=place, waited=t.duration(waited, approximate=True)),
            arrived=lambda t, place: t(
                "Passed up to this group from {place}: nobody claimed it within {waited}.",
                place=place, waited=t.duration(waited, approximate=True)),
            residents=lambda t, place: t(
                "So that it is taken on sooner, we have passed {request} up to {place}.",
                request=your_request(t, ticket), place=place))
    except TicketRefused as refused:
        log.info("ticket %s not passed up (unclaimed): %s", ticket.number,
                 refused.refusal.value)
