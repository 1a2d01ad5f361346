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
    """The node itself if it has an active group, else the nearest ancestor that has one."""
    current: OrgNode | None = node
    while current is not None:
        group = await uow.groups.for_node(current.id)
        if group is not None and group.active:
            return current, group
        current = await uow.nodes.get(current.parent_id) if current.parent_id else None
    return node, None
