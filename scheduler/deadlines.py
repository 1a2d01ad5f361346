"""Resolution deadlines: a reminder to the holder before the deadline, an overdue notice at
it, and after the grace period the ticket goes up one level.

The deadline itself is counted when the ticket opens at a node (working days on the Chinese
calendar, or wall-clock hours for urgent tickets; see bot.services.tickets); these timers only
act on it.
"""

from __future__ import annotations

from datetime import datetime

from telegram.helpers import mention_html

from bot.actions.notifier import Notifier
from bot.i18n import Translator
from bot.runtime import Runtime
from bot.services import routing, tickets
from bot.views.cards import local_time, your_request
from scheduler.passing_up import pass_up
from scheduler.ticker import TaskHandler
from storage.models import OPEN_STATUSES, GroupChat, ScheduledTask, Ticket
from storage.uow import UnitOfWork


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


def _holder(ticket: Ticket) -> str:
    """A mention of the holder, so that Telegram notifies them in the group."""
    if ticket.holder_id is None:
        return ""
    return mention_html(ticket.holder_id, ticket.holder_name or str(ticket.holder_id)) + " "


def deadline_handlers(rt: Runtime) -> dict[str, TaskHandler]:
    def translator_of(group: GroupChat | None) -> Translator:
        return rt.translator(group.language if group else rt.config.default_language)

    async def remind(uow: UnitOfWork, task: ScheduledTask) -> None:
        ticket = await _still_due(uow, task)
        if ticket is None or ticket.group_chat_id is None:
            return
        if rt.clock.now() >= ticket.deadline_at:  # ran late (the bot was down): too late
            return
        t = translator_of(await uow.groups.get(ticket.group_chat_id))
        when = local_time(rt.config, ticket.deadline_at)
        # Nobody above to ask for help: the district, or no group bound above.
        top = await routing.escalation_target(uow, await uow.nodes.get(ticket.node_id)) is None
        if ticket.holder_id is None:
            text = t("⏳ <b>No. {number}</b> is due by {time} and nobody holds it yet.",
                     number=ticket.number, time=when)
        elif top:  # nobody above to ask for help
            text = _holder(ticket) + t(
                "⏳ <b>No. {number}</b> is due by {time}. Please resolve it in time.",
                number=ticket.number, time=when)
        else:
            text = _holder(ticket) + t(
                "⏳ <b>No. {number}</b> is due by {time}. Please resolve it in time, or "
                "escalate it if it needs help from above.", number=ticket.number, time=when)
        await Notifier(rt, uow).to_group(ticket, text)

    async def overdue(uow: UnitOfWork, task: ScheduledTask) -> None:
        ticket = await _still_due(uow, task)
        if ticket is None or ticket.group_chat_id is None:
            return
        t = translator_of(await uow.groups.get(ticket.group_chat_id))
        node = await uow.nodes.get(ticket.node_id)
        grace = rt.config.sla(ticket.category, level=tickets.sla_level(node)
                              ).resolution_escalate_after_overdue
        when = local_time(rt.config, ticket.deadline_at)
        # Passing up is promised only when it will happen: something above can take the
        # ticket now, and its timer is armed.
        if (await routing.escalation_target(uow, node) is None
                or not await uow.tasks.pending(ticket_id=ticket.id, kind="deadline_escalate")):
            text = _holder(ticket) + t(
                "⚠️ <b>No. {number}</b> is overdue: it was due by {time}. Please resolve it "
                "as soon as possible.", number=ticket.number, time=when)
        elif rt.clock.now() >= ticket.deadline_at + grace:
            return  # ran late: the escalation, due as well, says it all
        else:
            text = _holder(ticket) + t(
                "⚠️ <b>No. {number}</b> is overdue: it was due by {time}. Unless it is "
                "resolved within {grace}, it will be passed up one level.",
                number=ticket.number, time=when, grace=t.duration(grace))
        await Notifier(rt, uow).to_group(ticket, text)

    async def escalate(uow: UnitOfWork, task: ScheduledTask) -> None:
        ticket = await _still_due(uow, task)
        if ticket is None:
            return
        due = local_time(rt.config, ticket.deadline_at)
        moved = await pass_up(
            rt, uow, ticket, reason="overdue",
            left=lambda t, place: t("Passed up to {place}: it was not resolved by {time}.",
                                    place=place, time=due),
            arrived=lambda t, place: t(
                "Passed up to this group from {place}: it was not resolved by {time}.",
                place=place, time=due),
            residents=lambda t, place: t(
                "It was not resolved in time, so we have passed {request} up to {place}.",
                request=your_request(t, ticket), place=place))
        if moved is not None:
            moved.missed_deadline = True  # resolved later at the new level, it is still late

    return {"deadline_remind": remind, "deadline_overdue": overdue,
            "deadline_escalate": escalate}

