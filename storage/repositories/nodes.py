"""The org tree: districts, streets, communities, grids and desks.

The tree changes only when an operator imports a file or the desks of the configuration are
synced, yet every card, summary and routing decision names places in it: a ``TreeCache`` (one
per Runtime, that is per process) keeps a snapshot of it in memory so that those reads cost no
statement. The database stays the truth:

* a unit of work that writes nodes (``add``, ``delete``, ``flush``, ``for_writing``) reads
  and writes the rows themselves and drops the snapshot when it commits, so this process sees
  its own changes at once;
* another process (``gridgate grids import``, another instance) changes the tree without
  telling this one: at most every ``check_every`` seconds a unit of work that reads the tree
  compares a fingerprint of the table (row count, latest ``updated_at``, highest id: one
  aggregate over a table of a few thousand rows) with the snapshot's, and reloads on a
  difference. Every import and desk change sets ``updated_at``, and a deletion lowers the
  count or, with an insertion, raises the highest id. So another process's change is seen
  within ``check_every`` seconds. A node asked for by id or code that the snapshot does not
  hold is read from the database, so a node created a moment ago is found anyway.

Snapshot nodes are plain ``OrgNode`` objects that belong to no session (transient): they are
for reading. Code that changes nodes must get them with ``for_writing()`` first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import event, func, literal, or_, select
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

_SNAPSHOT_COLUMNS = (OrgNode.id, OrgNode.code, OrgNode.level, OrgNode.parent_id, OrgNode.name,
                     OrgNode.name_zh_hant, OrgNode.name_en, OrgNode.created_at,
                     OrgNode.updated_at)
# Geometry stays out of the snapshot (it is large and only the grid index reads it, from the
# rows).


@dataclass(frozen=True)
class TreeSnapshot:
    """The org tree as it was at one moment, indexed for the reads the bot makes."""

    version: tuple
    by_id: Mapping[int, OrgNode]
    by_code: Mapping[str, OrgNode]
    children: Mapping[int, tuple[OrgNode, ...]]
    root: OrgNode | None

    def path(self, node: OrgNode) -> list[OrgNode] | None:
        """``node`` and its ancestors, root first; None if an ancestor is not in the
        snapshot (then the caller asks the database)."""
        ancestors: list[OrgNode] = []
        parent_id = node.parent_id
        while parent_id is not None:
            parent = self.by_id.get(parent_id)
            if parent is None or len(ancestors) > len(self.by_id):
                return None
            ancestors.append(parent)
            parent_id = parent.parent_id
        return [*reversed(ancestors), node]


class TreeCache:
    """The org tree in memory for one process (see the module docstring for how it is kept
    in step with the database). ``loads`` and ``checks`` count the statements it made."""

    def __init__(self, *, check_every: float = 2.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.check_every = check_every
        self._monotonic = monotonic
        self._snapshot: TreeSnapshot | None = None
        self._checked = -math.inf
        self._generation = 0
        self.loads = 0
        self.checks = 0

    def invalidate(self) -> None:
        self._snapshot = None
        self._generation += 1

    async def snapshot(self, session: AsyncSession) -> TreeSnapshot:
        now = self._monotonic()
        snapshot = self._snapshot
        if snapshot is not None and now - self._checked < self.check_every:
            return snapshot
        generation = self._generation
        if snapshot is not None:
            self.checks += 1
            version = await _fingerprint(session)
            if version == snapshot.version:
                if generation == self._generation:
                    self._checked = now
                return snapshot
        self.loads += 1
        version = await _fingerprint(session)
        rows = (await session.execute(select(*_SNAPSHOT_COLUMNS))).all()
        snapshot = _build(version, rows)
        # An invalidation while this was read (a commit that changed the tree) wins: the
        # rows read may predate it. The snapshot still serves this unit of work.
        if generation == self._generation:
            self._snapshot = snapshot
            self._checked = now
        return snapshot


async def _fingerprint(session: AsyncSession) -> tuple:
    stmt = select(func.count(), func.max(OrgNode.updated_at), func.max(OrgNode.id))
    return tuple((await session.execute(stmt)).one())


def _build(version: tuple, rows: Sequence) -> TreeSnapshot:
    nodes = [OrgNode(**row._asdict()) for row in rows]
    by_id = {node.id: node for node in nodes}
    children: dict[int, list[OrgNode]] = {}
    for node in sorted(nodes, key=lambda n: n.code):
        if node.parent_id is not None:
            children.setdefault(node.parent_id, []).append(node)
    roots = [node for node in nodes if node.level == "district" and node.parent_id is None]
    return TreeSnapshot(version=version, by_id=by_id,
                        by_code={node.code: node for node in nodes},
                        children={key: tuple(value) for key, value in children.items()},
                        root=roots[0] if roots else None)


class NodeRepository:
    """Nodes by id, code, path, children and the root come from ``tree`` when one is given
    (a Runtime's units of work), until this unit of work writes nodes."""

    def __init__(self, session: AsyncSession, tree: TreeCache | None = None) -> None:
        self._s = session
        self._tree = tree

    def for_writing(self) -> None:
        """From now on this unit of work reads the rows themselves (to change them), and its
        commit drops the cached tree."""
        tree, self._tree = self._tree, None
        if tree is not None:
            tree.invalidate()
            event.listen(self._s.sync_session, "after_commit",
                         lambda _session: tree.invalidate(), once=True)

    async def _cached(self) -> TreeSnapshot | None:
        return await self._tree.snapshot(self._s) if self._tree is not None else None

    async def version(self) -> tuple:
        """Changes whenever the tree does (a grid index rebuilds on it)."""
        snapshot = await self._cached()
        return snapshot.version if snapshot is not None else await _fingerprint(self._s)

    async def get(self, node_id: int) -> OrgNode | None:
        snapshot = await self._cached()
        if snapshot is not None and node_id in snapshot.by_id:
            return snapshot.by_id[node_id]
        return await self._s.get(OrgNode, node_id)

    async def by_code(self, code: str) -> OrgNode | None:
        snapshot = await self._cached()
        if snapshot is not None and code in snapshot.by_code:
            return snapshot.by_code[code]
        return await self._s.scalar(select(OrgNode).where(OrgNode.code == code))

    async def all(self) -> Sequence[OrgNode]:
        return (await self._s.scalars(select(OrgNode).order_by(OrgNode.code))).all()

    async def count(self) -> int:
        return await self._s.scalar(select(func.count()).select_from(OrgNode)) or 0

    async def children(self, parent_id: int) -> Sequence[OrgNode]:
        snapshot = await self._cached()
        if snapshot is not None and parent_id in snapshot.by_id:
            return list(snapshot.children.get(parent_id, ()))
        stmt = select(OrgNode).where(OrgNode.parent_id == parent_id).order_by(OrgNode.code)
        return (await self._s.scalars(stmt)).all()

    async def root(self) -> OrgNode | None:
        snapshot = await self._cached()
        if snapshot is not None and snapshot.root is not None:
            return snapshot.root
        stmt = select(OrgNode).where(OrgNode.level == "district", OrgNode.parent_id.is_(None))
        return await self._s.scalar(stmt)

    async def path(self, node: OrgNode) -> list[OrgNode]:
        """The node and its ancestors, root first, read with one query: a ticket's summary,
        card and messages name its place several times, and a query per level made a third
        of a report's statements (bench/conversation.py)."""
        if node.parent_id is None:
            return [node]
        snapshot = await self._cached()
        if snapshot is not None:
            path = snapshot.path(node)
            if path is not None:
                return path
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
        self.for_writing()
        for node in nodes:
            await self._s.delete(node)
            await self._s.flush()

    def add(self, node: OrgNode) -> None:
        self.for_writing()
        self._s.add(node)

    async def flush(self) -> None:
        self.for_writing()
        await self._s.flush()
