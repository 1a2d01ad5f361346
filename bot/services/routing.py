"""Where a ticket goes: the category's target node, then the nearest active group up the tree."""

from __future__ import annotations

from bot.config import Category, tier_of
from storage.models import GroupChat, OrgNode
from storage.uow import UnitOfWork


async def target_node(uow: UnitOfWork, category: Category, grid: OrgNode | None) -> OrgNode:
    """The node responsible for a category at a place: a desk, or the place's grid or one of
    its ancestors at the category's level. Without a place, the district."""
    if category.target_desk:
        desk = await uow.nodes.by_code(category.target_desk)
        if desk is not None:
            return desk
    if grid is not None:
        path = await uow.nodes.path(grid)
        for node in reversed(path):
            if tier_of(node.level) == (category.target_level or "grid"):
                return node
        return path[-1]
    root = await uow.nodes.root()
    if root is None:
        raise LookupError("the org tree is empty")
    return root


async def handling_group(uow: UnitOfWork, node: OrgNode) -> tuple[OrgNode, GroupChat | None]:
    """The node itself if it has an active group, else the nearest ancestor that has one.
    The groups of the whole path are read at once (a query per level was four of a submit's
    statements)."""
    path = await uow.nodes.path(node)
    groups = await uow.groups.for_nodes([step.id for step in path])
    for current in reversed(path):
        group = groups.get(current.id)
        if group is not None and group.active:
            return current, group
    return node, None


async def escalation_target(uow: UnitOfWork, node: OrgNode) -> OrgNode | None:
    """Where a ticket at ``node`` goes when it is escalated: up from the group that handles it
    now, to the nearest node above that has an active group. Levels without a group are
    passed over, since nobody there could take the ticket: their tickets are shown in the
    group above anyway, and "escalating" one there would land it in the very same group, or,
    seen from that group, lower down the tree. None when nothing above can take it (the
    district centre, or no group bound above). A ticket no group handles at all (none is
    bound on its path) just goes to the parent: it has no group to lose."""
    handler, group = await handling_group(uow, node)
    if group is None:
        return await uow.nodes.get(node.parent_id) if node.parent_id else None
    current = await uow.nodes.get(handler.parent_id) if handler.parent_id else None
    while current is not None:
        above = await uow.groups.for_node(current.id)
        if above is not None and above.active and above.chat_id != group.chat_id:
            return current
        current = await uow.nodes.get(current.parent_id) if current.parent_id else None
    return None
