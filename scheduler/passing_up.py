"""A timer passes a ticket up one level (no claim in time, or overdue): the system move
and its announcements, shared by the claim and deadline timers."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.i18n import Translator
from bot.runtime import Runtime
from bot.services import tickets
from bot.services.tickets import TicketRefused
from handlers.common import place_html
from handlers.notify import Notifier
from storage.models import Ticket
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# Each renders escaped HTML in its reader's language; ``place`` is the new node's path.
Said = Callable[[Translator, str], str]


async def pass_up(rt: Runtime, uow: UnitOfWork, ticket: Ticket, *, reason: str, left: Said,
                  arrived: Callable[[Translator], str], residents: Said) -> Ticket | None:
    """Move the ticket to its parent node, from whoever holds it, and tell the group it
    left (``left``), the group that gets it (``arrived``) and its residents. None when it
    cannot go up (the district itself, or no longer movable)."""
    old_chat, old_card = ticket.group_chat_id, ticket.card_message_id
    try:
        ticket, _, target = await tickets.move(
            uow, rt.clock, rt.config, ticket.id, to_node_id=None, actor_id=None,
            role="system", reason=reason, kind="escalated", system=True)
    except TicketRefused as refused:
        log.info("ticket %s not passed up (%s): %s", ticket.number, reason or "unclaimed",
                 refused.refusal.value)
        return None
    path = await uow.nodes.path(target)
    await Notifier(rt, uow).moved(
        ticket, old_chat=old_chat, old_card=old_card,
        left=lambda t: left(t, place_html(path, t.language)), arrived=arrived,
        residents=lambda t: residents(t, place_html(path, t.language)))
    return ticket
