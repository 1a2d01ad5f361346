"""The org tree: districts, streets, communities, grids and desks."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OrgNode


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
        """The node and its ancestors, root first. The tree is a few levels deep."""
        chain = [node]
        while chain[-1].parent_id is not None:
            parent = await self._s.get(OrgNode, chain[-1].parent_id)
            if parent is None:  # pragma: no cover - prevented by the foreign key
                break
            chain.append(parent)
        return chain[::-1]

    async def grids_with_geometry(self) -> Sequence[OrgNode]:
        stmt = select(OrgNode).where(OrgNode.level == "grid", OrgNode.geometry.is_not(None))
        return (await self._s.scalars(stmt)).all()

    async def grid_fingerprint(self) -> tuple[int, object]:
        """Count and latest change of the grid rows: cheap, and changes with every import."""
        stmt = select(func.count(), func.max(OrgNode.updated_at)).where(OrgNode.level == "grid")
        count, latest = (await self._s.execute(stmt)).one()
        return count, latest

    def add(self, node: OrgNode) -> None:
        self._s.add(node)

    async def flush(self) -> None:
        await self._s.flush()
