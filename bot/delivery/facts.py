"""What a permanent Telegram failure means for the data: a user who blocked the
bot is unreachable, a group the bot was removed from is inactive and its tickets go up the
tree, a group that became a supergroup lives on under its new id.

Like the services, these functions change rows and never commit: the sender records the
fact, the failed outbox rows and everything that follows in one transaction.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.clock import Clock
from bot.config import Config
from bot.services import tickets
from bot.services.groups import REROUTED, PostCard, note_only_card, repost
from bot.services.text import user_html
from storage.models import OPEN_STATUSES, GroupChat, OrgNode, Ticket, TicketEvent, User
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# What the people concerned are told about a delivery that failed for good, written to the
# outbox in the caller's transaction: card_failed(uow, ticket, to, meant_for) tells the district
# centre's group ``to`` that the ticket's card never reached ``meant_for``;
# resident_unreachable(uow, ticket, group) tells the ticket's group that its resident blocked
# the bot; card_arrived(uow, ticket, to, meant_for) takes card_failed back, the card having
# reached ``meant_for`` after all. The real ones (bot.actions.notifier) speak the group's language.
CardFailed = Callable[[UnitOfWork, Ticket, GroupChat, GroupChat], Awaitable[None]]
ResidentUnreachable = Callable[[UnitOfWork, Ticket, GroupChat], Awaitable[None]]


@dataclass(frozen=True)
class Notices:
    card_failed: CardFailed
    resident_unreachable: ResidentUnreachable
    card_arrived: CardFailed


def plain_notices(clock: Clock) -> Notices:
    """The default notices: plain English, like ``note_only_card``."""

    def say(uow: UnitOfWork, chat_id: int, text: str) -> None:
        uow.outbox.add(chat_id=chat_id, method="sendMessage",
                       params={"chat_id": chat_id, "text": text, "parse_mode": "HTML"},
                       now=clock.now())

    async def card_failed(uow: UnitOfWork, ticket: Ticket, to: GroupChat,
                          meant_for: GroupChat) -> None:
        say(uow, to.chat_id, f"⚠️ The card of ticket <b>{html.escape(ticket.number)}</b> "
                             f"could not be delivered to {html.escape(meant_for.title)}.")

    async def resident_unreachable(uow: UnitOfWork, ticket: Ticket, group: GroupChat) -> None:
        say(uow, group.chat_id, f"⚠️ Ticket <b>{html.escape(ticket.number)}</b>: the resident "
                                "blocked the bot and cannot be reached.")

    async def card_arrived(uow: UnitOfWork, ticket: Ticket, to: GroupChat,
                           meant_for: GroupChat) -> None:
        say(uow, to.chat_id, f"✅ The card of ticket <b>{html.escape(ticket.number)}</b> did "
                             f"reach {user_html(meant_for.title)} after all.")

    return Notices(card_failed, resident_unreachable, card_arrived)


async def _district_and_group(uow: UnitOfWork, chat_id: int
                              ) -> tuple[GroupChat | None, GroupChat | None]:
    """The district centre's active group, to be told about a card for the group ``chat_id``
    (None when it has none, or is that very group), and that group."""
    root = await uow.nodes.root()
    district = await uow.groups.for_node(root.id) if root is not None else None
    if district is not None and (not district.active or district.chat_id == chat_id):
        district = None
    return district, await uow.groups.get(chat_id)


async def card_undelivered(uow: UnitOfWork, clock: Clock, ticket: Ticket, chat_id: int,
                           notices: Notices) -> bool:
    """The ticket's card could not be delivered to its group ``chat_id`` for good: the
    district centre's group is told (once per card: its row fails once) and the ticket's log
    says so. Nothing is said when the ticket no longer needs that card (it is over, has moved
    on, or has a card there after all), or when the group that failed is the district's own
    (then only the log and the ticket's events keep it). True when someone was told."""
    if (ticket.status not in OPEN_STATUSES or ticket.group_chat_id != chat_id
            or ticket.card_message_id is not None):
        return False
    uow.tickets.log(TicketEvent(ticket_id=ticket.id, at=clock.now(), kind="card_failed",
                                actor_id=None, actor_role="system", data={"group": chat_id}))
    district, meant_for = await _district_and_group(uow, chat_id)
    if district is None or meant_for is None:
        log.error("the card of ticket %s could not be delivered to group %s, and no other "
                  "group can be told", ticket.number, chat_id)
        return False
    await notices.card_failed(uow, ticket, district, meant_for)
    return True


async def card_arrived_after_all(uow: UnitOfWork, clock: Clock, ticket: Ticket,
                                 chat_id: int, notices: Notices) -> bool:
    """A card whose row had failed went out after all (a call still under way when its row
    was given up, e.g. by an instance that took it over): if the district centre's group was
    told it never arrived, it is told that it did, once, and the ticket's log says so. When
    the ticket no longer needs that card (it is over or has moved on) only the log keeps it.
    True when someone was told."""
    events = await uow.tickets.events(ticket.id)
    reported = [e for e in events if (e.data or {}).get("group") == chat_id
                and e.kind in ("card_failed", "card_arrived")]
    if not reported or reported[-1].kind != "card_failed":
        return False
    uow.tickets.log(TicketEvent(ticket_id=ticket.id, at=clock.now(), kind="card_arrived",
                                actor_id=None, actor_role="system", data={"group": chat_id}))
    district, meant_for = await _district_and_group(uow, chat_id)
    if (ticket.status not in OPEN_STATUSES or ticket.group_chat_id != chat_id
            or district is None or meant_for is None):
        return False
    await notices.card_arrived(uow, ticket, district, meant_for)
    return True


async def resident_lost(uow: UnitOfWork, clock: Clock, ticket: Ticket, user_id: int,
                        notices: Notices) -> bool:
    """A message to ``user_id`` about the ticket failed because they blocked the bot: if they
    reported it and it is still open, its group learns it, once per ticket."""
    if (ticket.reporter_id != user_id or ticket.status not in OPEN_STATUSES
            or ticket.group_chat_id is None):
        return False
    if any(event.kind == "resident_unreachable" for event in await uow.tickets.events(ticket.id)):
        return False
    group = await uow.groups.get(ticket.group_chat_id)
    if group is None or not group.active:
        return False
    uow.tickets.log(TicketEvent(ticket_id=ticket.id, at=clock.now(),
                                kind="resident_unreachable", actor_id=None,
                                actor_role="system", data={}))
    await notices.resident_unreachable(uow, ticket, group)
    return True


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
    one, else the nearest ancestor's. A claimed ticket arrives there unclaimed, its claim
    timers running again: its holder is in the dead group. What was still waiting to be said
    in the dead group about the ticket (its conversation) follows it there, behind the new
    card; its card rows fail. With no group left anywhere, the ticket waits without one (the
    district centre's group is required by configuration, so that means it is the dead one).
    ``config`` gives the claim timers.
    """
    now = clock.now()
    moved = list(await uow.tickets.open_in_group(chat_id))
    for ticket in moved:
        node, group = await _nearest_active_group(uow, await uow.nodes.get(ticket.node_id),
                                                  chat_id)
        data = {"from_group": chat_id, "to_node": node.code if node else None}
        # Its holder is in the group left behind: the ticket arrives unclaimed.
        holder = await tickets.unclaim_for_new_group(uow, clock, config, ticket)
        if holder is not None:
            data["holder"] = holder
        uow.tickets.log(TicketEvent(ticket_id=ticket.id, at=now, kind="rerouted",
                                    actor_id=None, actor_role="system", data=data))
        if group is None:
            log.warning("ticket %s lost group %s and no active group is above it",
                        ticket.number, chat_id)
        await repost(uow, clock, ticket, from_chat=chat_id, group=group, why=REROUTED,
                     post_card=post_card or note_only_card(clock))
    return moved
