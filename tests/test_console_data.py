"""The numbers behind the centre's console, on SQLite and PostgreSQL: its rates are the digests'
numbers, the response rate at its edges, the trend per local day, the queue's views, filters and
search, and the map's counts and points."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from bot.clock import FakeClock
from bot.services import console, stats, tickets
from bot.services.stats import Cadence, Span
from bot.startup import prepare
from bot.views import console as console_views
from storage.db import Database
from storage.models import ScheduledTask, TicketSurvey
from storage.uow import UnitOfWork
from tests.harness import make_config
from tests.test_stats import _crafted_day, add_survey, local
from tests.test_stats import add_ticket as put


@pytest.fixture
async def district(db: Database) -> Database:
    """The demo district (2 streets, 4 communities, 12 grids, with boundaries) and the desks."""
    await prepare(db, make_config(), FakeClock())
    return db


async def _id(db: Database, code: str) -> int:
    async with UnitOfWork(db) as uow:
        return (await uow.nodes.by_code(code)).id


# -- the rates are the digests' numbers -------------------------------------------------------

async def _varied(db: Database) -> None:
    """The digests' crafted day, and a month of other tickets around it."""
    await _crafted_day(db)
    async with UnitOfWork(db) as uow:
        grids = ["SFQ-DH-01-G1", "SFQ-DH-02-G2", "SFQ-NY-01-G1", "SFQ-NY-02-G3"]
        for n in range(40):
            day, hour = 2 + (n * 7) % 27, (n * 5) % 24
            grid = grids[n % 4]
            code = grid if n % 5 else grid.rsplit("-", 1)[0]  # some at the community
            created = local(day, hour, 5)
            kind = n % 6
            claimed = created + timedelta(minutes=20 + 40 * (n % 4)) if kind else None
            resolved = created + timedelta(hours=5 + n % 30) if kind in (2, 3, 4) else None
            status = {0: "open", 1: "claimed", 2: "resolved", 3: "closed", 4: "closed",
                      5: "withdrawn"}[kind]
            ticket = await put(uow, code, created, grid=grid, status=status, claimed=claimed,
                               claim_due=created + timedelta(hours=1), resolved=resolved,
                               deadline=created + timedelta(days=2),
                               on_time=None if resolved is None else n % 3 != 0,
                               close_reason={3: "rated", 4: "unanswered", 5: "withdrawn"}.get(
                                   kind))
            if resolved is not None and n % 2:
                uow.session.add(TicketSurvey(
                    ticket_id=ticket.id, user_id=700_000 + n, round=0, node_id=ticket.node_id,
                    status="answered", score=1 + n % 5, solved=n % 5 >= 2,
                    created_at=resolved, asked_at=resolved,
                    answered_at=resolved + timedelta(hours=3)))
        await uow.session.commit()


@pytest.mark.parametrize("code", ["SFQ", "SFQ-DH", "SFQ-DH-01", "SFQ-DH-01-G1", "legal"])
async def test_the_consoles_rates_are_the_digests_numbers(district: Database, code: str) -> None:
    await _varied(district)
    config = make_config()
    node_id = await _id(district, code)
    now = local(27, 15)
    periods = [stats.digest_period(Cadence.DAILY, date(2026, 11, 24), config),
               stats.digest_period(Cadence.WEEKLY, date(2026, 11, 23), config),
               stats.digest_period(Cadence.MONTHLY, date(2026, 12, 1), config),
               console.period_of("week", now, config), console.period_of("month", now, config),
               console.period_of("range", now, config, date(2026, 11, 3), date(2026, 11, 20))]
    for period in periods:
        async with UnitOfWork(district) as uow:
            rows = await console.rates(uow, node_id, period, now, config)
            report = await stats.subtree_report(uow, node_id, period, now)
        assert rows[0].total and rows[0].node == report.node
        # Every count is the digest's; the console sums no time to resolve (it shows none).
        assert rows[0].tally == replace(report.total, resolve_seconds=0.0)
        assert [(row.node, row.tally) for row in rows[1:]] == [
            (line.node, replace(line.tally, resolve_seconds=0.0)) for line in report.lines]
        assert not any(row.total for row in rows[1:])
        for row in rows:
            t = row.tally
            assert (row.resolution.num, row.resolution.den) == (t.concluded, t.cohort)
            assert row.resolution.rate == t.resolution_rate
            assert row.on_time.rate == t.on_time_rate
            assert row.satisfaction.rate == t.satisfaction_rate
            assert (row.new, row.open, row.overdue) == (t.new, t.open, t.overdue)
    # Something was counted, or the comparison proved nothing.
    async with UnitOfWork(district) as uow:
        month = await console.rates(uow, node_id, periods[2], now, config)
    if code in ("SFQ", "SFQ-DH"):
        total = month[0]
        assert total.resolution.den and total.on_time.den and total.satisfaction.den
        assert total.response.den


