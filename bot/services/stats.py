"""The programme's numbers for a node's subtree and a period: the rules behind
the digests and /stats, without Telegram types.

What is counted, for the period [start, end):

* **new** — tickets created in the period;
* **open** and **overdue** — tickets open (open, claimed or in progress) when the report is
  made, and those of them past their deadline: a snapshot, not a count over the period;
* **resolved** — resolutions made in the period, each at the node that made it: a ticket
  reopened and resolved again counts twice, once where each resolution was made;
* **resolution rate (办结率)** — of the tickets created in the period and not withdrawn by the
  resident, the share resolved or closed after resolution, with that resolution before the
  end of the period (a ticket reopened since counts as not concluded, so a period's figure
  can still fall later); a daily figure is the share handled the same day, so it reads low
  beside a deadline of several days;
* **on-time rate** — of the resolutions made in the period against a deadline, the share
  made by it;
* **satisfaction rate (满意率)** — of the follow-up answers given in the period, the share
  saying the problem is solved and scoring 3 (基本满意) or better on the 1–5 scale, counted at
  the node that resolved the ticket;
* **response rate (响应率)** — of the tickets created in the period and not withdrawn, whose
  time to be claimed in (``ticket.claim_due_at``: the moment the claim escalation had when
  it was reported) is over or which were claimed, the share first claimed by that moment;
* **average time to claim** — creation to first claim, over the tickets first claimed in the
  period; **average time to resolve** — creation to resolution, over the resolutions made in
  the period.

Otherwise a ticket counts at the node that handles it now (or handled it last): an escalated
ticket counts at the centre that took it over, a transferred one where it went. A report breaks its
node's subtree down by child node, plus a line for the tickets the node holds itself.

Periods are local days, weeks and months in the configured time zone. Digests cover the last
complete period before they are sent: the previous day, the seven days before the weekly day,
the previous calendar month. /stats covers the current period so far.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.config import Config, tier_of
from storage.repositories.stats import NodeSums, StatsRepository, TreeNode
from storage.uow import UnitOfWork


class Cadence(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


# Who gets which digest, at the programme's working cadence (村/社区每天梳理, 街镇一周一反馈,
# 区级一月一调度); desks get the daily digest of their own tickets.
_CADENCE_OF_TIER = {"grid": Cadence.DAILY, "community": Cadence.DAILY, "desk": Cadence.DAILY,
                    "street": Cadence.WEEKLY, "district": Cadence.MONTHLY}


def cadence_of(level: str) -> Cadence | None:
    """The digest a node of this level gets: villages count as communities, towns and parks
    as streets."""
    return _CADENCE_OF_TIER.get(tier_of(level))


# -- periods -----------------------------------------------------------------------------------

class Span(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


_SPAN_OF_CADENCE = {Cadence.DAILY: Span.DAY, Cadence.WEEKLY: Span.WEEK,
                    Cadence.MONTHLY: Span.MONTH}

# What /stats accepts, in the three languages; the default is the current week.
STATS_ARGUMENTS: Mapping[str, Span] = {
    "today": Span.DAY, "day": Span.DAY, "今天": Span.DAY, "今日": Span.DAY,
    "week": Span.WEEK, "本周": Span.WEEK, "本週": Span.WEEK,
    "month": Span.MONTH, "本月": Span.MONTH,
}
DEFAULT_SPAN = Span.WEEK


def parse_span(argument: str | None) -> Span | None:
    """The /stats argument as a span, the default for none, or None when it is not one."""
    if argument is None or not argument.strip():
        return DEFAULT_SPAN
    return STATS_ARGUMENTS.get(argument.strip().casefold())


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, and the local days it covers (``last_day`` inclusive) in ``zone``.
    ``so_far``: the current period up to now, not a complete one."""

    span: Span
    start: datetime
    end: datetime
    first_day: date
    last_day: date
    zone: ZoneInfo
    so_far: bool = False


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def _week_start(day: date, weekday: int) -> date:
    return day - timedelta(days=(day.weekday() - weekday) % 7)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _previous_month_start(day: date) -> date:
    return _month_start(_month_start(day) - timedelta(days=1))


def _period(span: Span, first: date, after_last: date, tz: ZoneInfo, *,
            end: datetime | None = None) -> Period:
    return Period(span, _midnight(first, tz), end or _midnight(after_last, tz), first,
                  after_last - timedelta(days=1), tz, so_far=end is not None)


def current_period(span: Span, now: datetime, config: Config) -> Period:
    """The period of this span that ``now`` falls in, up to now (for /stats). A week starts
    on the digests' weekly day (Monday by default)."""
    tz = config.timezone
    today = now.astimezone(tz).date()
    if span is Span.DAY:
        first = today
    elif span is Span.WEEK:
        first = _week_start(today, config.digests.weekly_weekday)
    else:
        first = _month_start(today)
    return _period(span, first, today + timedelta(days=1), tz, end=now)


def digest_period(cadence: Cadence, send_day: date, config: Config) -> Period:
    """The complete period a digest sent on ``send_day`` covers."""
    tz = config.timezone
    if cadence is Cadence.DAILY:
        return _period(Span.DAY, send_day - timedelta(days=1), send_day, tz)
    if cadence is Cadence.WEEKLY:
        return _period(Span.WEEK, send_day - timedelta(days=7), send_day, tz)
    return _period(Span.MONTH, _previous_month_start(send_day), _month_start(send_day), tz)


def _is_send_day(cadence: Cadence, day: date, config: Config) -> bool:
    if cadence is Cadence.DAILY:
        return True
    if cadence is Cadence.WEEKLY:
        return day.weekday() == config.digests.weekly_weekday
    return day.day == config.digests.monthly_on_day


