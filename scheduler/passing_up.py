"""A timer passes a ticket up one level (no claim in time, or overdue): the system move
and its announcements, shared by the claim and deadline timers."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.actions.notifier import Notifier
from bot.i18n import Translator
from bot.runtime import Runtime
from bot.services import tickets
from bot.services.tickets import TicketRefused
from bot.views.places import place_html
from storage.models import Ticket
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# Each renders escaped HTML in its reader's language; ``place`` is a node's path: where the
# ticket went for ``left`` and ``residents``, where it came from for ``arrived``.
Said = Callable[[Translator, str], str]


async def pass_up(rt: Runtime, uow: UnitOfWork, ticket: Ticket, *, reason: str, left: Said,
                  arrived: Said, residents: Said) -> Ticket | None:
    """Move the ticket up, from whoever holds it, to the nearest level above its group that
    has a group of its own (levels without one are passed over: nobody there could take
    it), and show the move as every mover does (``Notifier.moved``). None when it cannot go
    up (the district itself, no group above, or no longer movable)."""
    try:
        ticket, source, target = await tickets.move(
            uow, rt.clock, rt.config, ticket.id, to_node_id=None, actor_id=None,
            role="system", reason=reason, kind="escalated", system=True)
    except TicketRefused as refused:
        log.info("ticket %s not passed up (%s): %s", ticket.number, reason or "unclaimed",
                 refused.refusal.value)
        return None
    # As the locked row has them; showing the move points the ticket at its new group.
    old_chat, old_card, old_topic = (ticket.group_chat_id, ticket.card_message_id,
                                     ticket.topic_id)
    path, came_from = await uow.nodes.path(target), await uow.nodes.path(source)
    await Notifier(rt, uow).moved(
        ticket, old_chat=old_chat, old_card=old_card, old_topic=old_topic,
        left=lambda t: left(t, place_html(path, t.language)),
        arrived=lambda t: arrived(t, place_html(came_from, t.language)),
        residents=lambda t: residents(t, place_html(path, t.language)))
    return ticket