async def test_rows_are_the_subtree_then_each_child_then_the_nodes_own(
        district: Database) -> None:
    await _crafted_day(district)
    config = make_config()
    period = stats.digest_period(Cadence.DAILY, date(2026, 11, 24), config)
    street_id, grid_id = await _id(district, "SFQ-DH"), await _id(district, "SFQ-DH-01-G1")
    async with UnitOfWork(district) as uow:
        street = await console.rates(uow, street_id, period, local(24, 8, 30), config)
        grid = await console.rates(uow, grid_id, period, local(24, 8, 30), config)
        with pytest.raises(console.NoSuchNode):
            await console.rates(uow, 999_999, period, local(24), config)
    assert [(row.total, row.node.code if row.node else None) for row in street] == [
        (True, "SFQ-DH"), (False, "SFQ-DH-01"), (False, "SFQ-DH-02"), (False, None)]
    assert [(row.total, row.node.code) for row in grid] == [(True, "SFQ-DH-01-G1")]


# -- the response rate ------------------------------------------------------------------------

async def test_the_response_rate_at_its_edges(district: Database) -> None:
    """Claimed by the moment it had to be: counted in time, to the second; one second later:
    late. Unclaimed and still within its time: not counted yet; its time over: late.
    Withdrawn, or reported before the moment was kept: left out."""
    config = make_config()
    now = local(23, 12)
    due = local(23, 11)
    async with UnitOfWork(district) as uow:
        g = "SFQ-DH-01-G1"
        await put(uow, g, local(23, 9), claimed=due, claim_due=due, status="claimed")
        await put(uow, g, local(23, 9), claimed=due + timedelta(seconds=1), claim_due=due,
                  status="claimed")
        await put(uow, g, local(23, 10), claim_due=now + timedelta(seconds=1))  # waiting
        await put(uow, g, local(23, 10), claim_due=now)                        # time is up
        await put(uow, g, local(23, 9), claim_due=due, status="withdrawn",
                  close_reason="withdrawn")
        await put(uow, g, local(23, 9), claimed=local(23, 9, 1))   # no claim_due: left out
        # Claimed before its time although its time is still running: counted, in time.
        await put(uow, g, local(23, 11, 30), claimed=local(23, 11, 40),
                  claim_due=local(23, 13, 30), status="claimed")
        await put(uow, g, local(22, 23), claimed=local(22, 23, 10), claim_due=local(23, 1),
                  status="claimed")  # the day before
        await uow.session.commit()
    period = console.period_of("today", now, config)
    grid_id = await _id(district, g)
    async with UnitOfWork(district) as uow:
        row = (await console.rates(uow, grid_id, period, now, config))[0]
    assert (row.response.num, row.response.den) == (2, 4)
    assert row.response.rate == 0.5
    assert row.new == 7


async def test_a_new_ticket_must_be_claimed_when_its_claim_escalation_acts(
        district: Database) -> None:
    """The moment a ticket keeps is its claim escalation's: the category's claim time at its
    node's level, counted from the end of quiet hours when it is reported at night (not for
    an urgent one)."""
    config = make_config()
    category = config.category("sanitation")
    limit = config.sla(category, "grid").claim_escalate_after
    grid_id = await _id(district, "SFQ-DH-01-G1")
    made = []
    for moment in (local(23, 10), local(23, 23, 30)):
        async with UnitOfWork(district) as uow:
            ticket = await tickets.create(uow, FakeClock(moment), config, tickets.NewReport(
                category=category, description="路灯坏了", reporter_id=700_100,
                language="zh_Hans", grid_id=grid_id))
            await uow.commit()
            made.append((ticket.id, ticket.claim_due_at))
    assert made[0][1] == local(23, 10) + limit
    assert made[1][1] == datetime.combine(date(2026, 11, 24), config.quiet_hours.end,
                                          tzinfo=config.timezone) + limit
    async with UnitOfWork(district) as uow:
        from sqlalchemy import select
        timers = dict((await uow.session.execute(
            select(ScheduledTask.ticket_id, ScheduledTask.due_at)
            .where(ScheduledTask.kind == "claim_escalate"))).all())
    assert [timers[ticket_id] for ticket_id, _ in made] == [due for _, due in made]


