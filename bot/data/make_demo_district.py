"""Generate demo_district.geojson, the fictional district bundled so the bot runs out of the box.

    python bot/data/make_demo_district.py          # rewrite the file beside this script
    python bot/data/make_demo_district.py --check  # exit 1 if the file is not up to date

示范区 (Demo District) lies around lon 121.40–121.52, lat 31.18–31.26 (Shanghai-like). All
polygons come from one lattice of 4 × 5 vertices, nudged by a fixed pattern so the cells are
irregular quadrilaterals: each grid is one cell, and a community, street or the district is the
outline of a block of cells walked through the same lattice vertices. Shared edges are therefore
identical coordinate for coordinate, and every polygon nests exactly in its parent.

    lat  row 4 ┌────────────────────┐
               │  东湖第二社区 G1 G2 G3 │  东湖街道 SFQ-DH (north half)
         row 3 ├────────────────────┤
               │  东湖第一社区 G1 G2 G3 │
         row 2 ├────────────────────┤
               │  南苑第二社区 G1 G2 G3 │  南苑街道 SFQ-NY (south half)
         row 1 ├────────────────────┤
               │  南苑第一社区 G1 G2 G3 │
         row 0 └────────────────────┘
            col 0 (west) ...... col 3 (east) → lon

Only the standard library is used, so the script runs without the project installed; the tests
check that the file validates and that it matches what this script writes.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent / "demo_district.geojson"

WEST, SOUTH = 121.40, 31.18
CELL_LON, CELL_LAT = 0.04, 0.02  # about 3.8 km × 2.2 km
COLUMNS, ROWS = 3, 4  # cells; the lattice has one more vertex each way

DISTRICT = {"code": "SFQ", "name": "示范区", "name_zh_hant": "示範區", "name_en": "Demo District"}
# (code suffix, simplified, traditional, English, first lattice row); each street spans 2 rows.
STREETS = [
    ("DH", "东湖", "東湖", "Donghu", 2),
    ("NY", "南苑", "南苑", "Nanyuan", 0),
]
NUMERALS = [("一", "First", "No. 1"), ("二", "Second", "No. 2")]


def vertex(col: int, row: int) -> tuple[float, float]:
    """Lattice vertex (col, row), nudged by up to ±0.003° in a fixed, irregular-looking pattern."""
    nudge_lon = ((col * 7 + row * 3) % 5 - 2) * 0.0015
    nudge_lat = ((col * 2 + row * 5) % 5 - 2) * 0.0015
    return (
        round(WEST + col * CELL_LON + nudge_lon, 6),
        round(SOUTH + row * CELL_LAT + nudge_lat, 6),
    )


def block(col0: int, row0: int, col1: int, row1: int) -> dict:
    """Polygon around the cells col0..col1-1 × row0..row1-1, through every lattice vertex on
    its outline (so it shares edges exactly with its children), counter-clockwise (RFC 7946)."""
    ring = [vertex(c, row0) for c in range(col0, col1)]  # south edge, west to east
    ring += [vertex(col1, r) for r in range(row0, row1)]  # east edge, south to north
    ring += [vertex(c, row1) for c in range(col1, col0, -1)]  # north edge, east to west
    ring += [vertex(col0, r) for r in range(row1, row0, -1)]  # west edge, north to south
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [[list(point) for point in ring]]}


def feature(code, name, name_zh_hant, name_en, level, parent, geometry) -> dict:
    properties = {
        "code": code,
        "name": name,
        "name_zh_hant": name_zh_hant,
        "name_en": name_en,
        "level": level,
        "parent": parent,
    }
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def features() -> list[dict]:
    """Depth first, parents before children: district, street, its communities and grids..."""
    district = DISTRICT["code"]
    out = [
        feature(
            district,
            DISTRICT["name"],
            DISTRICT["name_zh_hant"],
            DISTRICT["name_en"],
            "district",
            None,
            block(0, 0, COLUMNS, ROWS),
        )
    ]
    for suffix, hans, hant, english, row0 in STREETS:
        street = f"{district}-{suffix}"
        out.append(
            feature(
                street,
                f"{hans}街道",
                f"{hant}街道",
                f"{english} Subdistrict",
                "street",
                district,
                block(0, row0, COLUMNS, row0 + 2),
            )
        )
        for number, (numeral, _ordinal, english_number) in enumerate(NUMERALS, start=1):
            community = f"{street}-{number:02d}"
            row = row0 + number - 1
            out.append(
                feature(
                    community,
                    f"{hans}第{numeral}社区",
                    f"{hant}第{numeral}社區",
                    f"{english} {english_number} Community",
                    "community",
                    street,
                    block(0, row, COLUMNS, row + 1),
                )
            )
            for col in range(COLUMNS):
                grid = col + 1
                out.append(
                    feature(
                        f"{community}-G{grid}",
                        f"{hans}{numeral}社区第{grid}网格",
                        f"{hant}{numeral}社區第{grid}網格",
                        f"{english} {english_number} Community Grid {grid}",
                        "grid",
                        community,
                        block(col, row, col + 1, row + 1),
                    )
                )
    return out


def render() -> str:
    collection = {"type": "FeatureCollection", "features": features()}
    text = json.dumps(collection, ensure_ascii=False, indent=2)
    # One [lon, lat] pair per line instead of three lines per pair.
    text = re.sub(r"\[\s+(-?[\d.]+),\s+(-?[\d.]+)\s+\]", r"[\1, \2]", text)
    return text + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else None
        if current != text:
            print(f"{OUTPUT.name} is out of date; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
