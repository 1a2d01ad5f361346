"""What happens to a group's row when the bot joins, leaves, or the group migrates.

Functions change rows in the caller's unit of work; the caller (an action) commits.
"""

from __future__ import annotations

import html
import inspect
import logging
from collections.abc import Awaitable, Callable

from bot.clock import Clock
from bot.services import audit
from bot.services.binding import GroupInfo
from storage.models import GroupChat, Ticket
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# post_card(uow, ticket, group, why): show a ticket in a group, in the caller's transaction,
# as its new card (and set ticket.group_chat_id to wherever it showed it). ``why`` says what
# happened, for the note on the card: one of the reasons below.
PostCard = Callable[[UnitOfWork, Ticket, GroupChat, str], Awaitable[None] | None]
REROUTED = "rerouted"  # the bot can no longer post in the group that had the ticket
MIGRATED = "migrated"  # the group became a supergroup, where the old card is not valid

# Plain text, not translated: the real card renderer passed as post_card (bot.actions.notifier)
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


async def bot_joined(uow: UnitOfWork, clock: Clock, group: GroupInfo,
                     default_language: str, *, can_manage_topics: bool | None = None) -> GroupChat:
    """The bot is in the group (joined, or its rights changed: ``can_manage_topics``, when
    the update says, is whether it may create forum topics there)."""
    row = await uow.groups.seen(chat_id=group.chat_id, title=group.title,
                                chat_type=group.chat_type, is_forum=group.is_forum,
                                now=clock.now(), language=default_language)
    if can_manage_topics is not None and row.can_manage_topics is not can_manage_topics:
        row.can_manage_topics = can_manage_topics
        row.updated_at = clock.now()
    return row


async def migrated(uow: UnitOfWork, clock: Clock, *, old_chat_id: int, new_chat_id: int,
                   title: str = "", is_forum: bool = False,
                   post_card: PostCard | None = None) -> GroupChat | None:
    """A group became a supergroup with a new id: the new id takes over the binding, the
    language, the open tickets shown there and whatever waits in the outbox. Not committed
    here.

    A supergroup numbers its messages afresh, so the cards shown in the old group are no use
    in the new one: each open ticket gets a fresh card there through ``post_card`` (the
    default, ``note_only_card``, is a stand-in note), its pending card edits fail as
    stale, and its pending conversation follows behind the fresh card. A ticket whose card
    had not gone out yet just has it sent to the new id. Tickets that are over stay with the
    old group, where their ids are valid.

    Telegram sends the news twice (in the old group and in the new one), and the outbox sender
    may learn it from a ChatMigrated error first; every repetition is a no-op.
    """
    old = await uow.groups.get(old_chat_id)
    now = clock.now()
    new = None
    if old is not None:
        new = await uow.groups.get(new_chat_id)
        if new is None:
            new = GroupChat(chat_id=new_chat_id, title=title or old.title,
                            chat_type="supergroup", is_forum=is_forum, active=True,
                            language=old.language, created_at=now, updated_at=now)
            uow.groups.add(new)
        if old.node_id is not None and new.node_id is None:
            node_id, old.node_id = old.node_id, None
            await uow.groups.flush()  # free the unique node slot before the new id takes it
            new.node_id, new.bound_by, new.bound_at = node_id, old.bound_by, old.bound_at
            new.language = old.language
        old.active = False
        old.updated_at = new.updated_at = now
    await uow.outbox.retarget(old_chat_id, new_chat_id)
    moved = await uow.tickets.move_group(old_chat_id, new_chat_id, now)
    group = new or await uow.groups.get(new_chat_id)
    for ticket in moved:
        had_card = ticket.card_message_id is not None or ticket.topic_id is not None
        if not had_card and await uow.outbox.pending_card(ticket.id, new_chat_id) is not None:
            continue  # its first card is still on its way, now to the new id
        if group is None:
            # Not a group we know: nothing to show the card in (and nothing to bind).
            ticket.card_message_id = ticket.topic_id = None
            continue
        await repost(uow, clock, ticket, from_chat=new_chat_id, group=group, why=MIGRATED,
                     post_card=post_card)
    return new


async def repost(uow: UnitOfWork, clock: Clock, ticket: Ticket, *, from_chat: int,
                 group: GroupChat | None, why: str, post_card: PostCard | None) -> None:
    """The ticket's card in ``from_chat`` is no longer its card: the ticket forgets it, its
    pending card rows there fail as stale, ``post_card`` shows it in ``group`` (None: no
    group is left to show it in), and its pending conversation there follows it to the group
    it ends up in."""
    if post_card is None:
        post_card = note_only_card(clock)
    conversation = await uow.outbox.leave_chat(ticket.id, from_chat)
    ticket.group_chat_id = ticket.card_message_id = ticket.topic_id = None
    ticket.updated_at = clock.now()
    if group is not None:
        result = post_card(uow, ticket, group, why)
        if inspect.isawaitable(result):
            await result
    uow.outbox.follow(conversation, ticket.group_chat_id, clock.now())
    if group is not None and ticket.group_chat_id is None:
        log.warning("ticket %s: no card was posted after it left group %s", ticket.number,
                    from_chat)


async def set_group_language(uow: UnitOfWork, clock: Clock, group: GroupInfo, language: str,
                             default_language: str, *, admin_id: int | None = None) -> None:
    """An administrator (``admin_id``, for the admin action log) sets a group's language."""
    row = await uow.groups.seen(chat_id=group.chat_id, title=group.title,
                                chat_type=group.chat_type, is_forum=group.is_forum,
                                now=clock.now(), language=default_language)
    previous, row.language = row.language, language
    audit.record(uow, clock, audit.Actor("telegram", id=admin_id), "group_language",
                 target=f"group:{group.chat_id}", language=language,
                 previous=previous if previous != language else None)
