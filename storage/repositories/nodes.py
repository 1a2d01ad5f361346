"""The org tree: districts, streets, communities, grids and desks."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Draft,
    Enterprise,
    GroupChat,
    OrgNode,
    Ticket,
    TicketResolution,
    TicketSurvey,
)


class NodeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, node_id: int) -> OrgNode | None:
        return await self._s.get(OrgNode, node_id)

    async def by_code(self, code: str) -> OrgNode | None:
        return await self._s.scalar(select(OrgNode).where(OrgNode.code == code))

    async def all(self) -> Sequence[OrgNode]:
        return (await self._s.scalars(select(OrgNode).order_by(OrgNode.code))).all()

    async def count(self) -> int:
        return await self._s.scalar(select(func.count()).select_from(OrgNode)) or 0

    async def children(self, parent_id: int) -> Sequence[OrgNode]:
        stmt = select(OrgNode).where(OrgNode.parent_id == parent_id).order_by(OrgNode.code)
        return (await self._s.scalars(stmt)).all()

    async def root(self) -> OrgNode | None:
        stmt = select(OrgNode).where(OrgNode.level == "district", OrgNode.parent_id.is_(None))
        return await self._s.scalar(stmt)

    async def path(self, node: OrgNode) -> list[OrgNode]:
        """The node and its ancestors, root first, read with one query: a ticket's summary,
        card and messages name its place several times, and a query per level made a third
        of a report's statements (bench/conversation.py)."""
        if node.parent_id is None:
            return [node]
        up = (select(OrgNode.id, OrgNode.parent_id, literal(1).label("depth"))
              .where(OrgNode.id == node.parent_id).cte("up", recursive=True))
        up = up.union_all(select(OrgNode.id, OrgNode.parent_id, up.c.depth + 1)
                          .where(OrgNode.id == up.c.parent_id))
        ancestors = (await self._s.scalars(select(OrgNode).join(up, OrgNode.id == up.c.id)
                                           .order_by(up.c.depth.desc()))).all()
        return [*ancestors, node]

    async def grids_with_geometry(self) -> Sequence[OrgNode]:
        stmt = select(OrgNode).where(OrgNode.level == "grid", OrgNode.geometry.is_not(None))
        return (await self._s.scalars(stmt)).all()

    async def grid_fingerprint(self) -> tuple[int, object]:
        """Count and latest change of the grid rows: cheap, and changes with every import."""
        stmt = select(func.count(), func.max(OrgNode.updated_at)).where(OrgNode.level == "grid")
        count, latest = (await self._s.execute(stmt)).one()
        return count, latest

    async def uses(self, node_ids: Collection[int]) -> dict[str, int]:
        """What in the database points at these nodes, by kind ("tickets", "bound groups",
        …): nothing means they can be removed without losing anything."""
        ids = list(node_ids)
        counts = {
            "tickets": select(func.count()).select_from(Ticket).where(
                or_(Ticket.node_id.in_(ids), Ticket.grid_id.in_(ids))),
            "follow-up answers": select(func.count()).select_from(TicketSurvey).where(
                TicketSurvey.node_id.in_(ids)),
            # A ticket resolved at a place and then moved on (reopened, passed up) still
            # counts that work there.
            "resolutions": select(func.count()).select_from(TicketResolution).where(
                TicketResolution.node_id.in_(ids)),
            "bound groups": select(func.count()).select_from(GroupChat).where(
                GroupChat.node_id.in_(ids)),
            "enterprises": select(func.count()).select_from(Enterprise).where(
                Enterprise.node_id.in_(ids)),
            # A draft keeps the places it was given by id inside its answers: any draft at
            # all may hold one of these.
            "unfinished forms": select(func.count()).select_from(Draft),
        }
        found = {kind: await self._s.scalar(query) or 0 for kind, query in counts.items()}
        return {kind: count for kind, count in found.items() if count}

    async def delete(self, nodes: Sequence[OrgNode]) -> None:
        """Remove ``nodes``, given children before parents (a parent is RESTRICTed)."""
        for node in nodes:
            await self._s.delete(node)
            await self._s.flush()

    def add(self, node: OrgNode) -> None:
        self._s.add(node)

    async def flush(self) -> None:
        await self._s.flush()
