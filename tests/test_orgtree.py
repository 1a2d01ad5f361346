"""The pure org-tree service: parsing import files, validating the tree, locating points."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from shapely.geometry import MultiPolygon, Point, box

from bot.services.orgtree import (
    LEVEL_RANK,
    LEVELS,
    ExistingNode,
    GridLocator,
    ImportFileError,
    NodeSpec,
    Problem,
    geometry_from_text,
    geometry_to_text,
    in_import_order,
    parse_csv,
    parse_file,
    parse_geojson,
    validate,
)

DATA = Path(__file__).resolve().parent.parent / "bot" / "data"
DEMO = DATA / "demo_district.geojson"


# --- helpers ----------------------------------------------------------------------------------


def square(x0: float, y0: float, size: float) -> dict:
    """A GeoJSON polygon: the axis-aligned square with south-west corner (x0, y0)."""
    return {
        "type": "Polygon",
        "coordinates": [
            [[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size], [x0, y0]]
        ],
    }


def feat(code, level, parent=None, *, geometry=None, name="", **extra) -> dict:
    """A feature; ``name`` defaults to a made-up one, pass ``name=None`` for a null name."""
    if name == "":
        name = f"节点{code}"
    properties = {"code": code, "name": name, "level": level, "parent": parent}
    properties.update(extra)
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def fc(*features: dict) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


# A small valid tree: D (district, 0.1° square) → S (street, no geometry) → C (community,
# 0.05° square in the south-west corner) → G (grid, inside C).
def base() -> list[dict]:
    return [
        feat("D", "district", geometry=square(121.0, 31.0, 0.1)),
        feat("S", "street", "D"),
        feat("C", "community", "S", geometry=square(121.0, 31.0, 0.05)),
        feat("G", "grid", "C", geometry=square(121.01, 31.01, 0.01)),
    ]


def problems_for(*features: dict, existing=None, rejected=()) -> list[Problem]:
    parsed = parse_geojson(fc(*features))
    assert parsed.problems == [], [str(p) for p in parsed.problems]
    return validate(parsed.features, existing or {}, rejected=rejected)


def expect(problems: list[Problem], index: int | None, code: str | None, *words: str) -> Problem:
    """The one problem at (index, code) whose message has all ``words``; its str names both."""
    matches = [
        p
        for p in problems
        if p.index == index and p.code == code and all(w in p.message for w in words)
    ]
    assert len(matches) == 1, (index, code, words, [str(p) for p in problems])
    problem = matches[0]
    if index is not None:
        assert str(problem).startswith(f"{problem.unit} {index} ({code}): ")
    return problem


def existing_from(features: list[dict]) -> dict[str, ExistingNode]:
    """The nodes of a (valid) file as if imported before."""
    parsed = parse_geojson(fc(*features))
    return {s.code: ExistingNode(s.code, s.level, s.parent, s.geometry) for s in parsed.features}


# --- the demo district --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo():
    return parse_file(DEMO)


def test_demo_parses_and_validates_cleanly(demo):
    assert demo.problems == []
    assert validate(demo.features) == []


def test_demo_has_the_promised_shape(demo):
    by_level: dict[str, list[NodeSpec]] = {}
    for spec in demo.features:
        by_level.setdefault(spec.level, []).append(spec)
    assert [s.code for s in by_level["district"]] == ["SFQ"]
    assert by_level["district"][0].name == "示范区"
    assert by_level["district"][0].name_zh_hant == "示範區"
    assert by_level["district"][0].name_en == "Demo District"
    assert len(by_level["street"]) >= 2
    assert len(by_level["community"]) >= 4
    assert len(by_level["grid"]) >= 12
    for spec in demo.features:
        assert spec.name and spec.name_zh_hant and spec.name_en, spec.code
        assert spec.geometry is not None and spec.geometry.geom_type == "Polygon", spec.code
        # Shanghai-like placement, longitude first.
        min_lon, min_lat, max_lon, max_lat = spec.geometry.bounds
        assert 121.39 <= min_lon < max_lon <= 121.53
        assert 31.17 <= min_lat < max_lat <= 31.27
    grids = {s.code: s for s in by_level["grid"]}
    assert grids["SFQ-DH-01-G1"].name == "东湖一社区第1网格"
    assert grids["SFQ-DH-01-G1"].parent == "SFQ-DH-01"


def test_demo_children_tile_their_parent(demo):
    """Grids, communities and streets cover their parent exactly, without overlaps."""
    specs = {s.code: s for s in demo.features}
    for parent in specs.values():
        children = [s.geometry for s in specs.values() if s.parent == parent.code]
        if not children:
            continue
        total = sum(c.area for c in children)
        assert total == pytest.approx(parent.geometry.area, rel=1e-9), parent.code
        for child in children:
            assert child.difference(parent.geometry).area < 1e-12, parent.code


def test_demo_file_is_what_the_generator_writes():
    script = DATA / "make_demo_district.py"
    spec = importlib.util.spec_from_file_location("make_demo_district", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert DEMO.read_text(encoding="utf-8") == module.render()


# --- locating points ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def locator(demo):
    return GridLocator((s.code, s.geometry) for s in demo.features if s.level == "grid")


def test_locate_finds_each_demo_grid(demo, locator):
    grids = [s for s in demo.features if s.level == "grid"]
    assert len(locator) == len(grids)
    for spec in grids:
        point = spec.geometry.representative_point()
        assert locator.locate(lat=point.y, lon=point.x) == spec.code


def test_locate_outside_every_grid_is_none(locator):
    assert locator.locate(lat=31.22, lon=121.30) is None  # west of the district
    assert locator.locate(lat=39.9, lon=116.4) is None  # Beijing
    assert locator.locate(lat=121.45, lon=31.22) is None  # swapped: no crash, no match
    assert locator.locate(lat=float("nan"), lon=121.45) is None


def test_locate_sample_point():
    """The sample point quoted in docs and reports."""
    demo_grids = [s for s in parse_file(DEMO).features if s.level == "grid"]
    locator = GridLocator((s.code, s.geometry) for s in demo_grids)
    assert locator.locate(lat=31.23, lon=121.42) == "SFQ-DH-01-G1"


def test_shared_corner_goes_to_the_lowest_code(demo, locator):
    # Lattice vertex shared by four grids: DH-01-G1/G2 (north) and NY-02-G1/G2 (south).
    # Rings start at the south-west corner and run east: point 1 is G1's south-east corner.
    g1 = next(s for s in demo.features if s.code == "SFQ-DH-01-G1")
    corner = g1.geometry.exterior.coords[1]
    owners = sorted(
        s.code for s in demo.features if s.level == "grid" and s.geometry.covers(Point(corner))
    )
    assert owners == ["SFQ-DH-01-G1", "SFQ-DH-01-G2", "SFQ-NY-02-G1", "SFQ-NY-02-G2"]
    assert all(locator.locate(lat=corner[1], lon=corner[0]) == owners[0] for _ in range(5))


def test_shared_edge_is_deterministic_whatever_the_input_order():
    west, east = box(121.0, 31.0, 121.01, 31.01), box(121.01, 31.0, 121.02, 31.01)
    for grids in ([("B", west), ("A", east)], [("A", east), ("B", west)]):
        locator = GridLocator(grids)
        assert locator.locate(lat=31.005, lon=121.01) == "A"
        assert locator.locate(lat=31.005, lon=121.005) == "B"
        assert locator.locate(lat=31.0, lon=121.005) == "B"  # outer boundary counts


def test_locator_rejects_duplicate_codes():
    with pytest.raises(ValueError):
        GridLocator([("A", box(0, 0, 1, 1)), ("A", box(1, 0, 2, 1))])


def test_empty_locator():
    locator = GridLocator([])
    assert len(locator) == 0
    assert locator.locate(lat=31.2, lon=121.4) is None


# --- validation: one rule per test --------------------------------------------------------------


def test_base_tree_is_valid():
    assert problems_for(*base()) == []


def test_duplicate_code():
    problems = problems_for(*base(), feat("G", "grid", "C", geometry=square(121.02, 31.01, 0.01)))
    problem = expect(problems, 4, "G", "used again", "feature 3")
    assert str(problem).startswith("feature 4 (G): code 'G' is used again")


def test_unknown_parent():
    problems = problems_for(*base(), feat("G2", "grid", "C-99", geometry=square(121.0, 31.0, 0.01)))
    problem = expect(problems, 4, "G2", "parent 'C-99' is not known")
    assert str(problem) == (
        "feature 4 (G2): parent 'C-99' is not known (not in this file nor imported before)"
    )


def test_cycle_within_the_file():
    problems = problems_for(
        *base(),
        feat("X", "community", "Y"),
        feat("Y", "street", "X"),
    )
    expect(problems, 4, "X", "cycle", "X → Y → X")
    # Reported once, on the earliest feature of the cycle.
    assert sum("cycle" in p.message for p in problems) == 1


def test_node_that_is_its_own_parent():
    problems = problems_for(*base(), feat("X", "community", "X"))
    expect(problems, 4, "X", "cycle", "X → X")
    assert not any("not known" in p.message for p in problems)


def test_cycle_through_existing_nodes():
    existing = existing_from(base())
    # Re-import S under C, while the existing C is under S: S → C → S.
    problems = problems_for(feat("S", "street", "C"), existing=existing)
    expect(problems, 0, "S", "cycle", "S → C → S")


def test_cycle_only_among_existing_nodes_is_still_reported():
    existing = {
        "D": ExistingNode("D", "district", None, None),
        "P": ExistingNode("P", "street", "Q", None),
        "Q": ExistingNode("Q", "street", "P", None),
    }
    problems = validate([], existing)
    assert [str(p) for p in problems] == ["node P: parent links form a cycle: P → Q → P"]


def test_level_out_of_order():
    problems = problems_for(
        *base(),
        feat("C2", "community", "G"),  # under a grid
        feat("S2", "street", "S"),  # same rank as its parent
    )
    expect(problems, 4, "C2", "a community cannot be under 'G', a grid")
    expect(problems, 5, "S2", "a street cannot be under 'S', a street")


def test_skipping_a_level_is_allowed():
    problems = problems_for(
        *base(),
        feat("T", "town", "D"),
        feat("V", "village", "T"),
        feat("GV", "grid", "T", geometry=square(121.06, 31.06, 0.01)),  # grid right under a town
        feat("PK", "park", "D"),
    )
    assert problems == []


def test_unknown_and_missing_level():
    problems = problems_for(*base(), feat("X", "county", "D"), feat("Y", None, "D"))
    expect(problems, 4, "X", "unknown level 'county'", "district, street")
    expect(problems, 5, "Y", "level is missing")


def test_level_is_case_insensitive_and_accepts_chinese_words():
    problems = problems_for(
        feat("D", "District", geometry=square(121.0, 31.0, 0.1)),
        feat("S", "街道", "D"),
        feat("C", "社区", "S"),
        feat("G", "网格", "C", geometry=square(121.0, 31.0, 0.01)),
    )
    assert problems == []
    assert [s.level for s in parse_geojson(fc(*base())).features] == [
        "district",
        "street",
        "community",
        "grid",
    ]


def test_missing_or_invalid_names():
    problems = problems_for(
        *base(),
        feat("N1", "street", "D", name="   "),
        feat("N2", "street", "D", name="长" * 65),
        feat("N3", "street", "D", name="第一行\n第二行"),
        feat("N4", "street", "D", name_en="x" * 65),
    )
    # An empty name is read as no name at all.
    assert parse_geojson(fc(feat("N", "street", "D", name="   "))).features[0].name == ""
    expect(problems, 4, "N1", "name is missing")
    expect(problems, 5, "N2", "name is 65 characters long; at most 64")
    expect(problems, 6, "N3", "name contains a line break")
    expect(problems, 7, "N4", "name_en is 65 characters long")
    assert problems_for(*base(), feat("N5", "street", "D", name="长" * 64)) == []


def test_name_property_absent():
    feature = feat("N", "street", "D")
    del feature["properties"]["name"]
    problems = problems_for(*base(), feature)
    expect(problems, 4, "N", "name is missing")


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("G 01", ("may only use",)),
        ("网格01", ("may only use",)),
        ("G.01", ("may only use",)),
        ("G" * 49, ("49 characters long; at most 48",)),
    ],
)
def test_bad_code_syntax(code, words):
    problems = problems_for(*base(), feat(code, "street", "D"))
    expect(problems, 4, code, *words)


def test_longest_allowed_code():
    assert problems_for(*base(), feat("a_B-9" * 9 + "abc", "street", "D")) == []


def test_two_districts_in_the_file():
    problems = problems_for(*base(), feat("D2", "district"))
    expect(problems, 0, "D", "there are 2 districts ('D', 'D2')")
    expect(problems, 4, "D2", "there are 2 districts")


def test_second_district_beside_an_existing_one():
    existing = existing_from(base())
    problems = problems_for(feat("D2", "district"), existing=existing)
    problem = expect(problems, 0, "D2", "there are 2 districts", "'D'")
    assert len(problems) == 1, problem


def test_re_importing_the_district_is_not_a_second_one():
    existing = existing_from(base())
    assert problems_for(feat("D", "district", name="新名字"), existing=existing) == []


def test_no_district():
    problems = problems_for(feat("S", "street", "X"), feat("X", "town", "S"))
    problem = expect(problems, None, None, "there is no district")
    assert str(problem) == problem.message
    assert problems[0] is problem  # tree-wide problems come first


def test_no_district_is_not_reported_when_the_parser_left_features_out():
    # The district may be the feature whose code could not be read: don't claim there is none.
    parsed = parse_geojson(fc(feat(None, "district"), feat("S", "street")))
    assert [str(p) for p in parsed.problems] == ["feature 0: code is missing"]
    assert parsed.rejected == set()
    problems = validate(parsed.features, incomplete=True)
    assert [str(p) for p in problems] == [
        "feature 1 (S): a street needs a parent; only the district has none"
    ]
    expect(validate(parsed.features), None, None, "there is no district")  # the flag matters
    # The same for a CSV row with an unreadable code.
    parsed = parse_csv("code,name,level,parent\n,D,district,\nS,S,street,\n")
    assert [str(p) for p in parsed.problems] == ["row 2: code is missing"]
    assert not any("no district" in p.message for p in validate(parsed.features, incomplete=True))
    # A file that could be read completely still gets the message.
    parsed = parse_geojson(fc(feat("S", "street")))
    assert parsed.problems == []
    problems = validate(parsed.features, incomplete=bool(parsed.problems))
    expect(problems, None, None, "there is no district")


def test_district_with_a_parent():
    problems = problems_for(
        feat("D", "district", "CITY", geometry=square(121.0, 31.0, 0.1)), *base()[1:]
    )
    expect(problems, 0, "D", "a district cannot have a parent")


def test_non_district_without_parent():
    problems = problems_for(*base(), feat("S2", "street"), feat("C2", "community", ""))
    expect(problems, 4, "S2", "a street needs a parent")
    expect(problems, 5, "C2", "a community needs a parent")


def test_geometry_of_the_wrong_type():
    problems = problems_for(
        *base(),
        feat("GP", "grid", "C", geometry={"type": "Point", "coordinates": [121.0, 31.0]}),
        feat(
            "GL",
            "community",
            "S",
            geometry={"type": "LineString", "coordinates": [[121.0, 31.0], [121.1, 31.1]]},
        ),
    )
    expect(problems, 4, "GP", "must be a Polygon or MultiPolygon, not a Point")
    expect(problems, 5, "GL", "not a LineString")


def test_multipolygon_is_fine():
    parts = MultiPolygon([box(121.01, 31.01, 121.02, 31.02), box(121.03, 31.03, 121.04, 31.04)])
    problems = problems_for(*base(), feat("GM", "grid", "C", geometry=parts.__geo_interface__))
    assert problems == []


def test_self_intersecting_polygon():
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[121.01, 31.01], [121.02, 31.02], [121.02, 31.01], [121.01, 31.02]]],
    }
    problems = problems_for(*base(), feat("GB", "grid", "C", geometry=bowtie))
    expect(problems, 4, "GB", "not a valid polygon", "Self-intersection")


def test_coordinates_outside_wgs84():
    problems = problems_for(
        *base(),
        feat("GS", "grid", "C", geometry=square(31.0, 121.0, 0.01)),  # latitude first
        feat("GM", "grid", "C", geometry=square(13_500_000.0, 3_600_000.0, 100.0)),  # metres
    )
    expect(problems, 4, "GS", "outside longitude -180..180 / latitude -90..90", "swapped")
    expect(problems, 5, "GM", "outside longitude")


def test_grid_without_geometry():
    problems = problems_for(*base(), feat("G0", "grid", "C"))
    expect(problems, 4, "G0", "a grid needs a Polygon or MultiPolygon geometry")


def test_grid_outside_its_parent():
    problems = problems_for(
        *base(),
        feat("GO", "grid", "C", geometry=square(121.08, 31.08, 0.01)),  # in D, not in C
        feat("GH", "grid", "C", geometry=square(121.045, 31.02, 0.01)),  # half in C
    )
    expect(problems, 4, "GO", "entirely outside its community 'C'")
    expect(problems, 5, "GH", "50.0% outside its community 'C'")


def test_grid_is_compared_with_the_nearest_ancestor_that_has_a_geometry():
    # C2 has no geometry, S has none: D's boundary is the one to respect.
    problems = problems_for(
        *base(),
        feat("C2", "community", "S"),
        feat("GI", "grid", "C2", geometry=square(121.08, 31.08, 0.01)),
        feat("GX", "grid", "C2", geometry=square(121.2, 31.2, 0.01)),
    )
    assert [p.code for p in problems] == ["GX"]
    expect(problems, 6, "GX", "entirely outside its district 'D'")


def test_grid_outside_an_existing_parent():
    existing = existing_from(base())
    problems = problems_for(
        feat("GO", "grid", "C", geometry=square(121.08, 31.08, 0.01)), existing=existing
    )
    expect(problems, 0, "GO", "outside its community 'C'")


def test_tiny_overshoot_is_tolerated():
    # C ends at lon 121.05; a 0.01° grid sticking out by 0.00005° is 0.5 % outside.
    inside = square(121.04005, 31.01, 0.01)
    assert problems_for(*base(), feat("GT", "grid", "C", geometry=inside)) == []
    beyond = square(121.0405, 31.01, 0.01)  # 5 % outside
    expect(problems_for(*base(), feat("GT", "grid", "C", geometry=beyond)), 4, "GT", "5.0%")


def test_every_problem_is_reported_at_once():
    problems = problems_for(
        feat("D", "district", geometry=square(121.0, 31.0, 0.1)),
        feat("bad code", "street", "D"),
        feat("S", "street", "NOPE"),
        feat("C", "community", "S", name=None),
        feat("G", "grid", "C"),
        feat("G", "village", "G"),
        feat("X", "grid", "D", geometry=square(121.5, 31.5, 0.01)),
    )
    assert {(p.index, p.code) for p in problems} == {
        (1, "bad code"),
        (2, "S"),
        (3, "C"),
        (4, "G"),
        (5, "G"),
        (6, "X"),
    }
    expect(problems, 1, "bad code", "may only use")
    expect(problems, 2, "S", "'NOPE' is not known")
    expect(problems, 3, "C", "name is missing")
    expect(problems, 4, "G", "needs a Polygon")
    expect(problems, 5, "G", "used again")
    expect(problems, 5, "G", "a village cannot be under 'G', a grid")
    expect(problems, 6, "X", "outside its district 'D'")
    assert [p.index for p in problems] == sorted(p.index for p in problems)


# --- re-import over existing nodes --------------------------------------------------------------


def test_re_import_of_existing_codes_is_not_a_duplicate():
    existing = existing_from(base())
    assert problems_for(*base(), existing=existing) == []
    # Children may name a parent that only exists in the database.
    problems = problems_for(
        feat("G2", "grid", "C", geometry=square(121.02, 31.02, 0.01)), existing=existing
    )
    assert problems == []


def test_re_import_that_puts_existing_children_out_of_order():
    existing = existing_from(base())
    problems = problems_for(
        feat("S", "grid", "D", geometry=square(121.0, 31.0, 0.05)), existing=existing
    )
    expect(problems, 0, "S", "existing community 'C' is under this node")


def test_re_import_of_a_boundary_that_leaves_an_existing_grid_outside():
    existing = existing_from(base())
    problems = problems_for(
        feat("C", "community", "S", geometry=square(121.03, 31.03, 0.02)), existing=existing
    )
    expect(problems, 0, "C", "existing grid 'G' would lie entirely outside this community")


def test_file_entry_without_geometry_keeps_the_stored_one():
    existing = existing_from(base())
    parsed = parse_csv("code,name,name_zh_hant,name_en,level,parent\nG,新网格名,,,grid,C\n")
    assert validate(parsed.features, existing) == []
    # ... but a new grid without a geometry is still refused.
    parsed = parse_csv("code,name,name_zh_hant,name_en,level,parent\nG9,网格,,,grid,C\n")
    expect(validate(parsed.features, existing), 2, "G9", "a grid needs")


# --- parse-level problems -----------------------------------------------------------------------


def test_parse_problems_name_the_feature():
    bad_geometry = feat("GB", "grid", "C", geometry={"type": "Polygon", "coordinates": "x"})
    no_code = feat(None, "street", "D")
    numeric_level = feat("L", 3, "D")
    parsed = parse_geojson(
        fc(
            *base(),
            bad_geometry,
            no_code,
            numeric_level,
            {"type": "Point"},
            feat("KID", "grid", "GB", geometry=square(121.01, 31.01, 0.001)),
        )
    )
    assert [(p.index, p.code) for p in parsed.problems] == [
        (4, "GB"),
        (5, None),
        (6, "L"),
        (7, None),
    ]
    assert "geometry cannot be read" in parsed.problems[0].message
    assert str(parsed.problems[1]) == "feature 5: code is missing"
    assert str(parsed.problems[2]) == "feature 6 (L): level must be text, not number 3"
    assert parsed.problems[3].message == "not a GeoJSON Feature"
    assert parsed.rejected == {"GB", "L"}
    assert [s.code for s in parsed.features] == ["D", "S", "C", "G", "KID"]
    # KID's parent could not be read, which is reported above; validate does not add to it.
    assert validate(parsed.features, rejected=parsed.rejected) == []
    assert "'GB' is not known" in validate(parsed.features)[0].message


def test_parse_problem_for_unreadable_geometry_members():
    parsed = parse_geojson(fc(feat("G", "grid", "C", geometry={"type": "Polygon"})))
    assert str(parsed.problems[0]) == (
        "feature 0 (G): geometry cannot be read: member 'coordinates' is missing"
    )
    parsed = parse_geojson(fc(feat("G", "grid", "C", geometry=[1, 2])))
    assert "must be a GeoJSON object, not array" in parsed.problems[0].message


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ({"coordinates": [[121.0, 31.0]]}, "geometry has no type"),
        ({"type": None, "coordinates": [1, 2]}, "geometry has no type"),
        ({"type": 5, "coordinates": [1, 2]}, "geometry type must be text, not number"),
        ({"type": "Square", "coordinates": []}, "geometry type 'Square' is not GeoJSON"),
        ({"type": "Feature", "geometry": square(0, 0, 1)}, "geometry type 'Feature' is not"),
        ({"type": "LinearRing", "coordinates": []}, "geometry type 'LinearRing' is not"),
        ({"type": "Polygon", "coordinates": 5}, "coordinates must be nested arrays of numbers"),
        ({"type": "Polygon", "coordinates": [5]}, "coordinates must be nested arrays of numbers"),
        ({"type": "Polygon", "coordinates": [[5]]}, "nested arrays of numbers"),
        ({"type": "Polygon", "coordinates": [[[None, 0]] * 4]}, "nested arrays of numbers"),
        ({"type": "Polygon", "coordinates": [[[True, 0]] * 4]}, "nested arrays of numbers"),
        ({"type": "Polygon", "coordinates": [[["1", "2"]] * 4]}, "nested arrays of numbers"),
        ({"type": "Polygon", "coordinates": [[[[0, 0]]] * 4]}, "nested arrays of numbers"),
        ({"type": "Polygon", "coordinates": [[{}]]}, "nested arrays of numbers"),
        ({"type": "MultiPolygon", "coordinates": [[5]]}, "nested arrays of numbers"),
        ({"type": "MultiPolygon", "coordinates": [square(0, 0, 1)["coordinates"], []]}, "nested"),
        ({"type": "Point", "coordinates": [1]}, "a position must be [longitude, latitude]"),
        ({"type": "Point", "coordinates": [1, 2, 3, 4]}, "not 4 numbers"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "at least 3 corners"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0]]]}, "ring needs at least 3 corners"),
        ({"type": "GeometryCollection", "geometries": 5}, '"geometries" must be an array'),
        ({"type": "GeometryCollection", "geometries": [{"coordinates": []}]}, "has no type"),
        ({"type": "GeometryCollection", "geometries": [[1]]}, "must be a GeoJSON object"),
    ],
)
def test_unreadable_geometry_is_described_not_python_internals(geometry, message):
    parsed = parse_geojson(fc(feat("G", "grid", "C", geometry=geometry)))
    assert parsed.features == []
    assert parsed.rejected == {"G"}
    [problem] = parsed.problems
    assert message in problem.message
    assert not any(w in problem.message for w in ("NoneType", "subscriptable", "attribute"))


def test_readable_geometry_still_reads():
    closed_by_us = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}
    lower_case = {"type": "polygon", "coordinates": square(0, 0, 1)["coordinates"]}
    with_height = {"type": "Point", "coordinates": [121.0, 31.0, 4.5]}
    empty = {"type": "MultiPolygon", "coordinates": []}
    collection = {"type": "GeometryCollection", "geometries": [square(0, 0, 1)]}
    parsed = parse_geojson(
        fc(
            *(
                feat(f"G{i}", "grid", "C", geometry=g)
                for i, g in enumerate([closed_by_us, lower_case, with_height, empty, collection])
            )
        )
    )
    assert parsed.problems == []
    assert [s.geometry.geom_type for s in parsed.features] == [
        "Polygon",
        "Polygon",
        "Point",
        "MultiPolygon",
        "GeometryCollection",
    ]
    assert parsed.features[3].geometry.is_empty


def test_deeply_nested_geometry_collection(monkeypatch):
    # Deeper than any JSON text the decoder reads, to reach the limit of the geometry reading.
    geometry = square(0, 0, 1)
    for _ in range(5000):
        geometry = {"type": "GeometryCollection", "geometries": [geometry]}
    data = {"type": "FeatureCollection", "features": [feat("G", "grid", "C", geometry=geometry)]}
    monkeypatch.setattr(json, "loads", lambda text: data)
    parsed = parse_geojson("{}")
    assert [str(p) for p in parsed.problems] == [
        "feature 0 (G): geometry cannot be read: it is nested too deeply"
    ]


def test_numeric_code_is_a_parse_problem():
    parsed = parse_geojson(fc(feat(101, "street", "D")))
    assert parsed.features == []
    assert str(parsed.problems[0]) == "feature 0: code must be text, not number 101"


def test_unclosed_ring_is_accepted():
    ring = square(121.01, 31.01, 0.01)
    ring["coordinates"][0].pop()
    assert problems_for(*base()[:3], feat("G", "grid", "C", geometry=ring)) == []


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", "not valid JSON"),
        ('{"type": "Feature", "properties": {}}', "not a GeoJSON FeatureCollection"),
        ("[]", "not a GeoJSON FeatureCollection"),
        ('{"type": "FeatureCollection"}', 'no "features" array'),
    ],
)
def test_unreadable_geojson(text, words):
    with pytest.raises(ImportFileError, match=words):
        parse_geojson(text)


def test_deeply_nested_json_is_a_file_error(tmp_path):
    text = "[" * 100000 + "]" * 100000
    with pytest.raises(ImportFileError, match="nests arrays or objects too deeply"):
        parse_geojson(text)
    path = tmp_path / "deep.geojson"
    path.write_text('{"type": "FeatureCollection", "features": ' + text + "}", encoding="utf-8")
    with pytest.raises(ImportFileError, match="too deeply"):
        parse_file(path)


def test_geojson_with_bom():
    assert parse_geojson("\ufeff" + fc(*base())).features[0].code == "D"


# --- CSV ----------------------------------------------------------------------------------------

CSV = """\
code,name,name_zh_hant,name_en,level,parent
D,示范区,示範區,Demo District,district,
S,东湖街道,東湖街道,Donghu Subdistrict,street,D

