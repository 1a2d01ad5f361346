"""The numbers behind the centre's console: the map of a node's grids and open tickets, the rates
per child node, their trend per local day, and the queue of tickets that need a push.

Plain reads over a unit of work (the door opens it; nothing here writes or commits). The subtree
of a node comes from the org tree in memory (``stats.load_tree``), and the queries filter on it;
the whole tree is not filtered at all. The rates are the digests' own counts
(``bot.services.stats``): the console adds the response rate to the same grouped query, so a
node's figures on the console and in its digest for the same period are the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from bot.config import Config, tier_of
from bot.services import stats
from bot.services.grids import outline
from bot.services.stats import Period, Span, Tally, Tree
from storage.models import OPEN_STATUSES
from storage.repositories.console import QUEUE_VIEWS, ConsoleRepository, QueueRow
from storage.repositories.stats import TreeNode
from storage.uow import UnitOfWork

RATES = ("response", "resolution", "on_time", "satisfaction")
VIEWS = QUEUE_VIEWS
# "About to be overdue": open tickets whose deadline comes within this time.
DUE_SOON_WITHIN = timedelta(hours=2)
# How far back the trend may reach, and how long a page of the queue may be.
MAX_TREND_DAYS = 366
MAX_PAGE = 200


class NoSuchNode(LookupError):
    """The node asked for is not in the org tree (any more)."""


@dataclass(frozen=True)
class Ratio:
    num: int
    den: int

    @property
    def rate(self) -> float | None:
        return self.num / self.den if self.den else None


@dataclass(frozen=True)
class RateRow:
    """One row of the rates table: the node's whole subtree (``total``), a child node's
    subtree, or (``node`` None) the tickets the node holds itself."""

    node: TreeNode | None
    total: bool
    tally: Tally

    @property
    def new(self) -> int:
        return self.tally.new

    @property
    def open(self) -> int:
        return self.tally.open

    @property
    def overdue(self) -> int:
        return self.tally.overdue

    @property
    def response(self) -> Ratio:
        return Ratio(self.tally.responded, self.tally.response_due)

    @property
    def resolution(self) -> Ratio:
        return Ratio(self.tally.concluded, self.tally.cohort)

    @property
    def on_time(self) -> Ratio:
        return Ratio(self.tally.on_time, self.tally.timed)

    @property
    def satisfaction(self) -> Ratio:
        return Ratio(self.tally.satisfied, self.tally.answered)

    def ratio(self, rate: str) -> Ratio:
        if rate not in RATES:
            raise ValueError(f"no rate {rate!r}")
        return getattr(self, rate)


# -- the tree --------------------------------------------------------------------------------

async def _scope(uow: UnitOfWork, node_id: int) -> tuple[Tree, list[int] | None]:
    """The tree and the ids of the node's subtree (None for a root: everything)."""
    tree = await stats.load_tree(uow)
    node = tree.nodes.get(node_id)
    if node is None:
        raise NoSuchNode(node_id)
    return tree, None if node.parent_id is None else tree.subtree(node_id)


def _community_of(tree: Tree, node: TreeNode) -> int | None:
    current = tree.nodes.get(node.parent_id) if node.parent_id is not None else None
    while current is not None:
        if tier_of(current.level) == "community":
            return current.id
        current = tree.nodes.get(current.parent_id) if current.parent_id is not None else None
    return None


# -- the map ---------------------------------------------------------------------------------

async def grid_map(uow: UnitOfWork, node_id: int, now: datetime,
                   config: Config) -> dict[str, Any]:
    """The grids under the node (the node itself, if it is a grid) with their outer rings, the
    open and overdue tickets whose place is in each, and the community above each; the open
    tickets handled under the node that have a location, as points; the bounding box
    [west, south, east, north] of both (None when there is nothing to draw)."""
    tree, ids = await _scope(uow, node_id)
    grid_ids = [i for i in (ids if ids is not None else tree.nodes)
                if tree.nodes[i].level == "grid"]
    repo = ConsoleRepository(uow.session)
    counts = await repo.open_by_grid(now, grid_ids if ids is not None else None)
    west, south, east, north = 180.0, 90.0, -180.0, -90.0
    grids = []
    for shape in await repo.grid_shapes(grid_ids):
        drawn = outline(shape.geometry) if shape.geometry else None
        if drawn is None:
            continue
        rings, (minx, miny, maxx, maxy) = drawn
        west, south, east, north = min(west, minx), min(south, miny), max(east, maxx), \
            max(north, maxy)
        open_, overdue = counts.get(shape.id, (0, 0))
        grids.append({"id": shape.id, "code": shape.code, "name": shape.name,
                      "names": {"zh_Hans": shape.name,
                                "zh_Hant": shape.name_zh_hant or shape.name,
                                "en": shape.name_en or shape.name},
                      "rings": [[list(point) for point in ring] for ring in rings],
                      "open": open_, "overdue": overdue,
                      "community_id": _community_of(tree, tree.nodes[shape.id])})
    points = []
    for point in await repo.open_points(ids):
        west, south = min(west, point.longitude), min(south, point.latitude)
        east, north = max(east, point.longitude), max(north, point.latitude)
        points.append({"id": point.id, "number": point.number, "lat": point.latitude,
                       "lon": point.longitude, "status": point.status,
                       "overdue": point.deadline_at is not None and point.deadline_at < now})
    bbox = [west, south, east, north] if grids or points else None
    return {"node": node_id, "grids": grids, "points": points, "bbox": bbox}