# -- the trend --------------------------------------------------------------------------------

async def test_the_trend_is_each_days_daily_digest_in_local_time(district: Database) -> None:
    await _varied(district)
    async with UnitOfWork(district) as uow:
        # The edges of a local day: 23:59:59 belongs to the 21st, 00:00 to the 22nd.
        g = "SFQ-DH-01-G2"
        await put(uow, g, local(21, 23, 59, 59), claimed=local(22, 0, 30),
                  claim_due=local(22, 1), status="claimed")
        await put(uow, g, local(22, 0, 0, 0), claimed=local(22, 0, 10), claim_due=local(22, 1),
                  status="resolved", resolved=local(22, 23, 59, 59), on_time=True,
                  deadline=local(24))
        await put(uow, g, local(22, 0, 0, 1), claimed=local(22, 0, 10), claim_due=local(22, 1),
                  status="resolved", resolved=local(23, 0, 0, 0), on_time=False,
                  deadline=local(22, 12))
        await uow.session.commit()
    config = make_config()
    now = local(27, 15)
    for code in ("SFQ", "SFQ-DH"):
        node_id = await _id(district, code)
        for rate in console.RATES:
            async with UnitOfWork(district) as uow:
                points = await console.trend(uow, node_id, rate, 30, now, config)
            assert [day for day, _, _ in points] == [
                date(2026, 10, 29) + timedelta(days=n) for n in range(30)]
            for day, num, den in points:
                period = (console.period_of("today", now, config) if day == date(2026, 11, 27)
                          else stats.digest_period(Cadence.DAILY, day + timedelta(days=1),
                                                   config))
                async with UnitOfWork(district) as uow:
                    row = (await console.rates(uow, node_id, period, now, config))[0]
                ratio = row.ratio(rate)
                assert (num, den) == (ratio.num, ratio.den), (code, rate, day)
    grid_id = await _id(district, g)
    async with UnitOfWork(district) as uow:
        response = {d: (n, m) for d, n, m in await console.trend(
            uow, grid_id, "response", 7, now, config)}
        resolution = {d: (n, m) for d, n, m in await console.trend(
            uow, grid_id, "resolution", 7, now, config)}
    assert response[date(2026, 11, 21)] == (1, 1)
    assert response[date(2026, 11, 22)] == (2, 2)
    # Resolved at 23:59:59 the same day: concluded that day; at 00:00 the next: not.
    # (and the digests' ticket of 09:00 that day, resolved the next morning)
    assert resolution[date(2026, 11, 22)] == (1, 3)


async def test_the_trend_by_local_day_across_a_change_of_clocks(db: Database) -> None:
    """In a zone with summer time the days still break at local midnight, on SQLite too."""
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    config = make_config(general={"timezone": "Europe/Berlin"})
    await prepare(db, config, FakeClock())

    def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, month, day, hour, minute, tzinfo=berlin)

    async with UnitOfWork(db) as uow:
        g = "SFQ-DH-01-G1"
        # Summer time ends at 03:00 on 25 October 2026 (back to 02:00).
        for created in (at(10, 24, 23, 30), at(10, 25, 0, 15), at(10, 25, 23, 45),
                        at(10, 26, 0, 5), at(10, 26, 23, 59)):
            await put(uow, g, created, claimed=created + timedelta(minutes=5),
                      claim_due=created + timedelta(hours=1), status="claimed")
        await uow.session.commit()
    async with UnitOfWork(db) as uow:
        root = await uow.nodes.by_code("SFQ")
        points = await console.trend(uow, root.id, "response", 5, at(10, 27, 12), config)
    assert [(day.isoformat(), den) for day, _, den in points] == [
        ("2026-10-23", 0), ("2026-10-24", 1), ("2026-10-25", 2), ("2026-10-26", 2),
        ("2026-10-27", 0)]


# -- the queue --------------------------------------------------------------------------------

async def _queue(db: Database, code: str, view: str, now: datetime, **filters):
    node_id = await _id(db, code)
    async with UnitOfWork(db) as uow:
        items, total = await console.queue(uow, node_id, view, now=now,
                                           config=make_config(), **filters)
    return [item.ticket.number for item in items], total, items


