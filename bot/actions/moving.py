"""Moving a ticket to another place and showing the move: the one path for a worker's
transfer or escalation and for the timers that pass a ticket up.

The move is the rule's (``bot.services.tickets.move``: an escalation goes up only, to the
nearest level above the group that handles the ticket now that has a group of its own,
``routing.escalation_target``); showing it is the notifier's (``Notifier.moved``): the old
card retired with a note and its forum topic closed, and a new card in the group that now
serves the ticket, or, when that is the very same group, its card refreshed in place; the
residents told. Both run in the caller's transaction, which the caller commits (a timer's
is the ticker's). A reopening after the follow-up survey is moved by its rule
(``bot.services.surveys``) and shown the same way, with ``Notifier.moved``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.actions.notifier import Notifier
from bot.i18n import Translator
from bot.logs import bind_log_context
from bot.runtime import Runtime
from bot.services import tickets
from bot.views.places import place_html
from storage.models import OrgNode, Ticket
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# Each renders escaped HTML in its reader's language; ``place`` is a node's path (HTML): where
# the ticket went for ``left`` and ``residents``, where it came from for ``arrived``.
Said = Callable[[Translator, str], str]


@dataclass(frozen=True)
class Moved:
    ticket: Ticket
    source: OrgNode
    target: OrgNode


async def move_and_show(rt: Runtime, uow: UnitOfWork, ticket_id: int, *,
                        to_node_id: int | None, actor_id: int | None, role: str, reason: str,
                        kind: str, left: Said, arrived: Said, residents: Said,
                        system: bool = False, announce: bool = True) -> Moved:
    """Move the ticket (``to_node_id`` None: escalate it, up) and show the move. Raises
    ``TicketRefused`` when it cannot move, having changed nothing. ``announce`` False: the
    group it left hears of it from whoever moved it (a worker is answered in the group)."""
    ticket, source, target = await tickets.move(
        uow, rt.clock, rt.config, ticket_id, to_node_id=to_node_id, actor_id=actor_id,
        role=role, reason=reason, kind=kind, system=system)
    # As the locked row has them; showing the move points the ticket at its new group.
    old_chat, old_card, old_topic = (ticket.group_chat_id, ticket.card_message_id,
                                     ticket.topic_id)
    path, came_from = await uow.nodes.path(target), await uow.nodes.path(source)
    await Notifier(rt, uow).moved(
        ticket, old_chat=old_chat, old_card=old_card, old_topic=old_topic,
        left=lambda t: left(t, place_html(path, t.language)),
        arrived=lambda t: arrived(t, place_html(came_from, t.language)),
        residents=lambda t: residents(t, place_html(path, t.language)), announce=announce)
    bind_log_context(ticket=ticket.number)
    log.info("ticket %s %s from node %s to node %s", ticket.number, kind, source.code,
             target.code)
    return Moved(ticket, source, target)
