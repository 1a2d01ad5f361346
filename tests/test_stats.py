"""The numbers behind digests and /stats, on SQLite and PostgreSQL: each count
and rate from crafted tickets and surveys, the breakdown by child node, and periods whose edges
are local midnights in Asia/Shanghai."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.clock import FakeClock
from bot.services import stats
from bot.services.stats import Cadence, Span, Tally
from bot.startup import prepare
from storage.db import Database
from storage.models import Ticket, TicketResolution, TicketSurvey
from storage.uow import UnitOfWork
from tests.harness import make_config

SHANGHAI = ZoneInfo("Asia/Shanghai")
_numbers = itertools.count(1)


def local(day: int, hour: int = 0, minute: int = 0, second: int = 0, *,
          month: int = 11) -> datetime:
    """A moment of 2026 in Shanghai, as UTC (what the database and the clock hold)."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(UTC)


async def add_ticket(uow: UnitOfWork, code: str, created: datetime, *, grid: str | None = None,
                     status: str = "open", claimed: datetime | None = None,
                     claim_due: datetime | None = None, resolved: datetime | None = None,
                     deadline: datetime | None = None, on_time: bool | None = None,
                     close_reason: str | None = None, category: str = "sanitation",
                     reopen_count: int = 0, at: tuple[float, float] | None = None,
                     number: str | None = None) -> Ticket:
    """A ticket as the life cycle would have left it, written directly with chosen times:
    handled at ``code``, its place in ``grid`` (``code`` if not given)."""
    node = await uow.nodes.by_code(code)
    place = await uow.nodes.by_code(grid) if grid else node
    ticket = Ticket(number=number or f"T-{next(_numbers):06d}", kind="report",
                    category=category, status=status, node_id=node.id, grid_id=place.id,
                    reporter_id=700_000, language="zh_Hans", description="crafted",
                    created_at=created, updated_at=resolved or claimed or created,
                    claimed_at=claimed, claim_due_at=claim_due, resolved_at=resolved,
                    deadline_at=deadline, on_time=on_time, close_reason=close_reason,
                    reopen_count=reopen_count, latitude=at[0] if at else None,
                    longitude=at[1] if at else None)
    uow.tickets.add(ticket)
    await uow.tickets.flush()
    if resolved is not None:
        uow.tickets.record_resolution(TicketResolution(
            ticket_id=ticket.id, node_id=node.id, resolved_at=resolved, on_time=on_time))
    return ticket


def add_survey(uow: UnitOfWork, ticket: Ticket, *, score: int | None, answered: datetime | None,
               status: str = "answered", user_id: int = 700_000) -> None:
    uow.session.add(TicketSurvey(ticket_id=ticket.id, user_id=user_id, round=0, status=status,
                                 score=score, solved=None if score is None else score >= 3,
                                 created_at=answered or ticket.created_at,
                                 asked_at=answered, answered_at=answered))


@pytest.fixture
async def district(db: Database) -> Database:
    """The demo district (2 streets, 4 communities, 12 grids) and the two desks."""
    await prepare(db, make_config(), FakeClock())
    return db


# -- periods -------------------------------------------------------------------------------

def test_current_periods_start_at_local_midnight() -> None:
    config = make_config()
    now = local(23, 9)  # Monday 2026-11-23, 09:00 in Shanghai; 01:00 UTC
    day = stats.current_period(Span.DAY, now, config)
    assert (day.start, day.end, day.so_far) == (local(23), now, True)
    assert day.start == datetime(2026, 11, 22, 16, tzinfo=UTC)  # not UTC midnight
    week = stats.current_period(Span.WEEK, local(29, 23, 59), config)
    assert (week.start, week.first_day, week.last_day) == (local(23), date(2026, 11, 23),
                                                          date(2026, 11, 29))
    month = stats.current_period(Span.MONTH, now, config)
    assert month.start == local(1) == datetime(2026, 10, 31, 16, tzinfo=UTC)


def test_digest_periods_are_the_last_complete_day_week_and_month() -> None:
    config = make_config()
    daily = stats.digest_period(Cadence.DAILY, date(2026, 11, 24), config)
    assert (daily.start, daily.end, daily.first_day, daily.last_day) == (
        local(23), local(24), date(2026, 11, 23), date(2026, 11, 23))
    weekly = stats.digest_period(Cadence.WEEKLY, date(2026, 11, 30), config)
    assert (weekly.start, weekly.end, weekly.last_day) == (local(23), local(30),
                                                           date(2026, 11, 29))
    monthly = stats.digest_period(Cadence.MONTHLY, date(2026, 12, 1), config)
    assert (monthly.start, monthly.end, monthly.last_day) == (local(1), local(1, month=12),
                                                              date(2026, 11, 30))
    january = stats.digest_period(Cadence.MONTHLY, date(2027, 1, 1), config)
    assert (january.first_day, january.last_day) == (date(2026, 12, 1), date(2026, 12, 31))


