"""What the centre's console reads: the grids' boundaries and open tickets for the map, the
rates per local day for the trend, and the queue of tickets that need a push.

Every query takes the nodes it covers as a list of ids (the subtree, worked out from the org
tree in memory) and filters with IN on an indexed column; None means the whole tree, with no
filter at all. The per-day counts are the digests' counts (``storage.repositories.stats``)
grouped by local day in SQL: one query per rate, never one per day.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Date, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage.models import OPEN_STATUSES, OrgNode, Ticket, TicketResolution, TicketSurvey
from storage.repositories.stats import CREATED_SUMS, SATISFIED_MIN_SCORE, created_sums
from storage.types import UTCDateTime

QUEUE_VIEWS = ("overdue", "due_soon", "unclaimed", "reopened", "all")


@dataclass(frozen=True)
class GridShape:
    id: int
    parent_id: int | None
    code: str
    name: str
    name_zh_hant: str | None
    name_en: str | None
    geometry: str | None


@dataclass(frozen=True)
class Point:
    id: int
    number: str
    latitude: float
    longitude: float
    status: str
    deadline_at: datetime | None


@dataclass(frozen=True)
class QueueRow:
    id: int
    number: str
    kind: str
    category: str
    status: str
    node_id: int
    created_at: datetime
    deadline_at: datetime | None
    reopen_count: int
    urgent: bool


# (day, numerator, denominator)
DayCount = tuple[date, int, int]


def _within(column, ids: Collection[int] | None) -> list[ColumnElement]:
    return [] if ids is None else [column.in_(list(ids))]


class ConsoleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    @property
    def _postgres(self) -> bool:
        return self._s.get_bind().dialect.name == "postgresql"

    # -- the map ---------------------------------------------------------------------------

    async def grid_shapes(self, grid_ids: Collection[int]) -> list[GridShape]:
        if not grid_ids:
            return []
        stmt = (select(OrgNode.id, OrgNode.parent_id, OrgNode.code, OrgNode.name,
                       OrgNode.name_zh_hant, OrgNode.name_en, OrgNode.geometry)
                .where(OrgNode.id.in_(list(grid_ids))).order_by(OrgNode.code))
        return [GridShape(*row) for row in (await self._s.execute(stmt)).all()]

    async def open_by_grid(self, now: datetime,
                           grid_ids: Collection[int] | None) -> dict[int, tuple[int, int]]:
        """Per grid: the open tickets whose place is in it, and how many are overdue."""
        overdue = and_(Ticket.deadline_at.is_not(None), Ticket.deadline_at < now)
        stmt = (select(Ticket.grid_id, func.count(), func.sum(case((overdue, 1), else_=0)))
                .where(Ticket.status.in_(OPEN_STATUSES), Ticket.grid_id.is_not(None),
                       *_within(Ticket.grid_id, grid_ids))
                .group_by(Ticket.grid_id))
        return {grid: (int(n), int(late or 0))
                for grid, n, late in (await self._s.execute(stmt)).all()}

    async def open_points(self, node_ids: Collection[int] | None) -> list[Point]:
        """The open tickets handled under these nodes that have a location."""
        stmt = (select(Ticket.id, Ticket.number, Ticket.latitude, Ticket.longitude,
                       Ticket.status, Ticket.deadline_at)
                .where(Ticket.status.in_(OPEN_STATUSES), Ticket.latitude.is_not(None),
                       Ticket.longitude.is_not(None), *_within(Ticket.node_id, node_ids))
                .order_by(Ticket.id))
        return [Point(*row) for row in (await self._s.execute(stmt)).all()]

    # -- the trend -------------------------------------------------------------------------

    def _local_day(self, column, zone: ZoneInfo, start: datetime,
                   end: datetime) -> ColumnElement:
        """The local calendar day of a timestamp column, for rows between start and end."""
        if self._postgres:
            return cast(func.timezone(zone.key, column), Date)
        # SQLite holds UTC text: shift it by the zone's offset, which is constant between
        # the zone's transitions; a CASE picks the stretch a row falls in.
        stretches = _offset_stretches(zone, start, end)

        def shifted(offset: timedelta) -> ColumnElement:
            return func.date(column, f"{int(offset.total_seconds()):+d} seconds")

        if len(stretches) == 1:
            return shifted(stretches[0][1])
        whens = [(column < literal(until, UTCDateTime()), shifted(offset))
                 for until, offset in stretches[:-1]]
        return case(*whens, else_=shifted(stretches[-1][1]))

    @staticmethod
    def _day_value(value) -> date:
        return value if isinstance(value, date) else date.fromisoformat(str(value))

    async def _by_day(self, stmt) -> list[DayCount]:
        return [(self._day_value(day), int(num or 0), int(den or 0))
                for day, num, den in (await self._s.execute(stmt)).all()]

    async def trend(self, rate: str, start: datetime, end: datetime, now: datetime,
                    zone: ZoneInfo, node_ids: Collection[int] | None) -> list[DayCount]:
        """(local day, numerator, denominator) of one rate for each local day in [start, end)
        that has any, counted as a daily digest counts that day."""
        if rate in ("response", "resolution"):
            day = self._local_day(Ticket.created_at, zone, start, end)
            # Concluded by the end of its own day: resolved on the local day it was created
            # (a resolution never comes before the report).
            resolved_day = self._local_day(Ticket.resolved_at, zone, start, now)
            sums = dict(zip(CREATED_SUMS, created_sums(resolved_day <= day, now),
                            strict=True))
            num, den = (("responded", "response_due") if rate == "response"
                        else ("concluded", "cohort"))
            stmt = (select(day, sums[num], sums[den])
                    .where(Ticket.created_at >= start, Ticket.created_at < end,
                           *_within(Ticket.node_id, node_ids))
                    .group_by(day))
        elif rate == "on_time":
            done = TicketResolution
            day = self._local_day(done.resolved_at, zone, start, end)
            stmt = (select(day, func.sum(case((done.on_time.is_(True), 1), else_=0)),
                           func.count(done.on_time))
                    .where(done.resolved_at >= start, done.resolved_at < end,
                           *_within(done.node_id, node_ids))
                    .group_by(day))
        elif rate == "satisfaction":
            survey = TicketSurvey
            day = self._local_day(survey.answered_at, zone, start, end)
            satisfied = and_(survey.solved.is_(True), survey.score >= SATISFIED_MIN_SCORE)
            node = func.coalesce(survey.node_id, Ticket.node_id)
            stmt = (select(day, func.sum(case((satisfied, 1), else_=0)), func.count())
                    .join(Ticket, Ticket.id == survey.ticket_id)
                    .where(survey.status == "answered", survey.answered_at >= start,
                           survey.answered_at < end, *_within(node, node_ids))
                    .group_by(day))
        else:
            raise ValueError(f"no rate {rate!r}")
        return await self._by_day(stmt)

    # -- the queue -------------------------------------------------------------------------

    async def queue(self, view: str, now: datetime, node_ids: Collection[int] | None, *,
                    due_soon: timedelta, category: str | None = None,
                    status: str | None = None, min_age: timedelta | None = None,
                    number: str | None = None, offset: int = 0,
                    limit: int = 50) -> tuple[list[QueueRow], int]:
        """One page of a view of the tickets handled under these nodes, and how many the view
        holds. A number searches every ticket under them (exact, or those it begins), in
        whatever state: whoever knows the number wants that ticket."""
        where: list[ColumnElement] = _within(Ticket.node_id, node_ids)
        if number:
            where.append(_starts_with(Ticket.number, number))
            order = [Ticket.number]
        else:
            where.append(Ticket.status.in_(OPEN_STATUSES))
            order = [Ticket.deadline_at.is_(None), Ticket.deadline_at, Ticket.id]
            if view == "overdue":
                where.append(Ticket.deadline_at < now)
            elif view == "due_soon":
                where += [Ticket.deadline_at >= now, Ticket.deadline_at < now + due_soon]
            elif view == "unclaimed":
                where += [Ticket.status == "open", Ticket.claimed_at.is_(None)]
                order = [Ticket.created_at, Ticket.id]
            elif view == "reopened":
                where.append(Ticket.reopen_count > 0)
            elif view != "all":
                raise ValueError(f"no view {view!r}")
        if category:
            where.append(Ticket.category == category)
        if status:
            where.append(Ticket.status == status)
        if min_age is not None:
            where.append(Ticket.created_at <= now - min_age)
        page = (select(Ticket.id, Ticket.number, Ticket.kind, Ticket.category, Ticket.status,
                       Ticket.node_id, Ticket.created_at, Ticket.deadline_at,
                       Ticket.reopen_count, Ticket.urgent)
                .where(*where).order_by(*order).offset(offset).limit(limit))
        rows = [QueueRow(*row) for row in (await self._s.execute(page)).all()]
        if offset == 0 and len(rows) < limit:
            return rows, len(rows)
        total = (await self._s.execute(select(func.count()).select_from(Ticket)
                                       .where(*where))).scalar_one()
        return rows, int(total)


def _starts_with(column, prefix: str) -> ColumnElement:
    """column = prefix, or begins with it: a range on the index (LIKE would need its own
    operator class on PostgreSQL and case_sensitive_like on SQLite to use one)."""
    return or_(column == prefix, and_(column > prefix, column < prefix + "\U0010ffff"))


def _offset_stretches(zone: ZoneInfo, start: datetime,
                      end: datetime) -> list[tuple[datetime, timedelta]]:
    """[(until, offset)]: the zone's UTC offset up to each transition between start and end
    (the last one's until is end), found to the second."""
    out: list[tuple[datetime, timedelta]] = []
    moment, offset = start, start.astimezone(zone).utcoffset()
    step = timedelta(hours=6)
    while moment < end:
        following = min(moment + step, end)
        if following.astimezone(zone).utcoffset() != offset:
            low, high = moment, following  # the change lies in (low, high]
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            out.append((high, offset))
            offset = high.astimezone(zone).utcoffset()
            following = high
        moment = following
    out.append((end, offset))
    return out

