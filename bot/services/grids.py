"""The org tree in the database: import, list, locate, and the desks from configuration.

Parsing and validation are pure (bot.services.orgtree); this module applies a validated file in
one transaction, so an import is all-or-nothing, and keeps an in-memory spatial index in step
with the database.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bot.clock import Clock
from bot.services.orgtree import (
    ExistingNode,
    GridLocator,
    ParsedFile,
    Problem,
    geometry_from_text,
    geometry_to_text,
    in_import_order,
    parse_file,
    parse_geojson,
    validate,
)
from storage.models import OrgNode
from storage.uow import UnitOfWork


class DeskCodeTaken(Exception):
    """A desk in the configuration has the code of a place in the org tree."""


class ImportRejected(Exception):
    """The file has problems; nothing was written."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = list(problems)


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int
    unchanged: int
    # The demo district this import took the place of: its code and how many places it had.
    replaced_demo: tuple[str, int] | None = None


def demo_district() -> ParsedFile:
    """The bundled demo district (示范区), which an empty database may be given to try the bot."""
    text = (resources.files("bot") / "data" / "demo_district.geojson").read_text("utf-8")
    return parse_geojson(text)


async def import_file(uow: UnitOfWork, clock: Clock, path: Path) -> ImportReport:
    """Validate and apply a GeoJSON or CSV file; raises ImportRejected with every problem."""
    return await import_parsed(uow, clock, parse_file(path))


