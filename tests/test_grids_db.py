"""The org tree in the database: import (all-or-nothing, idempotent), desks, locate."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.services import grids, tickets
from bot.services.orgtree import parse_geojson
from storage.db import Database
from storage.models import TicketResolution
from storage.uow import UnitOfWork
from tests.harness import make_config

DEMO = (resources.files("bot") / "data" / "demo_district.geojson").read_text("utf-8")


async def _import(db: Database, clock: FakeClock, text: str) -> grids.ImportReport:
    async with UnitOfWork(db) as uow:
        report = await grids.import_parsed(uow, clock, parse_geojson(text))
        await uow.commit()
        return report


async def test_demo_district_imports_and_reimport_changes_nothing(db: Database) -> None:
    clock = FakeClock()
    first = await _import(db, clock, DEMO)
    assert first.created == 19 and first.updated == 0
    second = await _import(db, clock, DEMO)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 19)
    async with UnitOfWork(db) as uow:
        grid = await uow.nodes.by_code("SFQ-DH-01-G1")
        path = [n.code for n in await uow.nodes.path(grid)]
        assert path == ["SFQ", "SFQ-DH", "SFQ-DH-01", "SFQ-DH-01-G1"]
        assert grid.display_name("en") == "Donghu No. 1 Community Grid 1"


async def test_a_file_with_problems_writes_nothing_and_reports_them_all(db: Database) -> None:
    clock = FakeClock()
    await _import(db, clock, DEMO)
    data = json.loads(DEMO)
    data["features"][3]["properties"]["parent"] = "NOWHERE"
    data["features"][4]["properties"]["name"] = "改过的名字"  # a valid change, must not land
    data["features"][5]["properties"]["level"] = "planet"
    async with UnitOfWork(db) as uow:
        with pytest.raises(grids.ImportRejected) as rejected:
            await grids.import_parsed(uow, clock, parse_geojson(json.dumps(data)))
    messages = [str(p) for p in rejected.value.problems]
    assert any("feature 3" in m and "NOWHERE" in m for m in messages), messages
    assert any("feature 5" in m and "planet" in m for m in messages), messages
    async with UnitOfWork(db) as uow:
        renamed = await uow.nodes.by_code(data["features"][4]["properties"]["code"])
        assert renamed.name != "改过的名字"


async def test_renames_update_by_code_and_csv_keeps_boundaries(db: Database,
                                                               tmp_path: Path) -> None:
    clock = FakeClock()
    await _import(db, clock, DEMO)
    csv = tmp_path / "rename.csv"
    csv.write_text("code,name,level,parent,name_en\n"
                   "SFQ-DH-01-G1,东湖一社区第一网格,grid,SFQ-DH-01,Donghu 1-1\n", "utf-8")
    async with UnitOfWork(db) as uow:
        report = await grids.import_file(uow, clock, csv)
        await uow.commit()
    assert (report.created, report.updated) == (0, 1)
    async with UnitOfWork(db) as uow:
        grid = await uow.nodes.by_code("SFQ-DH-01-G1")
        assert grid.name == "东湖一社区第一网格" and grid.name_en == "Donghu 1-1"
        assert grid.geometry is not None
        located = await grids.GridDirectory().locate(uow, lat=31.23, lon=121.42)
        assert located.code == "SFQ-DH-01-G1"


async def test_locate_follows_imports_made_elsewhere(db: Database) -> None:
    clock = FakeClock()
    directory = grids.GridDirectory()
    async with UnitOfWork(db) as uow:
        assert await directory.locate(uow, lat=31.23, lon=121.42) is None
    await _import(db, clock, DEMO)
    async with UnitOfWork(db) as uow:
        assert (await directory.locate(uow, lat=31.23, lon=121.42)).code == "SFQ-DH-01-G1"
        assert await directory.locate(uow, lat=31.22, lon=121.30) is None


async def test_desks_hang_under_the_district_and_follow_the_config(db: Database) -> None:
    clock = FakeClock()
    async with UnitOfWork(db) as uow:  # desks before any district: no parent yet
        await grids.sync_desks(uow, clock, [("legal", "公共法律服务", None, "Legal")])
        await uow.commit()
    await _import(db, clock, DEMO)
    async with UnitOfWork(db) as uow:
        await grids.sync_desks(uow, clock, [("legal", "公共法律服务中心", None, "Legal")])
        await uow.commit()
    async with UnitOfWork(db) as uow:
        desk = await uow.nodes.by_code("legal")
        root = await uow.nodes.root()
        assert desk.level == "desk" and desk.parent_id == root.id
        assert desk.name == "公共法律服务中心"
    clash = json.loads(DEMO)
    clash["features"][0]["properties"]["code"] = "legal"
    async with UnitOfWork(db) as uow:
        with pytest.raises(grids.ImportRejected) as rejected:
            await grids.import_parsed(uow, clock, parse_geojson(json.dumps(clash)))
    assert any("desk" in str(p) for p in rejected.value.problems)


async def test_a_desk_may_not_take_the_code_of_a_place(db: Database) -> None:
    clock = FakeClock()
    await _import(db, clock, DEMO)
    async with UnitOfWork(db) as uow:
        with pytest.raises(grids.DeskCodeTaken, match="SFQ-DH"):
            await grids.sync_desks(uow, clock, [("SFQ-DH", "服务台", None, None)])


async def test_a_resolution_made_at_a_place_is_a_use_of_it(db: Database) -> None:
    """Rows that point at a place keep it from being removed (the demo district is replaced
    only when nothing does): the ticket may have moved on, its resolution there stays."""
    clock, config = FakeClock(), make_config()
    await _import(db, clock, DEMO)
    async with UnitOfWork(db) as uow:
        grid = await uow.nodes.by_code("SFQ-DH-01-G1")
        community = await uow.nodes.by_code("SFQ-DH-01")
        ticket = await tickets.create(uow, clock, config, tickets.NewReport(
            category=config.category("sanitation"), description="垃圾没人清理已经一周",
            reporter_id=900_100, language="zh_Hans", grid_id=grid.id))
        uow.tickets.record_resolution(TicketResolution(
            ticket_id=ticket.id, node_id=community.id, resolved_at=clock.now(), on_time=True))
        await uow.commit()
        assert ticket.node_id != community.id
        assert await uow.nodes.uses([community.id]) == {"resolutions": 1}
