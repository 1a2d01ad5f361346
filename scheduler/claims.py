"""Unclaimed tickets: a reminder in their group, then an escalation up the tree."""

from __future__ import annotations

from bot.actions.notifier import Notifier
from bot.i18n import Translator
from bot.runtime import Runtime
from bot.views.cards import your_request
from scheduler.passing_up import pass_up
from scheduler.ticker import TaskHandler
from storage.models import OrgNode, ScheduledTask, Ticket, TicketStatus
from storage.uow import UnitOfWork


def _unclaimed(t: Translator, node: OrgNode | None, number: str, waited: str) -> str:
    """The reminder, with the way out that fits the group: a grid's workers send on what is not
    their grid's; a desk what is not its kind of work; a centre what a grid or desk below
    should handle."""
    if node is not None and node.level == "grid":
        return t("⏰ <b>No. {number}</b> has waited {waited} and nobody has claimed it yet. "
                 "Please claim it, or transfer it if it is not for this grid.",
                 number=number, waited=waited)
    if node is not None and node.level == "desk":
        return t("⏰ <b>No. {number}</b> has waited {waited} and nobody has claimed it yet. "
                 "Please claim it, or transfer it if it is not for this desk.",
                 number=number, waited=waited)
    return t("⏰ <b>No. {number}</b> has waited {waited} and nobody has claimed it yet. Please "
             "claim it, or transfer it to the grid or desk that should handle it.",
             number=number, waited=waited)


async def _still_waiting(uow: UnitOfWork, task: ScheduledTask) -> Ticket | None:
    """The ticket, if it is still open and unclaimed at the node the timer was set for
    (read under its lock: see TaskRepository.cancel)."""
    ticket = await uow.tickets.get_locked(task.ticket_id)
    if ticket is None or ticket.status != TicketStatus.OPEN:
        return None
    if ticket.node_id != task.payload.get("node_id"):
        return None
    return ticket


def claim_handlers(rt: Runtime) -> dict[str, TaskHandler]:
    async def remind(uow: UnitOfWork, task: ScheduledTask) -> None:
        ticket = await _still_waiting(uow, task)
        if ticket is None or ticket.group_chat_id is None:
            return
        group = await uow.groups.get(ticket.group_chat_id)
        t = rt.translator(group.language if group else rt.config.default_language)
        waited = t.duration(rt.clock.now() - ticket.updated_at, approximate=True)
        node = await uow.nodes.get(group.node_id) if group and group.node_id else None
        await Notifier(rt, uow).to_group(ticket, _unclaimed(t, node, ticket.number, waited))

    async def escalate(uow: UnitOfWork, task: ScheduledTask) -> None:
        ticket = await _still_waiting(uow, task)
        if ticket is None:
            return
        waited = rt.clock.now() - ticket.updated_at
        await pass_up(
            rt, uow, ticket, reason="",
            left=lambda t, place: t("Passed up to {place}: nobody claimed it within {waited}.",
                                    place=place, waited=t.duration(waited, approximate=True)),
            arrived=lambda t, place: t(
                "Passed up to this group from {place}: nobody claimed it within {waited}.",
                place=place, waited=t.duration(waited, approximate=True)),
            residents=lambda t, place: t(
                "So that it is taken on sooner, we have passed {request} up to {place}.",
                request=your_request(t, ticket), place=place))

    return {"claim_remind": remind, "claim_escalate": escalate}
