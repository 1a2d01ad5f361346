"""Unclaimed tickets: a reminder in their group, then an escalation up the tree (issue 4)."""

from __future__ import annotations

from bot.runtime import Runtime
from handlers.notify import Notifier
from scheduler.passing_up import pass_up
from scheduler.ticker import TaskHandler
from storage.models import ScheduledTask, Ticket
from storage.uow import UnitOfWork


async def _still_waiting(uow: UnitOfWork, task: ScheduledTask) -> Ticket | None:
    """The ticket, if it is still open and unclaimed at the node the timer was set for
    (read under its lock: see TaskRepository.cancel)."""
    ticket = await uow.tickets.get_locked(task.ticket_id)
    if ticket is None or ticket.status != "open":
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
        await Notifier(rt, uow).to_group(ticket, t(
            "⏰ <b>No. {number}</b> has waited {waited} and nobody has claimed it yet. Please "
            "claim it, or transfer it if it is not yours.", number=ticket.number,
            waited=waited))

    async def escalate(uow: UnitOfWork, task: ScheduledTask) -> None:
        ticket = await _still_waiting(uow, task)
        if ticket is None:
            return
        waited = rt.clock.now() - ticket.updated_at
        await pass_up(
            rt, uow, ticket, reason="",
            left=lambda t, place: t("Passed up to {place}: nobody claimed it within {waited}.",
                                    place=place, waited=t.duration(waited, approximate=True)),
            arrived=lambda t: t("Passed up to this group: nobody claimed it within {waited}.",
                                waited=t.duration(waited, approximate=True)),
            residents=lambda t, place: t(
                "Your report has been passed up to {place} so that it is taken on sooner.",
                place=place))

    return {"claim_remind": remind, "claim_escalate": escalate}