def test_send_moments_follow_the_configured_days_and_time() -> None:
    config = make_config()
    assert stats.next_send(Cadence.DAILY, local(23, 9), config) == local(24, 8, 30)
    assert stats.next_send(Cadence.DAILY, local(23, 8), config) == local(23, 8, 30)
    assert stats.next_send(Cadence.DAILY, local(23, 8, 30), config) == local(24, 8, 30)
    assert stats.next_send(Cadence.WEEKLY, local(23, 8, 30), config) == local(30, 8, 30)
    assert stats.next_send(Cadence.MONTHLY, local(23, 9), config) == local(1, 8, 30, month=12)
    assert stats.last_send(Cadence.WEEKLY, local(29, 23), config) == local(23, 8, 30)
    assert stats.last_send(Cadence.MONTHLY, local(23, 9), config) == local(1, 8, 30)

    other = make_config(digests={"send_at": "18:00", "weekly_on": "friday",
                                 "monthly_on_day": 5})
    assert stats.next_send(Cadence.WEEKLY, local(23, 9), other) == local(27, 18)
    assert stats.next_send(Cadence.MONTHLY, local(23, 9), other) == local(5, 18, month=12)
    week = stats.digest_period(Cadence.WEEKLY, date(2026, 11, 27), other)
    assert (week.first_day, week.last_day) == (date(2026, 11, 20), date(2026, 11, 26))
    assert stats.current_period(Span.WEEK, local(23, 9), other).first_day == date(2026, 11, 20)


def test_stats_arguments_in_three_languages() -> None:
    assert stats.parse_span(None) is Span.WEEK
    assert stats.parse_span("") is Span.WEEK
    assert stats.parse_span("today") is stats.parse_span("今天") is Span.DAY
    assert stats.parse_span("Week") is stats.parse_span("本周") is stats.parse_span("本週")
    assert stats.parse_span(" month ") is stats.parse_span("本月") is Span.MONTH
    assert stats.parse_span("year") is None


def test_cadence_by_level() -> None:
    assert {level: stats.cadence_of(level) for level in (
        "grid", "community", "village", "desk", "street", "town", "park", "district")} == {
        "grid": Cadence.DAILY, "community": Cadence.DAILY, "village": Cadence.DAILY,
        "desk": Cadence.DAILY, "street": Cadence.WEEKLY, "town": Cadence.WEEKLY,
        "park": Cadence.WEEKLY, "district": Cadence.MONTHLY}


def test_rates_are_none_without_a_denominator() -> None:
    empty = Tally()
    assert (empty.resolution_rate, empty.on_time_rate, empty.satisfaction_rate,
            empty.average_claim, empty.average_resolve) == (None, None, None, None, None)
    assert empty.quiet


# -- numbers from the database -------------------------------------------------------------

