"""Binding Telegram groups to org nodes: one group serves one node, one node has one group.

Only administrators from configuration may bind or unbind. Moving a node that already has an
active group, or re-pointing a group that already serves another node, needs a confirmation.
Functions change rows in the caller's unit of work; the caller commits (bot.actions.binding).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from bot.clock import Clock
from bot.services import audit
from storage.models import GroupChat, OrgNode
from storage.uow import UnitOfWork


class Outcome(enum.Enum):
    BOUND = "bound"
    ALREADY_BOUND = "already_bound"
    NEEDS_CONFIRMATION = "needs_confirmation"
    UNKNOWN_NODE = "unknown_node"
    NOT_ADMIN = "not_admin"
    UNBOUND = "unbound"
    NOT_BOUND = "not_bound"


@dataclass(frozen=True)
class GroupInfo:
    chat_id: int
    title: str
    chat_type: str
    is_forum: bool


@dataclass
class BindResult:
    outcome: Outcome
    node: OrgNode | None = None
    path: list[OrgNode] = field(default_factory=list)
    # For a move: the group that served the node before, and the node this group served.
    displaced_group: GroupChat | None = None
    previous_node: OrgNode | None = None
    group_language: str | None = None


async def bind(uow: UnitOfWork, clock: Clock, *, is_admin: bool, group: GroupInfo,
               user_id: int, default_language: str, code: str | None = None,
               node_id: int | None = None, confirmed: bool = False) -> BindResult:
    """Bind the group to the node named by `code` (from /bind) or `node_id` (from the
    confirmation button, which carries the id and means the move is confirmed)."""
    if not is_admin:
        return BindResult(Outcome.NOT_ADMIN)
    if code is not None:
        node = await uow.nodes.by_code(code.strip())
    else:
        node = await uow.nodes.get(node_id) if node_id is not None else None
    if node is None:
        return BindResult(Outcome.UNKNOWN_NODE)
    return await _bind_node(uow, clock, node=node, group=group, user_id=user_id,
                            confirmed=confirmed, default_language=default_language)


async def _bind_node(uow: UnitOfWork, clock: Clock, *, node: OrgNode, group: GroupInfo,
                     user_id: int, confirmed: bool, default_language: str) -> BindResult:
    now = clock.now()
    path = await uow.nodes.path(node)
    this = await uow.groups.seen(chat_id=group.chat_id, title=group.title,
                                 chat_type=group.chat_type, is_forum=group.is_forum, now=now,
                                 language=default_language)
    await uow.groups.flush()
    if this.node_id == node.id:
        return BindResult(Outcome.ALREADY_BOUND, node=node, path=path,
                          group_language=this.language)

    holder = await uow.groups.for_node(node.id)
    displaced = holder if holder is not None and holder.chat_id != group.chat_id else None
    previous = await uow.nodes.get(this.node_id) if this.node_id is not None else None
    # A group the bot has left can no longer serve anyone: taking its node needs no question.
    if not confirmed and (previous is not None or (displaced is not None and displaced.active)):
        return BindResult(Outcome.NEEDS_CONFIRMATION, node=node, path=path,
                          displaced_group=displaced, previous_node=previous,
                          group_language=this.language)
    if displaced is not None:
        displaced.node_id = None
        displaced.updated_at = now
        await uow.groups.flush()  # free the unique node slot before taking it
    this.node_id = node.id
    this.bound_by = user_id
    this.bound_at = now
    this.updated_at = now
    audit.record(uow, clock, audit.Actor.telegram(user_id), "bind",
                 target=f"group:{group.chat_id}", node=node.code,
                 previous_node=previous.code if previous else None,
                 displaced_group=displaced.chat_id if displaced else None)
    return BindResult(Outcome.BOUND, node=node, path=path, displaced_group=displaced,
                      previous_node=previous, group_language=this.language)


async def unbind(uow: UnitOfWork, clock: Clock, *, is_admin: bool, chat_id: int,
                 user_id: int | None = None) -> BindResult:
    """Only an administrator (``user_id``, for the admin action log) may unbind."""
    if not is_admin:
        return BindResult(Outcome.NOT_ADMIN)
    group = await uow.groups.get(chat_id)
    if group is None or group.node_id is None:
        return BindResult(Outcome.NOT_BOUND)
    node = await uow.nodes.get(group.node_id)
    path = await uow.nodes.path(node) if node else []
    group.node_id = None
    group.updated_at = clock.now()
    audit.record(uow, clock, audit.Actor("telegram", id=user_id), "unbind",
                 target=f"group:{chat_id}", node=node.code if node else None)
    return BindResult(Outcome.UNBOUND, node=node, path=path, group_language=group.language)
