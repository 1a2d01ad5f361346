"""The Runtime's caches (the org tree, each person's language): a second use reads nothing from
the database, a change made through this process is seen at once, and a change made through
another instance (a second Runtime on the same database) is seen within the documented bound."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import timedelta
from importlib import resources

from shapely.geometry import shape
from sqlalchemy import event

from bot.actions import menu
from bot.actions.people import Who, translator
from bot.clock import FakeClock
from bot.runtime import Runtime
from bot.services import grids, routing
from bot.services.orgtree import parse_geojson
from bot.startup import prepare
from storage.repositories.nodes import TreeCache
from storage.repositories.users import LanguageCache
from tests.harness import BotEnv, make_config
from tests.telegram_fake import User

DEMO = (resources.files("bot") / "data" / "demo_district.geojson").read_text("utf-8")
GRID = "SFQ-DH-01-G1"


class Ticking:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def statements(db):
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):  # SQLite's write turn
            seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)


def _runtime(db, catalogs, ticking: Ticking) -> Runtime:
    return Runtime(config=make_config(), db=db, clock=FakeClock(), catalogs=catalogs,
                   tree=TreeCache(check_every=2.0, monotonic=ticking),
                   languages=LanguageCache(ttl=30.0, monotonic=ticking))


def _renamed(name_en: str) -> str:
    data = json.loads(DEMO)
    for feature in data["features"]:
        if feature["properties"]["code"] == GRID:
            feature["properties"]["name_en"] = name_en
    return json.dumps(data)


async def _import(rt: Runtime, text: str) -> None:
    async with rt.uow() as uow:
        await grids.import_parsed(uow, rt.clock, parse_geojson(text))
        await uow.commit()


async def _grid_name(rt: Runtime) -> str:
    async with rt.uow() as uow:
        grid = await uow.nodes.by_code(GRID)
        return (await uow.nodes.path(grid))[-1].display_name("en")


async def test_the_tree_is_read_once_then_from_memory(db, catalogs) -> None:
    ticking = Ticking()
    rt = _runtime(db, catalogs, ticking)
    await prepare(db, rt.config, rt.clock)
    point = shape(next(f for f in json.loads(DEMO)["features"]
                       if f["properties"]["code"] == GRID)["geometry"]).representative_point()
    desk_category = next(c for c in rt.config.categories if c.target_desk)
    async with rt.uow() as uow:
        with statements(db) as first:
            grid = await uow.nodes.by_code(GRID)
        assert len(first) == 2  # the fingerprint and the rows, once
    for _ in range(2):
        ticking.now += 0.5  # within check_every: not even the fingerprint is read
        async with rt.uow() as uow:
            with statements(db) as again:
                grid = await uow.nodes.by_code(GRID)
                path = await uow.nodes.path(grid)
                assert await uow.nodes.get(grid.id) is grid
                root = await uow.nodes.root()
                children = await uow.nodes.children(path[-2].id)
                located = await rt.grids.locate(uow, lat=point.y, lon=point.x)
                desk = await routing.target_node(uow, desk_category, None)
                place = await routing.target_node(uow, rt.config.categories_of("report")[0],
                                                  grid)
            # The grid index is built on the first locate (its rows, with geometry) only.
            assert len(again) <= (1 if _ == 0 else 0), again
    assert [n.code for n in path] == ["SFQ", "SFQ-DH", "SFQ-DH-01", GRID]
    assert root.code == "SFQ" and GRID in [c.code for c in children]
    assert located.code == GRID and desk.code == desk_category.target_desk
    assert place.level in ("grid", "community", "street", "district")
    # After check_every, one cheap fingerprint says nothing changed.
    ticking.now += 5
    async with rt.uow() as uow:
        with statements(db) as checked:
            await uow.nodes.by_code(GRID)
            await uow.nodes.by_code(GRID)
    assert len(checked) == 1 and rt.tree.loads == 1


async def test_an_import_is_seen_at_once_here_and_within_seconds_elsewhere(db, catalogs) -> None:
    ticking = Ticking()
    here, there = _runtime(db, catalogs, ticking), _runtime(db, catalogs, ticking)
    await prepare(db, here.config, here.clock)
    point = shape(next(f for f in json.loads(DEMO)["features"]
                       if f["properties"]["code"] == GRID)["geometry"]).representative_point()
    assert await _grid_name(here) == await _grid_name(there) == "Donghu No. 1 Community Grid 1"
    async with there.uow() as uow:
        assert (await there.grids.locate(uow, lat=point.y, lon=point.x)).code == GRID
    here.clock.advance(timedelta(minutes=1))
    await _import(here, _renamed("Lakeside"))
    # The process that imported drops its tree when the import commits.
    assert await _grid_name(here) == "Lakeside"
    # Another instance keeps its snapshot until it checks again (at most every 2 s) ...
    ticking.now += 1
    assert await _grid_name(there) == "Donghu No. 1 Community Grid 1"
    # ... and then finds the new fingerprint, and reloads (its grid index too).
    ticking.now += 1.5
    assert await _grid_name(there) == "Lakeside"
    async with there.uow() as uow:
        located = await there.grids.locate(uow, lat=point.y, lon=point.x)
    assert located.display_name("en") == "Lakeside"


async def test_a_language_is_read_once_and_follows_a_choice_on_every_instance(
        db, catalogs) -> None:
    ticking = Ticking()
    here, there = _runtime(db, catalogs, ticking), _runtime(db, catalogs, ticking)
    person = Who(user_id=300_777, chat_id=300_777, language_code="zh-hans")

    async def language(rt: Runtime) -> str:
        async with rt.uow() as uow:
            t = await translator(rt, uow, person)
            await uow.commit()
            return t.language

    with statements(db) as first:
        assert await language(here) == "zh_Hans"  # the first update creates the row
    assert any("INSERT" in s for s in first)
    with statements(db) as cached:
        for _ in range(3):
            assert await language(here) == "zh_Hans"
    assert not [s for s in cached if "app_user" in s], cached

    # /language here: this instance answers in the new language at once.
    chosen = await menu.choose_language(here, person, "en", admin=False)
    assert chosen.t.language == "en"
    assert await language(here) == "en"
    # The other instance had it cached: it follows within the cache's ttl.
    assert await language(there) == "en"  # not cached there yet: read from the row
    assert await language(there) == "en"
    await menu.choose_language(here, person, "zh_Hant", admin=False)
    assert await language(here) == "zh_Hant"
    ticking.now += 10
    assert await language(there) == "en"
    ticking.now += 25
    assert await language(there) == "zh_Hant"

    # A new Telegram language code is noted on the row (not served from the cache).
    moved = Who(user_id=person.user_id, chat_id=person.chat_id, language_code="en")
    async with here.uow() as uow:
        await translator(here, uow, moved)
        await uow.commit()
    async with here.uow() as uow:
        assert (await uow.users.get(person.user_id)).telegram_language_code == "en"


async def test_a_new_persons_language_is_known_only_once_their_row_is_committed(
        db, catalogs) -> None:
    here = _runtime(db, catalogs, Ticking())
    person = Who(user_id=300_778, chat_id=300_778, language_code="en")
    async with here.uow() as uow:  # rolled back: no row, nothing known
        assert (await translator(here, uow, person)).language == "en"
    with statements(db) as again:
        async with here.uow() as uow:
            await translator(here, uow, person)
            await uow.commit()
    assert any("INSERT" in s for s in again), again
    with statements(db) as cached:
        async with here.uow() as uow:
            await translator(here, uow, person)
    assert not [s for s in cached if "app_user" in s], cached


async def test_a_resident_reporting_reads_neither_their_row_nor_the_tree(bot: BotEnv) -> None:
    """Through the real bot: once a first resident's report has filled the caches, a second
    resident's answers read their row only where it is new (their first update: it is known
    once that commits), and the org tree not at all, not even where the place is located and
    named."""
    bot.runtime.tree.check_every = 3600  # no periodic fingerprint during the test

    async def report(person: User, category: str) -> list[list[str]]:
        def press(data: str):
            for call in reversed(bot.fake.calls):
                markup = call.params.get("reply_markup") or {}
                for row in markup.get("inline_keyboard", []):
                    for button in row:
                        if button.get("callback_data", "").startswith(data):
                            return bot.updates.callback(person, button["callback_data"],
                                                        call.result)
            raise AssertionError(data)

        steps = [lambda: bot.updates.command(person, "/report"),
                 lambda: press(f"rp:cat:{category}"),
                 lambda: bot.updates.private_text(person, "楼道里堆满了垃圾，已经一周没人清理了"),
                 lambda: press("rp:skip:media"),
                 lambda: bot.updates.location(person, 31.23, 121.42),
                 lambda: press("rp:skip:contact"), lambda: press("rp:submit")]
        read: list[list[str]] = []
        for make in steps:
            update = make()
            with statements(bot.runtime.db) as seen:
                await bot.send(update)
            read.append([s for s in seen if "app_user" in s or "org_node" in s])
        return read

    await report(User(300_201, "甲", language_code="zh-hans"), "sanitation")
    read = await report(User(300_202, "乙", language_code="zh-hans"), "infrastructure")
    assert read[0] and not any(read[1:]), read
    t = bot.runtime.translator("zh_Hans")
    assert t("✅ <b>Your report is registered as No. {number}.</b>",
             number="1123-0002").replace("<b>", "").replace("</b>", "") in bot.last_text(300_202)