async def test_the_queues_views_filters_and_search(district: Database) -> None:
    now = local(23, 12)
    async with UnitOfWork(district) as uow:
        g1, g2 = "SFQ-DH-01-G1", "SFQ-DH-02-G1"
        await put(uow, g1, local(20, 9), number="1120-0001", status="claimed",
                  claimed=local(20, 10), deadline=local(23, 9))                  # overdue
        await put(uow, g1, local(21, 9), number="1121-0001", deadline=local(23, 13),
                  category="safety_hazard")                                     # due soon
        await put(uow, g2, local(21, 10), number="1121-0002", status="in_progress",
                  claimed=local(21, 11), deadline=local(23, 14))       # after the two hours
        await put(uow, "SFQ-DH-02", local(23, 11), number="1123-0001", deadline=local(26))
        await put(uow, g2, local(22, 9), number="1122-0001", reopen_count=1,
                  deadline=local(23, 11, 59))                          # reopened, overdue
        await put(uow, g1, local(19, 9), number="1119-0001", status="closed",
                  claimed=local(19, 10), resolved=local(19, 12), close_reason="rated")
        await put(uow, "SFQ-NY-01-G1", local(20, 9), number="1120-0002",
                  deadline=local(21))                                  # another street
        # Open again after a reopening with its first claim kept: not "unclaimed".
        await put(uow, g1, local(18, 9), number="1118-0001", status="open",
                  claimed=local(18, 10), reopen_count=2, deadline=local(25))
        await uow.session.commit()

    numbers, total, items = await _queue(district, "SFQ-DH", "overdue", now)
    assert (numbers, total) == (["1120-0001", "1122-0001"], 2)
    assert all(item.overdue for item in items)
    assert items[0].node.code == "SFQ-DH-01-G1"
    assert (await _queue(district, "SFQ-DH", "due_soon", now))[:2] == (["1121-0001"], 1)
    assert console.DUE_SOON_WITHIN == timedelta(hours=2)
    numbers, total, _ = await _queue(district, "SFQ-DH", "unclaimed", now)
    assert (numbers, total) == (["1121-0001", "1122-0001", "1123-0001"], 3)  # longest first
    assert (await _queue(district, "SFQ-DH", "reopened", now))[:2] == (
        ["1122-0001", "1118-0001"], 2)
    numbers, total, _ = await _queue(district, "SFQ-DH", "all", now)
    assert numbers == ["1120-0001", "1122-0001", "1121-0001", "1121-0002", "1118-0001",
                       "1123-0001"]
    assert total == 6
    assert (await _queue(district, "SFQ", "overdue", now))[1] == 3  # the other street's too

    # Filters: a community, a category, a status, an age; pages.
    assert (await _queue(district, "SFQ-DH-02", "all", now))[0] == [
        "1122-0001", "1121-0002", "1123-0001"]
    assert (await _queue(district, "SFQ-DH", "all", now, category="safety_hazard"))[:2] == (
        ["1121-0001"], 1)
    assert (await _queue(district, "SFQ-DH", "all", now, status="in_progress"))[0] == [
        "1121-0002"]
    assert (await _queue(district, "SFQ-DH", "all", now, min_age_hours=48))[0] == [
        "1120-0001", "1121-0001", "1121-0002", "1118-0001"]
    page, total, _ = await _queue(district, "SFQ-DH", "all", now, offset=2, limit=2)
    assert (page, total) == (["1121-0001", "1121-0002"], 6)

    # Search by number: exact or the beginning, in any state, only under the node.
    assert (await _queue(district, "SFQ-DH", "overdue", now, number="1119-0001"))[:2] == (
        ["1119-0001"], 1)
    assert (await _queue(district, "SFQ-DH", "all", now, number="1121"))[:2] == (
        ["1121-0001", "1121-0002"], 2)
    assert (await _queue(district, "SFQ-DH", "all", now, number="1120-0002"))[:2] == ([], 0)
    assert (await _queue(district, "SFQ", "all", now, number="1120-0002"))[0] == ["1120-0002"]
    assert (await _queue(district, "SFQ-DH", "all", now, number="11%"))[:2] == ([], 0)
    with pytest.raises(ValueError):
        await _queue(district, "SFQ-DH", "late", now)


# -- the map ----------------------------------------------------------------------------------