def _send_moments(cadence: Cadence, around: datetime, config: Config, step: int):
    tz = config.timezone
    day = around.astimezone(tz).date()
    for offset in range(0, 63):  # a month and a bit always holds one of each cadence
        candidate = day + timedelta(days=offset * step)
        if _is_send_day(cadence, candidate, config):
            yield datetime.combine(candidate, config.digests.send_at, tzinfo=tz)


def next_send(cadence: Cadence, after: datetime, config: Config) -> datetime:
    """The first moment strictly after ``after`` at which this digest is sent."""
    return next(m for m in _send_moments(cadence, after, config, 1) if m > after)


def last_send(cadence: Cadence, at_or_before: datetime, config: Config) -> datetime:
    """The latest moment at or before the given one at which this digest was due."""
    return next(m for m in _send_moments(cadence, at_or_before, config, -1)
                if m <= at_or_before)


def send_day(moment: datetime, config: Config) -> date:
    return moment.astimezone(config.timezone).date()


# -- numbers -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tally:
    """Additive counts of one node or subtree; the rates and averages are derived and are
    None where there is nothing to divide by."""

    new: int = 0
    open: int = 0
    overdue: int = 0
    resolved: int = 0     # resolutions made in the period, where they were made
    cohort: int = 0       # created in the period and not withdrawn
    concluded: int = 0    # of those, resolved (or closed after resolution) before the end
    timed: int = 0        # resolved in the period, with a deadline
    on_time: int = 0      # of those, resolved by the deadline
    answered: int = 0     # follow-up answers given in the period
    satisfied: int = 0    # of those, solved and score 3 or better
    claimed: int = 0      # first claimed in the period
    response_due: int = 0  # created in the period, not withdrawn, its claim time over or met
    responded: int = 0    # of those, first claimed within its claim time
    claim_seconds: float = 0.0
    resolve_seconds: float = 0.0

    @classmethod
    def from_sums(cls, sums: Mapping[str, float]) -> Tally:
        return cls(**{f.name: float(sums.get(f.name, 0)) if f.name.endswith("_seconds")
                      else int(sums.get(f.name, 0)) for f in fields(cls)})

    def __add__(self, other: Tally) -> Tally:
        return Tally(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                        for f in fields(self)})

    @property
    def resolution_rate(self) -> float | None:
        return _share(self.concluded, self.cohort)

    @property
    def response_rate(self) -> float | None:
        return _share(self.responded, self.response_due)

    @property
    def on_time_rate(self) -> float | None:
        return _share(self.on_time, self.timed)

    @property
    def satisfaction_rate(self) -> float | None:
        return _share(self.satisfied, self.answered)

    @property
    def average_claim(self) -> timedelta | None:
        return _average(self.claim_seconds, self.claimed)

    @property
    def average_resolve(self) -> timedelta | None:
        return _average(self.resolve_seconds, self.resolved)

    @property
    def quiet(self) -> bool:
        """Nothing happened and nothing waits: no digest is worth sending."""
        return not (self.new or self.open or self.resolved or self.answered or self.claimed)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _average(seconds: float, count: int) -> timedelta | None:
    return timedelta(seconds=max(seconds, 0.0) / count) if count else None


@dataclass(frozen=True)
class Line:
    """One line of the breakdown: a child node's subtree, or (node None) the tickets the
    reported node holds itself."""

    node: TreeNode | None
    tally: Tally


@dataclass(frozen=True)
class Report:
    node: TreeNode
    period: Period
    now: datetime
    total: Tally
    lines: tuple[Line, ...]


class Tree:
    """The org tree in memory: a few hundred to a few thousand small rows."""

    def __init__(self, nodes: Iterable[TreeNode]) -> None:
        self.nodes = {node.id: node for node in nodes}
        self.children: dict[int | None, list[TreeNode]] = {}
        for node in self.nodes.values():
            self.children.setdefault(node.parent_id, []).append(node)

    def subtree(self, node_id: int) -> list[int]:
        ids, stack = [], [node_id]
        while stack:
            current = stack.pop()
            ids.append(current)
            stack.extend(child.id for child in self.children.get(current, ()))
        return ids


def fold(tree: Tree, sums: NodeSums, node_id: int, period: Period, now: datetime) -> Report:
    """The report of one node from per-node sums that cover at least its subtree."""

    def tally_of(ids: Iterable[int]) -> Tally:
        total = Tally()
        for i in ids:
            if i in sums:
                total = total + Tally.from_sums(sums[i])
        return total

    lines = [Line(child, tally_of(tree.subtree(child.id)))
             for child in tree.children.get(node_id, ())]
    own = tally_of([node_id])
    if lines and not own.quiet:
        lines.append(Line(None, own))
    total = own
    for line in lines:
        if line.node is not None:
            total = total + line.tally
    return Report(tree.nodes[node_id], period, now, total, tuple(lines))


async def load_tree(uow: UnitOfWork) -> Tree:
    return Tree(await StatsRepository(uow.session).tree())


async def node_sums(uow: UnitOfWork, period: Period, now: datetime, *,
                    node_ids: Iterable[int] | None = None, durations: bool = True) -> NodeSums:
    return await StatsRepository(uow.session).sums(
        period.start, period.end, now, None if node_ids is None else list(node_ids),
        durations=durations)


async def subtree_report(uow: UnitOfWork, node_id: int, period: Period,
                         now: datetime) -> Report | None:
    """The report of one node's subtree (for /stats); None if the node is gone."""
    tree = await load_tree(uow)
    node = tree.nodes.get(node_id)
    if node is None:
        return None
    ids = None if node.parent_id is None else tree.subtree(node_id)
    return fold(tree, await node_sums(uow, period, now, node_ids=ids), node_id, period, now)