# -- the rates -------------------------------------------------------------------------------

def range_period(first: date, last: date, now: datetime, config: Config) -> Period:
    """The local days first…last (inclusive) as a period; one that reaches today ends now."""
    if last < first:
        raise ValueError("the range ends before it begins")
    tz = config.timezone
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    so_far = end > now
    return Period(Span.DAY, start, min(end, now) if so_far else end, first, last, tz,
                  so_far=so_far)


def period_of(name: str, now: datetime, config: Config, first: date | None = None,
              last: date | None = None) -> Period:
    """The console's periods: today, this week, this month (each so far), or a range."""
    spans = {"today": Span.DAY, "week": Span.WEEK, "month": Span.MONTH}
    if name in spans:
        return stats.current_period(spans[name], now, config)
    if name == "range" and first is not None and last is not None:
        return range_period(first, last, now, config)
    raise ValueError(f"no period {name!r}")


async def rates(uow: UnitOfWork, node_id: int, period: Period, now: datetime,
                config: Config) -> list[RateRow]:
    """The node's whole subtree (``total``), then each child node's subtree, then the tickets
    the node holds itself if it has children and any such tickets: the digests' breakdown
    (``stats.fold``) from the digests' query, with the response rate counted in it."""
    tree, ids = await _scope(uow, node_id)
    # No averages on the console: the time to resolve is left out (resolve_seconds is 0).
    sums = await stats.node_sums(uow, period, now, node_ids=ids, durations=False)
    report = stats.fold(tree, sums, node_id, period, now)
    return [RateRow(report.node, True, report.total),
            *(RateRow(line.node, False, line.tally) for line in report.lines)]


async def trend(uow: UnitOfWork, node_id: int, rate: str, days: int, now: datetime,
                config: Config) -> list[tuple[date, int, int]]:
    """(day, numerator, denominator) of one rate for each of the last ``days`` local days,
    today (so far) last; each day counted as that day's daily digest counts it."""
    if rate not in RATES:
        raise ValueError(f"no rate {rate!r}")
    days = max(1, min(days, MAX_TREND_DAYS))
    _tree, ids = await _scope(uow, node_id)
    tz = config.timezone
    today = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    counts = {day: (num, den) for day, num, den in await ConsoleRepository(uow.session).trend(
        rate, start, now, now, tz, ids)}
    return [(day, *counts.get(day, (0, 0)))
            for day in (first + timedelta(days=n) for n in range(days))]


# -- the queue -------------------------------------------------------------------------------

@dataclass(frozen=True)
class QueueItem:
    ticket: QueueRow
    node: TreeNode | None
    overdue: bool


async def queue(uow: UnitOfWork, node_id: int, view: str, *, category: str | None = None,
                status: str | None = None, min_age_hours: float | None = None,
                number: str | None = None, now: datetime, config: Config, offset: int = 0,
                limit: int = 50) -> tuple[list[QueueItem], int]:
    """One page of a view of the open tickets handled in the node's subtree, and the view's
    size. Views: ``overdue`` (past the deadline), ``due_soon`` (deadline within
    DUE_SOON_WITHIN), ``unclaimed`` (waiting, never claimed), ``reopened`` (sent back by a
    resident at least once), ``all``; most urgent first (the earliest deadline; for
    ``unclaimed``, the longest waiting). ``number`` finds tickets by number (exact, or those
    it begins) in any state, whatever the view."""
    if view not in VIEWS:
        raise ValueError(f"no view {view!r}")
    tree, ids = await _scope(uow, node_id)
    min_age = timedelta(hours=min_age_hours) if min_age_hours else None
    number = (number or "").strip() or None
    rows, total = await ConsoleRepository(uow.session).queue(
        view, now, ids, due_soon=DUE_SOON_WITHIN, category=category or None,
        status=status or None, min_age=min_age, number=number, offset=max(offset, 0),
        limit=max(1, min(limit, MAX_PAGE)))
    return [QueueItem(row, tree.nodes.get(row.node_id),
                      row.status in OPEN_STATUSES
                      and row.deadline_at is not None and row.deadline_at < now)
            for row in rows], total