async def test_the_maps_grids_counts_and_points(district: Database) -> None:
    now = local(23, 12)
    async with UnitOfWork(district) as uow:
        g1, g2 = "SFQ-DH-01-G1", "SFQ-DH-01-G2"
        await put(uow, g1, local(22), deadline=local(23), at=(39.91, 116.41), number="A-1")
        await put(uow, g1, local(22), status="claimed", deadline=local(24), number="A-2")
        # Escalated to the street: its place is still the grid's.
        await put(uow, "SFQ-DH", local(21), grid=g2, deadline=local(22), at=(39.92, 116.42),
                  number="A-3")
        await put(uow, g1, local(20), status="closed", at=(39.9, 116.4), number="A-4")
        await put(uow, "SFQ-NY-01-G1", local(22), at=(39.95, 116.45), number="A-5")
        await uow.session.commit()
    config = make_config()
    ids = {code: await _id(district, code) for code in ("SFQ-DH-01", "SFQ-DH", "SFQ", g1)}
    async with UnitOfWork(district) as uow:
        community = await console.grid_map(uow, ids["SFQ-DH-01"], now, config)
        street = await console.grid_map(uow, ids["SFQ-DH"], now, config)
        whole = await console.grid_map(uow, ids["SFQ"], now, config)
        grid = await console.grid_map(uow, ids[g1], now, config)
    by_code = {g["code"]: g for g in community["grids"]}
    assert sorted(by_code) == ["SFQ-DH-01-G1", "SFQ-DH-01-G2", "SFQ-DH-01-G3"]
    assert (by_code[g1]["open"], by_code[g1]["overdue"]) == (2, 1)
    assert (by_code[g2]["open"], by_code[g2]["overdue"]) == (1, 1)
    assert by_code[g1]["community_id"] == ids["SFQ-DH-01"]
    ring = by_code[g1]["rings"][0]
    assert ring[0] == ring[-1] and len(ring) >= 4
    # Points: open tickets handled under the node with a place; the street's own ticket is
    # not the community's.
    assert [p["number"] for p in community["points"]] == ["A-1"]
    assert community["points"][0] | {"id": 0} == {"id": 0, "number": "A-1", "lat": 39.91,
                                                  "lon": 116.41, "status": "open",
                                                  "overdue": True}
    assert [p["number"] for p in street["points"]] == ["A-1", "A-3"]
    assert [p["number"] for p in whole["points"]] == ["A-1", "A-3", "A-5"]
    assert len(whole["grids"]) == 12 and len(street["grids"]) == 6
    assert sum(g["open"] for g in whole["grids"]) == 4
    assert [g["code"] for g in grid["grids"]] == [g1]
    w, s, e, n = whole["bbox"]
    assert w < e and s < n
    for g in whole["grids"]:
        for lon, lat in g["rings"][0]:
            assert w <= lon <= e and s <= lat <= n


# -- the words --------------------------------------------------------------------------------

def test_each_rate_says_how_it_is_counted_in_three_languages(catalogs) -> None:
    config = make_config()
    lines = {lang: console_views.explain(catalogs[lang], config)
             for lang in ("zh_Hans", "zh_Hant", "en")}
    for lang, explained in lines.items():
        assert sorted(explained) == sorted(console.RATES), lang
        assert all(text and "\n" not in text for text in explained.values())
    assert lines["zh_Hans"]["response"].startswith("响应率")
    assert lines["zh_Hant"]["satisfaction"].startswith("滿意率")
    assert lines["en"]["resolution"].startswith("Resolution rate")
    assert "2" in lines["en"]["response"]  # the default claim time, two hours
    now = local(23, 13, 30)
    t = catalogs["en"]
    assert console_views.period_label(
        t, stats.current_period(Span.DAY, now, config), now) == "2026-11-23, up to 13:30"
    assert console_views.period_label(
        t, stats.digest_period(Cadence.WEEKLY, date(2026, 11, 30), config),
        now) == "2026-11-23 – 2026-11-29"


async def test_survey_helper_is_shared(district: Database) -> None:
    """The digests' crafted surveys count on the console the same way (a smoke check that the
    shared helpers still build what both read)."""
    async with UnitOfWork(district) as uow:
        t = await put(uow, "SFQ-DH-01-G1", local(23, 9), status="resolved",
                      claimed=local(23, 9, 5), resolved=local(23, 10), on_time=True)
        add_survey(uow, t, score=4, answered=local(23, 12))
        await uow.session.commit()
    config = make_config()
    grid_id = await _id(district, "SFQ-DH-01-G1")
    async with UnitOfWork(district) as uow:
        row = (await console.rates(uow, grid_id,
                                   console.period_of("today", local(23, 13), config),
                                   local(23, 13), config))[0]
    assert (row.satisfaction.num, row.satisfaction.den) == (1, 1)
