"""The org tree, without a database or Telegram: parse an import file, validate it, locate points.

The tree is ``district → street | town | park → community | village → grid``.
Grid boundaries arrive as a GeoJSON FeatureCollection (or, without geometry, as a CSV with the
same columns); each feature/row carries ``code``, ``name``, optional ``name_zh_hant`` and
``name_en``, ``level`` and ``parent`` (a code). Re-importing updates nodes by code.

The flow an importer follows::

    parsed = parse_file(path)                      # ImportFileError if the file is unreadable
    problems = parsed.problems + validate(
        parsed.features, existing, rejected=parsed.rejected, incomplete=bool(parsed.problems)
    )
    if not problems:
        for spec in in_import_order(parsed.features): ...   # parents before children

Where a problem is (``Problem.index`` / ``NodeSpec.index``):

* GeoJSON: ``feature N`` — N is the 0-based position in the ``features`` array, the number a
  GIS tool or ``jq '.features[N]'`` shows.
* CSV: ``row N`` — N is the line number in the file at which the record ends, the header being
  row 1; this is the spreadsheet row number as long as no cell contains a line break.

Problems that belong to no single feature (no district at all, a cycle among nodes that were
imported earlier) have ``index`` None.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

LEVELS: tuple[str, ...] = ("district", "street", "town", "park", "community", "village", "grid")
LEVEL_RANK: dict[str, int] = {
    "district": 0,
    "street": 1,
    "town": 1,
    "park": 1,
    "community": 2,
    "village": 2,
    "grid": 3,
}
# Operators preparing a CSV in Chinese write the level in Chinese; accept the usual words.
LEVEL_ALIASES: dict[str, str] = {
    "区": "district",
    "區": "district",
    "街道": "street",
    "镇": "town",
    "鎮": "town",
    "乡": "town",
    "鄉": "town",
    "园区": "park",
    "園區": "park",
    "社区": "community",
    "社區": "community",
    "村": "village",
    "网格": "grid",
    "網格": "grid",
}

# Codes go into deep links (t.me/<bot>?startgroup=bind_<code>); Telegram allows 64 characters of
# A-Za-z0-9_- in the start parameter, "bind_" takes 5, and 48 leaves room for other prefixes.
CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,48}")
CODE_MAX = 48
NAME_MAX = 64
CSV_COLUMNS: tuple[str, ...] = ("code", "name", "name_zh_hant", "name_en", "level", "parent")
CSV_REQUIRED: tuple[str, ...] = ("code", "name", "level", "parent")

# A grid may stick out of its ancestor's boundary by this share of its own area (or by
# _OUTSIDE_ABS_DEG2, for tiny grids) before it counts as "outside". Boundaries drawn separately
# (a community outline from the street office, grids from the community) disagree by a few metres
# along their edges: a 5 m overshoot along one side of a 500 m grid is 1 %. A grid filed under
# the wrong parent, or with swapped coordinates, is far outside, so 1 % still catches the
# mistakes that matter. 1e-9 deg² is about 10 m² at Shanghai's latitude — floating-point noise.
_OUTSIDE_REL = 0.01
_OUTSIDE_ABS_DEG2 = 1e-9

_POLYGONAL = ("Polygon", "MultiPolygon")
_EMPTY_EXISTING: Mapping[str, ExistingNode] = MappingProxyType({})


class ImportFileError(Exception):
    """The file as a whole cannot be read (wrong format, encoding, structure or columns)."""


@dataclass(frozen=True)
class NodeSpec:
    """One node as read from an import file; ``index`` and ``unit`` say where (module doc)."""

    index: int
    code: str
    name: str
    name_zh_hant: str | None
    name_en: str | None
    level: str
    parent: str | None
    geometry: BaseGeometry | None
    unit: str = "feature"  # "feature" (GeoJSON) or "row" (CSV)

    @property
    def where(self) -> str:
        return f"{self.unit} {self.index}"


@dataclass(frozen=True)
class Problem:
    """Something wrong with the import; ``str()`` gives a line the operator can act on."""

    index: int | None
    code: str | None
    message: str
    unit: str = "feature"

    def __str__(self) -> str:
        if self.index is not None:
            where = f"{self.unit} {self.index}"
            if self.code:
                where += f" ({_display_code(self.code)})"
        elif self.code:
            where = f"node {_display_code(self.code)}"
        else:
            return self.message
        return f"{where}: {self.message}"


def _display_code(code: str) -> str:
    """``code`` as is if it prints plainly, else quoted with escapes — a code is still unchecked
    text from the file, and control characters (NUL, ANSI escapes) must not reach a terminal."""
    return code if code.isprintable() else repr(code)


@dataclass(frozen=True)
class ParsedFile:
    """What the parser could read: complete nodes, and problems with the rest.

    A feature with a parse-level problem (a field of the wrong type, unreadable geometry) is left
    out of ``features``; if its code could be read it is listed in ``rejected``, so that
    ``validate(..., rejected=parsed.rejected)`` does not pile follow-on errors ("parent is not
    known") onto its children.
    """

    features: list[NodeSpec]
    problems: list[Problem]
    rejected: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ExistingNode:
    """A node already in the database, as far as validation needs it."""

    code: str
    level: str
    parent: str | None
    geometry: BaseGeometry | None


# ---------------------------------------------------------------------------------------------
# Parsing


def parse_file(path: Path) -> ParsedFile:
    """Read a ``.geojson``/``.json`` (GeoJSON) or ``.csv`` file; UTF-8, a BOM is accepted.
    Its messages do not name the file: the caller says which file they are about."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".geojson", ".json", ".csv"):
        raise ImportFileError(
            f"unknown file type {suffix or '(none)'!r}; use .geojson, .json or .csv"
        )
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ImportFileError(f"cannot read it ({e.strerror or e})") from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        hint = ""
        try:
            raw.decode("gbk")
            # Excel on a Chinese Windows saves "CSV" as GBK; its "CSV UTF-8" option is the fix.
            hint = " It looks like GBK: save it as UTF-8 (in Excel: 'CSV UTF-8')."
        except UnicodeDecodeError:
            pass
        raise ImportFileError(
            f"not UTF-8 text (bad byte at offset {e.start}).{hint}"
        ) from e
    return parse_csv(text) if suffix == ".csv" else parse_geojson(text)


def parse_geojson(text: str) -> ParsedFile:
    """Parse a GeoJSON FeatureCollection (WGS84 lon/lat, RFC 7946)."""
    try:
        data = json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as e:
        raise ImportFileError(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    except RecursionError as e:  # the decoder recurses once per level of [ / {
        raise ImportFileError("not readable: the JSON nests arrays or objects too deeply") from e
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ImportFileError('not a GeoJSON FeatureCollection (its "type" must be that)')
    raw_features = data.get("features")
    if not isinstance(raw_features, list):
        raise ImportFileError('the FeatureCollection has no "features" array')

    reader = _Reader("feature")
    for index, feature in enumerate(raw_features):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            reader.problem(index, None, "not a GeoJSON Feature")
            continue
        properties = feature.get("properties")
        if properties is None:
            properties = {}
        if not isinstance(properties, dict):
            reader.problem(index, None, '"properties" must be an object')
            continue
        geometry, geometry_error = _read_geometry(feature.get("geometry"))
        reader.add(index, properties, geometry, [geometry_error] if geometry_error else [])
    return reader.result()


def parse_csv(text: str) -> ParsedFile:
    """Parse a CSV with a header row naming the columns ``CSV_COLUMNS``; no geometry."""
    rows = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(rows, None)
    except csv.Error as e:
        raise ImportFileError(f"not readable as CSV: {e}") from e
    if header is None:
        raise ImportFileError("the CSV file is empty; it needs a header row")
    columns = [column.strip().lower() for column in header]
    duplicated = sorted({c for c in columns if c and columns.count(c) > 1})
    if duplicated:
        raise ImportFileError(f"column(s) appear twice in the header: {', '.join(duplicated)}")
    missing = [c for c in CSV_REQUIRED if c not in columns]
    if missing:
        raise ImportFileError(
            f"missing column(s): {', '.join(missing)}; the header must name {','.join(CSV_COLUMNS)}"
        )

    reader = _Reader("row")
    while True:
        try:
            row = next(rows, None)
        except csv.Error as e:
            raise ImportFileError(f"not readable as CSV near line {rows.line_num}: {e}") from e
        if row is None:
            break
        row_number = rows.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank line, or a row of empty cells left behind by a spreadsheet
        if len(row) > len(columns):
            code = row[columns.index("code")].strip()
            reader.problem(
                row_number,
                code or None,
                f"has {len(row)} fields but the header has {len(columns)}",
            )
            if code:
                reader.rejected.add(code)
            continue
        # Spreadsheets and hand-written files leave out empty cells at the end of a row: they are
        # empty values. A row missing a required value is reported by the checks that follow.
        row += [""] * (len(columns) - len(row))
        # Extra, unknown columns are ignored: spreadsheets often carry notes beside the data.
        properties = {c: (v if v.strip() else None) for c, v in zip(columns, row, strict=True)}
        reader.add(row_number, properties, None, [])
    return reader.result()


class _Reader:
    """Turns one feature's properties into a NodeSpec, or into problems."""

    def __init__(self, unit: str) -> None:
        self.unit = unit
        self.features: list[NodeSpec] = []
        self.problems: list[Problem] = []
        self.rejected: set[str] = set()

    def problem(self, index: int, code: str | None, message: str) -> None:
        self.problems.append(Problem(index, code, message, self.unit))

    def add(
        self,
        index: int,
        properties: Mapping[str, Any],
        geometry: BaseGeometry | None,
        errors: list[str],
    ) -> None:
        raw_code = properties.get("code")
        if raw_code is None or (isinstance(raw_code, str) and not raw_code.strip()):
            self.problem(index, None, "code is missing")
            return
        if not isinstance(raw_code, str):
            # Numeric codes lose leading zeros on the way through tools; insist on text.
            self.problem(index, None, f"code must be text, not {_json_type(raw_code)} {raw_code!r}")
            return
        code = raw_code.strip()

        def text(key: str) -> str | None:
            value = properties.get(key)
            if value is None:
                return None
            if not isinstance(value, str):
                errors.append(f"{key} must be text, not {_json_type(value)} {value!r}")
                return None
            # Stray spaces around cells are common in hand-made files and never meaningful.
            return value.strip() or None

        name = text("name")
        name_zh_hant = text("name_zh_hant")
        name_en = text("name_en")
        level = text("level")
        parent = text("parent")
        if errors:
            for message in errors:
                self.problem(index, code, message)
            self.rejected.add(code)
            return
        level = (level or "").lower()
        self.features.append(
            NodeSpec(
                index=index,
                code=code,
                name=name or "",
                name_zh_hant=name_zh_hant,
                name_en=name_en,
                level=LEVEL_ALIASES.get(level, level),
                parent=parent,
                geometry=geometry,
                unit=self.unit,
            )
        )

    def result(self) -> ParsedFile:
        return ParsedFile(self.features, self.problems, frozenset(self.rejected))


# The GeoJSON geometry types (RFC 7946 §3.1), by their lower-case name: shapely's shape() reads
# the type regardless of case, and so do we.
_GEOMETRY_TYPES: dict[str, str] = {
    name.lower(): name
    for name in (
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    )
}
# How deeply each type's coordinates nest: a Point's are one position, a Polygon's an array of
# rings, each an array of positions.
_COORDINATE_DEPTH: dict[str, int] = {
    "Point": 1,
    "MultiPoint": 2,
    "LineString": 2,
    "MultiLineString": 3,
    "Polygon": 3,
    "MultiPolygon": 4,
}
_NOT_NESTED_NUMBERS = "geometry cannot be read: coordinates must be nested arrays of numbers"


def _read_geometry(raw: Any) -> tuple[BaseGeometry | None, str | None]:
    if raw is None:
        return None, None
    try:
        problem = _geometry_problem(raw)
        if problem is None:
            # shape() rather than from_geojson(): it closes unclosed rings instead of refusing
            # them, and validate() reports real topology problems with explain_validity anyway.
            return shape(raw), None
    except RecursionError:  # GeometryCollections nested hundreds deep
        problem = "geometry cannot be read: it is nested too deeply"
    except (TypeError, ValueError, LookupError):
        # What the checks above let through; shapely's messages for these describe its own
        # internals ("'int' object is not subscriptable"), not the file.
        problem = _NOT_NESTED_NUMBERS
    except Exception as e:  # GEOSException, whose message describes the geometry
        problem = f"geometry cannot be read: {e}"
    return None, problem


def _geometry_problem(raw: Any) -> str | None:
    """Why ``raw`` is not a GeoJSON geometry object that shape() can read; None if it is one."""
    if not isinstance(raw, dict):
        return f"geometry must be a GeoJSON object, not {_json_type(raw)}"
    kind = raw.get("type")
    if kind is None:
        return "geometry has no type"
    if not isinstance(kind, str):
        return f"geometry type must be text, not {_json_type(kind)}"
    geometry_type = _GEOMETRY_TYPES.get(kind.lower())
    if geometry_type is None:
        shown = kind if len(kind) <= 40 else kind[:40] + "…"
        return f"geometry type {shown!r} is not GeoJSON; grids use Polygon or MultiPolygon"
    if geometry_type == "GeometryCollection":
        members = raw.get("geometries", [])
        if not isinstance(members, list):
            return 'geometry cannot be read: "geometries" must be an array'
        return next(filter(None, map(_geometry_problem, members)), None)
    if "coordinates" not in raw:
        return "geometry cannot be read: member 'coordinates' is missing"
    coordinates = raw["coordinates"]
    if coordinates == []:
        return None  # an empty geometry, which validate() reports
    polygonal = geometry_type in _POLYGONAL
    return _coordinates_problem(coordinates, _COORDINATE_DEPTH[geometry_type], polygonal)


def _coordinates_problem(value: Any, depth: int, polygonal: bool) -> str | None:
    """Why ``value`` is not ``depth`` levels of arrays ending in positions; None if it is."""
    if not isinstance(value, list):
        return _NOT_NESTED_NUMBERS
    if depth == 1:  # a position
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
            return _NOT_NESTED_NUMBERS
        if len(value) not in (2, 3):
            return (
                "geometry cannot be read: a position must be [longitude, latitude], "
                f"optionally with a height, not {len(value)} numbers"
            )
        return None
    for item in value:
        problem = _coordinates_problem(item, depth - 1, polygonal)
        if problem:
            return problem
    if polygonal and depth == 2 and value:  # a ring; shape() closes an open one
        closed = len(value) if value[0] == value[-1] else len(value) + 1
        if closed < 4:
            return "geometry cannot be read: a polygon ring needs at least 3 corners"
    return None


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# ---------------------------------------------------------------------------------------------
# Validation


@dataclass(frozen=True)
class _Node:
    """A node of the combined graph: the file's entries over the existing ones."""

    code: str
    level: str | None  # None: a rejected file entry, level unknown
    parent: str | None
    geometry: BaseGeometry | None
    spec: NodeSpec | None  # set when the node comes from the file

    @property
    def placeholder(self) -> bool:
        return self.level is None


def validate(
    features: Sequence[NodeSpec],
    existing: Mapping[str, ExistingNode] = _EMPTY_EXISTING,
    *,
    rejected: Collection[str] = (),
    incomplete: bool = False,
) -> list[Problem]:
    """Every problem with importing ``features`` on top of ``existing`` (keyed by code).

    The tree checked is the combination: a file entry replaces the existing node with the same
    code (re-import updates by code) — except that a file entry without geometry keeps the
    stored one, which is how a CSV (no geometry column) renames or moves existing grids. The
    importer must do the same. ``rejected`` codes (ParsedFile.rejected) stand for
    nodes whose details are unknown — they satisfy "parent is known" and stop the walks up the
    tree. ``incomplete`` says that the parser left features out (``bool(ParsedFile.problems)``),
    perhaps ones whose code it could not read: then a missing district is not reported, as it
    may be among them. Problems come back ordered by position; tree-wide ones first.
    """
    problems: list[Problem] = []

    def report(spec: NodeSpec, message: str) -> None:
        problems.append(Problem(spec.index, spec.code, message, spec.unit))

    first: dict[str, NodeSpec] = {}
    for spec in features:
        if spec.code in first:
            report(spec, f"code {spec.code!r} is used again; {first[spec.code].where} has it too")
        else:
            first[spec.code] = spec
        for message in _field_problems(spec):
            report(spec, message)
        for message in _geometry_problems(spec.geometry):
            report(spec, message)
        if spec.level == "grid" and spec.geometry is None:
            stored = existing.get(spec.code)
            if stored is None or stored.geometry is None:
                # Routing a shared location looks for the grid whose polygon contains it.
                report(spec, "a grid needs a Polygon or MultiPolygon geometry")

    nodes: dict[str, _Node] = {}
    for code, node in existing.items():
        nodes[code] = _Node(code, node.level, node.parent, node.geometry, None)
    for code in rejected:
        nodes[code] = _Node(code, None, None, None, None)
    for code, spec in first.items():
        geometry = spec.geometry
        if geometry is None and code in existing:
            geometry = existing[code].geometry  # no geometry in the file: the stored one stays
        nodes[code] = _Node(code, spec.level, spec.parent, geometry, spec)

    _check_parents(features, nodes, report)
    problems.extend(_check_cycles(nodes))
    _check_level_order(features, existing, nodes, report)
    problems.extend(_check_district_count(nodes, incomplete or bool(rejected)))
    _check_containment(features, existing, nodes, report)

    # Stable sort: tree-wide problems first, then by position in the file.
    problems.sort(key=lambda p: -1 if p.index is None else p.index)
    return problems


def _field_problems(spec: NodeSpec) -> Iterable[str]:
    if not CODE_PATTERN.fullmatch(spec.code):
        if len(spec.code) > CODE_MAX:
            yield f"code is {len(spec.code)} characters long; at most {CODE_MAX}"
        else:
            yield (
                f"code {spec.code!r} may only use A-Z, a-z, 0-9, '_' and '-' "
                "(it goes into Telegram deep links)"
            )
    for key in ("name", "name_zh_hant", "name_en"):
        value = getattr(spec, key)
        if value is None:
            continue
        if not value.strip():
            yield f"{key} is missing"
        elif len(value) > NAME_MAX:
            yield f"{key} is {len(value)} characters long; at most {NAME_MAX}"
        elif any(unicodedata.category(ch) == "Cc" for ch in value):
            yield f"{key} contains a line break or another control character"
    if not spec.level:
        yield f"level is missing; it must be one of {', '.join(LEVELS)}"
    elif spec.level not in LEVEL_RANK:
        yield f"unknown level {spec.level!r}; it must be one of {', '.join(LEVELS)}"


def _geometry_problems(geometry: BaseGeometry | None) -> Iterable[str]:
    if geometry is None:
        return
    if geometry.geom_type not in _POLYGONAL:
        yield f"geometry must be a Polygon or MultiPolygon, not a {geometry.geom_type}"
        return
    if geometry.is_empty:
        yield "geometry is empty"
        return
    min_lon, min_lat, max_lon, max_lat = geometry.bounds
    if not all(map(math.isfinite, geometry.bounds)):
        yield "geometry has coordinates that are not numbers"
        return
    if min_lon < -180 or max_lon > 180 or min_lat < -90 or max_lat > 90:
        yield (
            f"coordinates lie outside longitude -180..180 / latitude -90..90 (bounds "
            f"{min_lon:g},{min_lat:g} .. {max_lon:g},{max_lat:g}); the file must use WGS84 "
            "degrees, longitude first — are they projected, or latitude/longitude swapped?"
        )
    if not geometry.is_valid:
        yield f"geometry is not a valid polygon: {explain_validity(geometry)}"


def _usable(geometry: BaseGeometry | None) -> bool:
    """A geometry that containment can be computed with (its problems, if any, are reported)."""
    return (
        geometry is not None
        and geometry.geom_type in _POLYGONAL
        and not geometry.is_empty
        and geometry.is_valid
    )


def _check_parents(features, nodes, report) -> None:
    for spec in features:
        if spec.level not in LEVEL_RANK:
            continue  # "district without parent" etc. would guess at what was meant
        if spec.level == "district":
            if spec.parent is not None:
                report(spec, f"a district cannot have a parent (it names {spec.parent!r})")
            continue
        if spec.parent is None:
            report(spec, f"a {spec.level} needs a parent; only the district has none")
        elif spec.parent != spec.code and spec.parent not in nodes:
            report(
                spec,
                f"parent {spec.parent!r} is not known (not in this file nor imported before)",
            )


def _check_cycles(nodes: Mapping[str, _Node]) -> list[Problem]:
    """Follow parent links from every node; a walk that meets its own path found a cycle."""
    problems = []
    done: set[str] = set()
    for start in sorted(nodes):
        path: list[str] = []
        on_path: dict[str, int] = {}
        code: str | None = start
        while code is not None and code in nodes and code not in done:
            if code in on_path:
                cycle = path[on_path[code] :]
                problems.append(_cycle_problem(cycle, nodes))
                break
            on_path[code] = len(path)
            path.append(code)
            code = nodes[code].parent
        done.update(path)
    return problems


def _cycle_problem(cycle: list[str], nodes: Mapping[str, _Node]) -> Problem:
    # Pin the cycle on the earliest file feature in it, and print it starting from there.
    in_file = [nodes[c].spec for c in cycle if nodes[c].spec is not None]
    spec = min(in_file, key=lambda s: s.index) if in_file else None
    start = cycle.index(spec.code) if spec else cycle.index(min(cycle))
    ordered = cycle[start:] + cycle[:start]
    message = "parent links form a cycle: " + " → ".join(
        _display_code(c) for c in [*ordered, ordered[0]]
    )
    if spec is None:
        return Problem(None, ordered[0], message)
    return Problem(spec.index, spec.code, message, spec.unit)


def _level_order_message(child_level: str, parent_code: str, parent_level: str) -> str:
    return (
        f"a {child_level} cannot be under {parent_code!r}, a {parent_level}: "
        "levels go district → street/town/park → community/village → grid"
    )


def _check_level_order(features, existing, nodes, report) -> None:
    for spec in features:
        parent = nodes.get(spec.parent) if spec.parent is not None else None
        if parent is None or spec.level not in LEVEL_RANK or parent.level not in LEVEL_RANK:
            continue
        if LEVEL_RANK[spec.level] <= LEVEL_RANK[parent.level]:
            report(spec, _level_order_message(spec.level, spec.parent, parent.level))
    # A re-imported node may change level under its existing children: blame the file entry.
    for code, node in existing.items():
        if nodes[code].spec is not None or node.parent is None:
            continue
        parent = nodes.get(node.parent)
        if parent is None or parent.spec is None:
            continue
        if node.level in LEVEL_RANK and parent.level in LEVEL_RANK:
            if LEVEL_RANK[node.level] <= LEVEL_RANK[parent.level]:
                report(
                    parent.spec,
                    f"existing {node.level} {code!r} is under this node and would no longer "
                    f"be below it as a {parent.level}",
                )


def _check_district_count(nodes: Mapping[str, _Node], incomplete: bool) -> list[Problem]:
    districts = sorted(
        (n for n in nodes.values() if n.level == "district"),
        key=lambda n: (n.spec is not None, n.spec.index if n.spec else 0, n.code),
    )
    if not districts:
        if incomplete:
            return []  # the district may be among the features that could not be read
        return [Problem(None, None, "there is no district: exactly one node must be one")]
    if len(districts) == 1:
        return []
    listed = ", ".join(repr(n.code) for n in districts)
    message = f"there are {len(districts)} districts ({listed}); exactly one is allowed"
    from_file = [n.spec for n in districts if n.spec is not None]
    if not from_file:
        return [Problem(None, None, message)]
    return [Problem(s.index, s.code, message, s.unit) for s in from_file]


def _geometric_ancestor(parent: str | None, nodes: Mapping[str, _Node]) -> _Node | None:
    """The nearest ancestor with a geometry; None if the chain breaks, cycles or has none."""
    seen: set[str] = set()
    while parent is not None and parent in nodes and parent not in seen:
        seen.add(parent)
        node = nodes[parent]
        if node.placeholder:
            return None  # its geometry is unknown: don't judge against a further ancestor
        if node.geometry is not None:
            return node
        parent = node.parent
    return None


def _share_outside(grid: BaseGeometry, ancestor: BaseGeometry) -> float | None:
    """The share of ``grid``'s area outside ``ancestor``, or None if within the tolerance."""
    outside = grid.difference(ancestor).area
    if outside <= max(_OUTSIDE_ABS_DEG2, _OUTSIDE_REL * grid.area):
        return None
    return outside / grid.area


def _outside_message(share: float, ancestor: _Node) -> str:
    amount = "entirely" if share > 0.999 else f"{share:.1%}"
    return (
        f"grid lies {amount} outside its {ancestor.level} {ancestor.code!r} — is the parent right?"
    )


def _check_containment(features, existing, nodes, report) -> None:
    for spec in features:
        geometry = nodes[spec.code].geometry if spec.geometry is None else spec.geometry
        if spec.level != "grid" or not _usable(geometry):
            continue
        ancestor = _geometric_ancestor(spec.parent, nodes)
        if ancestor is None or not _usable(ancestor.geometry):
            continue
        share = _share_outside(geometry, ancestor.geometry)
        if share is not None:
            report(spec, _outside_message(share, ancestor))
    # A re-imported boundary must still hold the grids imported under it before.
    for code, node in existing.items():
        if node.level != "grid" or nodes[code].spec is not None or not _usable(node.geometry):
            continue
        ancestor = _geometric_ancestor(node.parent, nodes)
        if ancestor is None or ancestor.spec is None or not _usable(ancestor.geometry):
            continue
        share = _share_outside(node.geometry, ancestor.geometry)
        if share is not None:
            amount = "entirely" if share > 0.999 else f"{share:.1%}"
            report(
                ancestor.spec,
                f"existing grid {code!r} would lie {amount} outside this {ancestor.level}",
            )


def in_import_order(features: Iterable[NodeSpec]) -> list[NodeSpec]:
    """Validated features with parents before children (ranks only grow down the tree)."""
    return sorted(features, key=lambda s: (LEVEL_RANK.get(s.level, len(LEVELS)), s.index))


# ---------------------------------------------------------------------------------------------
# Locating points


class GridLocator:
    """Which grid covers a point: an STRtree over the grid polygons, built once per tree.

    Grids tile without overlapping, but a point exactly on a shared edge or corner is covered by
    several; then the lowest code wins, so the same point always routes to the same grid.
    """

    def __init__(self, grids: Iterable[tuple[str, BaseGeometry]]) -> None:
        pairs = sorted(grids, key=lambda pair: pair[0])
        codes = [code for code, _ in pairs]
        if len(set(codes)) != len(codes):
            raise ValueError("grid codes must be unique")
        self._codes = codes
        self._geometries = np.array([geometry for _, geometry in pairs], dtype=object)
        shapely.prepare(self._geometries)  # speeds up the repeated point-in-polygon tests
        # Tree positions equal list positions, which are sorted by code: min position = min code.
        self._tree = shapely.STRtree(self._geometries)

    def __len__(self) -> int:
        return len(self._codes)

    @property
    def codes(self) -> list[str]:
        return list(self._codes)

    def locate(self, *, lat: float, lon: float) -> str | None:
        """The code of the grid covering (lat, lon), its boundary included; None if none does."""
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return None
        hits = self._tree.query(Point(lon, lat), predicate="intersects")
        return self._codes[int(hits.min())] if len(hits) else None


# ---------------------------------------------------------------------------------------------
# Storage


def geometry_to_text(g: BaseGeometry) -> str:
    """GeoJSON text for a Text column (portable across SQLite and PostgreSQL, no PostGIS)."""
    return shapely.to_geojson(g)


def geometry_from_text(s: str) -> BaseGeometry:
    """The inverse of geometry_to_text; raises shapely.errors.GEOSException on bad text."""
    return shapely.from_geojson(s)