C, 东湖第一社区 ,,,community,S
"""


def test_csv_rows_are_parsed():
    parsed = parse_csv(CSV)
    assert parsed.problems == []
    district, street, community = parsed.features
    assert district == NodeSpec(
        1 + 1, "D", "示范区", "示範區", "Demo District", "district", None, None, "row"
    )
    assert (street.index, street.parent) == (3, "D")
    # Blank lines keep their numbers: row numbers are line numbers.
    assert (community.index, community.name, community.name_en) == (5, "东湖第一社区", None)
    assert validate(parsed.features) == []


def test_csv_problems_name_the_row():
    parsed = parse_csv(CSV + "G 1,网格,,,grid,C\n")
    problems = validate(parsed.features)
    problem = expect(problems, 6, "G 1", "may only use")
    assert str(problem).startswith("row 6 (G 1): ")


def test_csv_with_bom_extra_columns_and_any_column_order(tmp_path):
    path = tmp_path / "tree.CSV"
    text = "level,备注,parent,code,name\ndistrict,总部,,D,示范区\nstreet,,D,S,东湖街道\n"
    path.write_bytes("\ufeff".encode() + text.encode())
    parsed = parse_file(path)
    assert parsed.problems == []
    assert [(s.code, s.level, s.name_en) for s in parsed.features] == [
        ("D", "district", None),
        ("S", "street", None),
    ]


def test_csv_missing_column():
    with pytest.raises(ImportFileError, match=r"missing column.*parent"):
        parse_csv("code,name,level\nD,示范区,district\n")


def test_csv_empty():
    with pytest.raises(ImportFileError, match="empty"):
        parse_csv("")


def test_csv_row_with_the_wrong_number_of_fields():
    parsed = parse_csv(CSV + "G1,网格,,,grid,C,extra\n")
    assert [str(p) for p in parsed.problems] == ["row 6 (G1): has 7 fields but the header has 6"]
    assert parsed.rejected == {"G1"}


def test_csv_row_may_leave_out_trailing_empty_cells():
    header = "code,name,level,parent,name_zh_hant,name_en\n"
    parsed = parse_csv(header + "d,D,district\nS,街道,street,d,\nC,社区,community,S,社區,C\n")
    assert parsed.problems == []
    assert [(s.index, s.code, s.level, s.parent, s.name_en) for s in parsed.features] == [
        (2, "d", "district", None, None),
        (3, "S", "street", "d", None),
        (4, "C", "community", "S", "C"),
    ]
    assert validate(parsed.features) == []
    # Required values that are left out are reported as missing, as when the cells are empty.
    parsed = parse_csv(header + "d,D,district\nS2,街道\n")
    assert parsed.problems == []
    problems = validate(parsed.features)
    expect(problems, 3, "S2", "level is missing")
    assert [p.index for p in problems] == [3]


def test_csv_quoted_cells_may_hold_commas():
    parsed = parse_csv(CSV + 'G1,"网格,一",,,grid,C\n')
    assert parsed.features[-1].name == "网格,一"


# --- files --------------------------------------------------------------------------------------


def test_parse_file_by_extension(tmp_path):
    for name in ("tree.geojson", "tree.json", "TREE.GeoJSON"):
        path = tmp_path / name
        path.write_text(fc(*base()), encoding="utf-8")
        assert len(parse_file(path).features) == 4


def test_parse_file_unknown_extension(tmp_path):
    path = tmp_path / "tree.kml"
    path.write_text("<kml/>", encoding="utf-8")
    with pytest.raises(ImportFileError, match=r"unknown file type '\.kml'"):
        parse_file(path)


def test_parse_file_missing(tmp_path):
    with pytest.raises(ImportFileError, match="cannot read"):
        parse_file(tmp_path / "nope.csv")


def test_parse_file_not_utf8_suggests_gbk(tmp_path):
    path = tmp_path / "tree.csv"
    path.write_bytes(CSV.encode("gbk"))
    with pytest.raises(ImportFileError, match=r"not UTF-8.*GBK"):
        parse_file(path)


# --- odds and ends ------------------------------------------------------------------------------


def test_levels_and_ranks_agree():
    assert set(LEVELS) == set(LEVEL_RANK)
    assert LEVEL_RANK["district"] < LEVEL_RANK["town"] < LEVEL_RANK["village"] < LEVEL_RANK["grid"]


def test_problem_str():
    assert str(Problem(3, "G-0102", "parent 'C-99' is not known")) == (
        "feature 3 (G-0102): parent 'C-99' is not known"
    )
    assert str(Problem(3, None, "code is missing")) == "feature 3: code is missing"
    assert str(Problem(7, "G", "x", "row")) == "row 7 (G): x"
    assert str(Problem(None, "G", "x")) == "node G: x"
    assert str(Problem(None, None, "x")) == "x"
    assert str(Problem(7, "G 1", "x", "row")) == "row 7 (G 1): x"
    assert str(Problem(7, "网格-1", "x", "row")) == "row 7 (网格-1): x"


@pytest.mark.parametrize("code", ["g\x00", "\x1b[31mG\x1b[0m", "G\n1", "G\u202e1", "G\u200b"])
def test_problem_str_escapes_unprintable_codes(code):
    for problem in (Problem(3, code, "x"), Problem(None, code, "x")):
        text = str(problem)
        assert text.isprintable(), text
        assert repr(code) in text
    problems = validate(parse_geojson(fc(*base()[:2], feat(code, "street", "D"))).features)
    assert all(str(p).isprintable() for p in problems)
    cycle = validate(
        [],
        {
            "D": ExistingNode("D", "district", None, None),
            code: ExistingNode(code, "street", code, None),
        },
    )
    assert [str(p) for p in cycle] == [
        f"node {code!r}: parent links form a cycle: {code!r} → {code!r}"
    ]


def test_import_order_puts_parents_first():
    parsed = parse_geojson(fc(*reversed(base())))
    assert [s.code for s in in_import_order(parsed.features)] == ["D", "S", "C", "G"]


def test_geometry_text_round_trip(demo):
    for spec in demo.features:
        text = geometry_to_text(spec.geometry)
        assert json.loads(text)["type"] == "Polygon"
        assert geometry_from_text(text).equals_exact(spec.geometry, 0)
    parts = MultiPolygon([box(0, 0, 1, 1), box(2, 2, 3, 3)])
    assert geometry_from_text(geometry_to_text(parts)).equals(parts)