async def _crafted_day(db: Database) -> None:
    """Monday 2026-11-23 in 东湖街道 (SFQ-DH), with tickets around it."""
    async with UnitOfWork(db) as uow:
        g1, g2 = "SFQ-DH-01-G1", "SFQ-DH-01-G2"
        t1 = await add_ticket(uow, g1, local(23, 10), status="closed", close_reason="rated",
                              claimed=local(23, 10, 30), resolved=local(23, 14),
                              deadline=local(25), on_time=True)
        await add_ticket(uow, g1, local(23, 11), status="in_progress",
                         claimed=local(23, 13), deadline=local(23, 20))        # overdue
        await add_ticket(uow, g2, local(23, 12), status="withdrawn")           # not in 办结率
        t4 = await add_ticket(uow, g2, local(22, 9), status="resolved",
                              claimed=local(22, 9, 5), resolved=local(23, 9),
                              deadline=local(22, 18), on_time=False)           # resolved late
        await add_ticket(uow, "SFQ-DH-01", local(23, 15), deadline=local(30))  # escalated
        await add_ticket(uow, g1, local(23, 16), status="resolved", claimed=local(23, 16),
                         resolved=local(24, 8), on_time=True)  # resolved after the day
        t7 = await add_ticket(uow, g1, local(23, 17), status="resolved", claimed=local(23, 17),
                              resolved=local(23, 18))          # no deadline: not timed
        # Resolved, then reopened by its resident (which clears the resolution): open again.
        await add_ticket(uow, g1, local(23, 18), status="open", deadline=local(30))
        t8 = await add_ticket(uow, "SFQ-DH-02-G1", local(23, 9), status="closed",
                              close_reason="unanswered", claimed=local(23, 9, 10),
                              resolved=local(23, 10), deadline=local(24), on_time=True)
        await add_ticket(uow, "SFQ-DH", local(20, 9), deadline=local(22))      # street's own
        await add_ticket(uow, "SFQ-NY-01-G1", local(23, 9))                    # elsewhere
        # The edges of the day: one second before it, and its very first second.
        await add_ticket(uow, "SFQ-DH-01-G3", local(22, 23, 59, 59), status="withdrawn")
        await add_ticket(uow, "SFQ-DH-01-G3", local(23, 0, 0, 0), status="withdrawn")
        await add_ticket(uow, "SFQ-DH-01-G3", local(24, 0, 0, 0), status="withdrawn")
        add_survey(uow, t1, score=5, answered=local(23, 15))
        add_survey(uow, t7, score=3, answered=local(23, 19), user_id=700_001)  # 基本满意
        add_survey(uow, t8, score=2, answered=local(23, 12))
        add_survey(uow, t4, score=1, answered=local(22, 20))                   # day before
        add_survey(uow, t1, score=None, answered=None, status="asked", user_id=700_002)
        await uow.session.commit()


async def _report(db: Database, code: str, period: stats.Period, now: datetime):
    async with UnitOfWork(db) as uow:
        node = await uow.nodes.by_code(code)
        return await stats.subtree_report(uow, node.id, period, now)


def _names(report) -> list[str | None]:
    return [line.node.code if line.node else None for line in report.lines]


async def test_each_count_and_rate_of_a_street_and_its_breakdown(district: Database) -> None:
    await _crafted_day(district)
    config = make_config()
    now = local(24, 8, 30)
    period = stats.digest_period(Cadence.DAILY, date(2026, 11, 24), config)
    report = await _report(district, "SFQ-DH", period, now)
    assert _names(report) == ["SFQ-DH-01", "SFQ-DH-02", None]  # None: the street's own
    first, second, own = (line.tally for line in report.lines)

    # 东湖第一社区: 8 new (two withdrawn, one of them at 00:00:00 exactly); 3 open, 1
    # overdue; 3 resolved (one created the day before).
    assert (first.new, first.open, first.overdue, first.resolved) == (8, 3, 1, 3)
    # 办结率: of the 6 created that day and not withdrawn, 2 concluded before midnight (the
    # one resolved next morning and the reopened one do not count).
    assert (first.cohort, first.concluded, first.resolution_rate) == (6, 2, 2 / 6)
    # On time: the one resolved in time and the one resolved late; no deadline, no count.
    assert (first.timed, first.on_time, first.on_time_rate) == (2, 1, 0.5)
    # 满意率: scores 5 and 3 that day; the score 1 of the day before and the unanswered
    # survey are left out.
    assert (first.answered, first.satisfied, first.satisfaction_rate) == (2, 2, 1.0)
    # Claimed that day after 30 min, 2 h, 0 and 0: average 37.5 min.
    assert first.average_claim == timedelta(minutes=37, seconds=30)
    # Resolved that day after 4 h, 24 h and 1 h: average 9 h 40 min.
    assert first.average_resolve == timedelta(hours=9, minutes=40)

    assert (second.new, second.open, second.resolved, second.resolution_rate,
            second.on_time_rate, second.satisfaction_rate) == (1, 0, 1, 1.0, 1.0, 0.0)
    assert second.average_claim == timedelta(minutes=10)
    assert (own.new, own.open, own.overdue) == (0, 1, 1)

    total = report.total
    assert (total.new, total.open, total.overdue, total.resolved) == (9, 4, 2, 4)
    assert total.resolution_rate == 3 / 7
    assert total.on_time_rate == 2 / 3
    assert total.satisfaction_rate == 2 / 3
    assert total.average_resolve == timedelta(hours=7, minutes=30)
    assert total == first + second + own


