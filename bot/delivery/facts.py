"""What a permanent Telegram failure means for the data: a user who blocked the
bot is unreachable, a group the bot was removed from is inactive and its tickets go up the
tree, a group that became a supergroup lives on under its new id.

Like the services, these functions change rows and never commit: the sender records the
fact, the failed outbox rows and everything that follows in one transaction.
"""

from __future__ import annotations

import html
import logging

from bot.clock import Clock
from bot.config import Config
from bot.services.groups import MIGRATED, REROUTED, PostCard, repost
from storage.models import GroupChat, OrgNode, Ticket, TicketEvent, User
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# Plain text, not translated: the real card renderer passed as post_card (handlers.notify)
# shows a translated note of its own instead.
NOTES = {
    REROUTED: "↪️ Ticket <b>{number}</b> was moved here: the bot can no longer post in the "
              "group that handled it.",
    MIGRATED: "↪️ Ticket <b>{number}</b>: this group became a supergroup, so its card is "
              "posted here again.",
}


def note_only_card(clock: Clock) -> PostCard:
    """The default post_card: a note alone, as the ticket's stand-in card, so nothing is lost
    (replies to it are relayed, and later card edits turn it into the real card)."""

    async def post(uow: UnitOfWork, ticket: Ticket, group: GroupChat, why: str) -> None:
        note = NOTES.get(why, NOTES[REROUTED]).format(number=html.escape(ticket.number))
        ticket.group_chat_id = group.chat_id
        uow.outbox.add(chat_id=group.chat_id, method="sendMessage",
                       params={"chat_id": group.chat_id, "text": note, "parse_mode": "HTML"},
                       now=clock.now(), ticket_id=ticket.id, purpose="card")

    return post


async def user_unreachable(uow: UnitOfWork, clock: Clock, user_id: int) -> None:
    now = clock.now()
    user = await uow.users.get(user_id)
    if user is None:
        uow.session.add(User(id=user_id, language=None, telegram_language_code=None,
                             unreachable=True, created_at=now, updated_at=now))
    elif not user.unreachable:
        user.unreachable = True
        user.updated_at = now


async def group_gone(uow: UnitOfWork, clock: Clock, config: Config, chat_id: int,
                     post_card: PostCard | None = None) -> list[Ticket]:
    """The bot was removed from a group (or may no longer post there): the group turns
    inactive, then its open tickets move on."""
    group = await uow.groups.get(chat_id)
    if group is not None and group.active:
        group.active = False
        group.updated_at = clock.now()
    return await reroute_from_group(uow, clock, config, chat_id, post_card=post_card)


async def _nearest_active_group(uow: UnitOfWork, node: OrgNode | None,
                                dead_chat_id: int) -> tuple[OrgNode | None, GroupChat | None]:
    current = node
    while current is not None:
        group = await uow.groups.for_node(current.id)
        if group is not None and group.active and group.chat_id != dead_chat_id:
            return current, group
        current = await uow.nodes.get(current.parent_id) if current.parent_id else None
    return None, None


async def reroute_from_group(uow: UnitOfWork, clock: Clock, config: Config, chat_id: int, *,
                             post_card: PostCard | None = None) -> list[Ticket]:
    """Move the open tickets shown in a dead group to the nearest group that still works.

    The ticket keeps its node (who is responsible does not change, only which group handles
    it); it forgets the dead group's card and topic, logs a ``rerouted``
    event, and ``post_card`` shows it in the group found — the node's own new group if it has
    one, else the nearest ancestor's. What was still waiting to be said in the dead group
    about the ticket (its conversation) follows it there, behind the new card; its card rows
    fail. With no group left anywhere, the ticket waits without one (the district centre's
    group is required by configuration, so that means it is the dead one). ``config`` is for
    the card renderer's sake; nothing here depends on it yet.
    """
    now = clock.now()
    moved = list(await uow.tickets.open_in_group(chat_id))
    for ticket in moved:
        node, group = await _nearest_active_group(uow, await uow.nodes.get(ticket.node_id),
                                                  chat_id)
        uow.tickets.log(TicketEvent(ticket_id=ticket.id, at=now, kind="rerouted",
                                    actor_id=None, actor_role="system",
                                    data={"from_group": chat_id,
                                          "to_node": node.code if node else None}))
        if group is None:
            log.warning("ticket %s lost group %s and no active group is above it",
                        ticket.number, chat_id)
        await repost(uow, clock, ticket, from_chat=chat_id, group=group, why=REROUTED,
                     post_card=post_card or note_only_card(clock))
    return moved