async def import_parsed(uow: UnitOfWork, clock: Clock, parsed: ParsedFile) -> ImportReport:
    """Apply parsed features (created or updated by code) after validating them all."""
    features = parsed.features
    uow.nodes.for_writing()
    existing = {node.code: node for node in await uow.nodes.all()}
    replaced, problems = await _make_way(uow, existing, features)
    by_id = {node.id: node for node in existing.values()}
    problems += parsed.problems
    for feature in features:
        clash = existing.get(feature.code)
        if clash is not None and clash.level == "desk":
            problems.append(Problem(feature.index, feature.code,
                                    f"code {feature.code!r} is already used by a desk",
                                    unit=feature.unit))
    known = {
        node.code: ExistingNode(
            code=node.code, level=node.level,
            parent=by_id[node.parent_id].code if node.parent_id in by_id else None,
            geometry=geometry_from_text(node.geometry) if node.geometry else None)
        for node in existing.values() if node.level != "desk"
    }
    problems += validate(features, known, rejected=parsed.rejected,
                         incomplete=bool(parsed.problems))
    if problems:
        raise ImportRejected(problems)

    now = clock.now()
    created = updated = unchanged = 0
    # Parents before children, so every parent has an id when its children are written.
    for feature in in_import_order(features):
        parent_id = existing[feature.parent].id if feature.parent else None
        values = {
            "level": feature.level, "parent_id": parent_id, "name": feature.name,
            "name_zh_hant": feature.name_zh_hant, "name_en": feature.name_en,
        }
        # A CSV has no geometry: re-importing names and parents keeps the stored boundary.
        if feature.geometry is not None:
            values["geometry"] = geometry_to_text(feature.geometry)
        node = existing.get(feature.code)
        if node is None:
            node = OrgNode(code=feature.code, created_at=now, updated_at=now, **values)
            uow.nodes.add(node)
            existing[feature.code] = node
            created += 1
        elif any(getattr(node, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(node, key, value)
            node.updated_at = now
            updated += 1
        else:
            unchanged += 1
        await uow.nodes.flush()
    await _reparent_desks(uow, existing.values())
    return ImportReport(created=created, updated=updated, unchanged=unchanged,
                        replaced_demo=replaced)


async def _make_way(uow: UnitOfWork, existing: dict[str, OrgNode],
                    features: Sequence) -> tuple[tuple[str, int] | None, list[Problem]]:
    """A file that brings another district than the database's: when the database's is the
    demo, loaded into the empty database and never used, it goes (removed from ``existing``
    too) and the new district takes its place. Otherwise, with two districts the import is
    refused, and the problem says how to start afresh.

    Returns the demo's code and size when it went, and the problems to report."""
    brought = {f.code for f in features if f.level == "district"}
    held = [node for node in existing.values() if node.level == "district"]
    if not brought or not held or brought & {node.code for node in held}:
        return None, []
    places = [node for node in existing.values() if node.level != "desk"]
    demo = {feature.code for feature in demo_district().features}
    root = held[0].code
    if {node.code for node in places} != demo:
        return None, [Problem(None, None, (
            f"the database already holds the district {root!r}, and one database serves one "
            f"district: to change {root!r}, give the file its code; to start another, set "
            "[database] url (DATABASE_URL) to a new database and import there"))]
    uses = await uow.nodes.uses([node.id for node in places])
    if uses:
        used = ", ".join(f"{count} {kind}" for kind, count in uses.items())
        return None, [Problem(None, None, (
            f"the database holds the demo district {root!r}, which has been used ({used}), so "
            "it is not replaced; to start your district, set [database] url (DATABASE_URL) to "
            "a new database and import there (and set [general] demo_district_when_empty = "
            "false, so the demo does not come back)"))]
    for node in existing.values():
        if node.level == "desk":
            node.parent_id = None  # until _reparent_desks hangs them under the new district
    await uow.nodes.flush()
    by_id = {node.id: node for node in places}

    def depth(node: OrgNode) -> int:
        return 0 if node.parent_id not in by_id else 1 + depth(by_id[node.parent_id])

    await uow.nodes.delete(sorted(places, key=depth, reverse=True))
    for node in places:
        del existing[node.code]
    return (root, len(places)), []


async def sync_desks(uow: UnitOfWork, clock: Clock, desks: Iterable[tuple[str, str, str | None,
                                                                          str | None]]) -> None:
    """Create or rename the desks from configuration: (code, name, name_zh_hant, name_en)."""
    uow.nodes.for_writing()
    root = await uow.nodes.root()
    now = clock.now()
    for code, name, name_zh_hant, name_en in desks:
        node = await uow.nodes.by_code(code)
        if node is None:
            uow.nodes.add(OrgNode(code=code, level="desk", name=name, name_zh_hant=name_zh_hant,
                                  name_en=name_en, parent_id=root.id if root else None,
                                  created_at=now, updated_at=now))
        elif node.level != "desk":
            raise DeskCodeTaken(f"desk {code!r} in the configuration has the code of the "
                                f"{node.level} {code!r} in the org tree; give the desk "
                                f"another code")
        else:
            values = (name, name_zh_hant, name_en, root.id if root else None)
            if (node.name, node.name_zh_hant, node.name_en, node.parent_id) != values:
                node.name, node.name_zh_hant, node.name_en, node.parent_id = values
                node.updated_at = now
    await uow.nodes.flush()


async def _reparent_desks(uow: UnitOfWork, nodes: Iterable[OrgNode]) -> None:
    # Desks hang under the district so that escalation from a desk reaches the district centre;
    # a desk created before any district was imported gets its parent here.
    root = await uow.nodes.root()
    if root is None:
        return
    for node in nodes:
        if node.level == "desk" and node.parent_id != root.id:
            node.parent_id = root.id


class GridDirectory:
    """Point → grid, through an STRtree kept in memory and rebuilt when the tree changes.

    Another process may import grids at any time, so the index remembers the tree's version
    (``uow.nodes.version()``: the Runtime's tree cache, which checks the database at most
    every few seconds, or a fingerprint read from the database without one) and rebuilds when
    it differs.
    """

    def __init__(self) -> None:
        self._locator: GridLocator | None = None
        self._fingerprint: tuple | None = None

    async def locate(self, uow: UnitOfWork, *, lat: float, lon: float) -> OrgNode | None:
        fingerprint = await uow.nodes.version()
        if self._locator is None or fingerprint != self._fingerprint:
            grids = await uow.nodes.grids_with_geometry()
            self._locator = GridLocator(
                (g.code, geometry_from_text(g.geometry)) for g in grids if g.geometry)
            self._fingerprint = fingerprint
        code = self._locator.locate(lat=lat, lon=lon)
        return await uow.nodes.by_code(code) if code else None


def path_label(path: Sequence[OrgNode], language: str) -> str:
    return " / ".join(node.display_name(language) for node in path)


# Boundaries drawn on the pages' maps are simplified to about 2 m: enough for a screen, and a
# fraction of the points an imported boundary has.
_DRAWN_WITHIN = 0.00002


@functools.lru_cache(maxsize=8192)
def outline(geometry: str) -> tuple[tuple[tuple[tuple[float, float], ...], ...],
                                    tuple[float, float, float, float]] | None:
    """The outer rings of a stored boundary, simplified for drawing, and its bounds; None if
    it has none. Kept per boundary text, so an edited boundary is read afresh."""
    shape = geometry_from_text(geometry).simplify(_DRAWN_WITHIN, preserve_topology=True)
    rings = []
    for polygon in getattr(shape, "geoms", [shape]):
        exterior = getattr(polygon, "exterior", None)
        if exterior is not None and not exterior.is_empty:
            rings.append(tuple((round(x, 6), round(y, 6)) for x, y in exterior.coords))
    if not rings:
        return None
    return tuple(rings), tuple(shape.bounds)