async def test_a_grid_has_no_breakdown_and_a_district_breaks_down_by_street_and_desk(
        district: Database) -> None:
    await _crafted_day(district)
    config = make_config()
    now = local(24, 8, 30)
    period = stats.digest_period(Cadence.DAILY, date(2026, 11, 24), config)
    grid = await _report(district, "SFQ-DH-01-G1", period, now)
    assert grid.lines == ()
    assert (grid.total.new, grid.total.open, grid.total.resolved) == (5, 2, 2)

    whole = await _report(district, "SFQ", period, now)
    assert _names(whole) == ["SFQ-DH", "SFQ-NY", "enterprise", "legal"]
    by_code = {line.node.code: line.tally for line in whole.lines}
    assert by_code["SFQ-NY"].new == 1 and by_code["legal"] == Tally()
    assert whole.total.new == 10
    # The district's numbers from all nodes at once (the digests' way) are the same.
    async with UnitOfWork(district) as uow:
        tree = await stats.load_tree(uow)
        sums = await stats.node_sums(uow, period, now)
        node = await uow.nodes.by_code("SFQ-DH")
    assert stats.fold(tree, sums, node.id, period, now) == await _report(
        district, "SFQ-DH", period, now)


async def test_the_edges_of_a_local_day(district: Database) -> None:
    """A ticket at 23:59:59 belongs to its day and one at 00:00:00 to the next, in local time
    (in UTC both are in the afternoon of the same day)."""
    await _crafted_day(district)
    config = make_config()
    for send_day, expected in ((date(2026, 11, 23), 1), (date(2026, 11, 24), 1),
                               (date(2026, 11, 25), 1)):
        period = stats.digest_period(Cadence.DAILY, send_day, config)
        report = await _report(district, "SFQ-DH-01-G3", period, local(26))
        assert report.total.new == expected, send_day
    week = stats.digest_period(Cadence.WEEKLY, date(2026, 11, 30), config)
    assert (await _report(district, "SFQ-DH-01-G3", week, local(30))).total.new == 2


async def test_the_current_period_so_far(district: Database) -> None:
    await _crafted_day(district)
    config = make_config()
    now = local(23, 13, 30)
    today = stats.current_period(Span.DAY, now, config)
    report = await _report(district, "SFQ-DH-01", today, now)
    # Created by 13:30: at 00:00, 10:00, 11:00, 12:00; resolved by then: 09:00 (from the day
    # before); the later ones are after "now" and not counted.
    assert report.total.new == 4
    assert report.total.resolved == 1


# -- the migration that keeps every resolution -------------------------------------------------

async def test_the_migration_keeps_the_resolutions_made_so_far() -> None:
    """Migration 0009 fills ticket_resolution from what the rows knew: each ticket's latest
    resolution, and one per follow-up round a reopening ended (at the node that resolved)."""
    from sqlalchemy import text

    from storage import migrate
    from tests.conftest import BACKENDS, fresh_database

    at, later = "2026-01-01 00:00:00+00", "2026-01-02 00:00:00+00"
    for backend in BACKENDS:
        async with fresh_database(backend) as db:
            await migrate.upgrade(db, "0008")
            async with db.engine.begin() as conn:
                for statement in (
                    "INSERT INTO org_node (id, code, level, name, created_at, updated_at) "
                    f"VALUES (1, 'D', 'district', 'd', '{at}', '{at}')",
                    "INSERT INTO org_node (id, code, level, name, parent_id, created_at, "
                    f"updated_at) VALUES (2, 'L', 'desk', 'l', 1, '{at}', '{at}')",
                    # Resolved at the desk, rated 1/5, reopened to the district, resolved
                    # there: the ticket knows only the second resolution.
                    "INSERT INTO ticket (id, number, kind, category, status, urgent, "
                    "description, node_id, reporter_id, anonymous, language, created_at, "
                    "updated_at, resolved_at, on_time, missed_deadline, reopen_count, details) "
                    "VALUES (1, '0101-0001', 'report', 'x', 'resolved', false, 'w', 1, 5, "
                    f"false, 'en', '{at}', '{later}', '{later}', true, false, 1, '{{}}')",
                    "INSERT INTO ticket_survey (id, ticket_id, user_id, round, node_id, status, "
                    f"score, solved, created_at) VALUES (1, 1, 5, 0, 2, 'answered', 1, true, "
                    f"'{at}')",
                    "INSERT INTO ticket_survey (id, ticket_id, user_id, round, node_id, status, "
                    f"created_at) VALUES (2, 1, 5, 1, 1, 'waiting', '{later}')",
                ):
                    await conn.execute(text(statement))
            await migrate.upgrade(db)
            async with db.engine.connect() as conn:
                rows = (await conn.execute(text(
                    "SELECT node_id, on_time FROM ticket_resolution ORDER BY resolved_at"
                ))).all()
            assert [(node, bool(on_time) if on_time is not None else None)
                    for node, on_time in rows] == [(2, None), (1, True)]
