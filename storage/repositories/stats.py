"""Counts behind digests and /stats, aggregated in SQL per node.

Every query groups by the node that handles the ticket now (``ticket.node_id``) and returns one
row per node at most, so the cost does not grow with the number of tickets handed back: a
district's hundreds of thousands of tickets stay in the database. The service folds the
per-node rows into subtrees (``bot.services.stats``).

Durations are summed in SQL too. Date arithmetic is the one thing that differs between the
backends: PostgreSQL subtracts timestamps and extracts the epoch; SQLite stores UTC text that
``julianday`` reads.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage.models import OPEN_STATUSES, OrgNode, Ticket, TicketResolution, TicketSurvey

# Tickets that ended because the resident took them back are no work done or left undone.
_WITHDRAWN = "withdrawn"
# A resolved ticket, or one closed after its resolution (rated, or the survey went unanswered).
_CONCLUDED = ("resolved", "closed")
# 满意: 基本满意 (3), 满意 (4) and 非常满意 (5) on the 1–5 scale of the follow-up.
SATISFIED_MIN_SCORE = 3


@dataclass(frozen=True)
class TreeNode:
    """A node of the org tree without its boundary (which digests never need)."""

    id: int
    parent_id: int | None
    code: str
    level: str
    name: str
    name_zh_hant: str | None
    name_en: str | None

    def display_name(self, language: str) -> str:
        if language == "zh_Hant" and self.name_zh_hant:
            return self.name_zh_hant
        if language == "en" and self.name_en:
            return self.name_en
        return self.name


# Per node: field name -> value. Field names are those of bot.services.stats.Tally.
NodeSums = dict[int, dict[str, float]]


# What is summed over the tickets created in a period (after their count, "new").
CREATED_SUMS = ("cohort", "concluded", "response_due", "responded")


def not_withdrawn() -> ColumnElement:
    return and_(Ticket.status != _WITHDRAWN,
                or_(Ticket.close_reason.is_(None), Ticket.close_reason != _WITHDRAWN))


def created_sums(in_time: ColumnElement, now: datetime) -> list[ColumnElement]:
    """The sums of CREATED_SUMS over tickets created in a period, as seen at ``now``;
    ``in_time`` says a ticket's resolution came before the period's end (the console's trend
    compares local days instead).

    * cohort: not withdrawn by the resident; concluded: of those, resolved (or closed after
      resolution) before the end;
    * response_due: of the cohort, those that had a moment to be claimed by (tickets
      reported before it was kept have none) and either were claimed or saw that moment
      pass by ``now`` (one still waiting within its time is not counted yet);
      responded: of those, first claimed by that moment.
    """
    kept = not_withdrawn()
    concluded = and_(kept, Ticket.status.in_(_CONCLUDED),
                     Ticket.resolved_at.is_not(None), in_time)
    due = and_(kept, Ticket.claim_due_at.is_not(None),
               or_(Ticket.claimed_at.is_not(None), Ticket.claim_due_at <= now))
    responded = and_(due, Ticket.claimed_at <= Ticket.claim_due_at)
    return [func.sum(case((kept, 1), else_=0)), func.sum(case((concluded, 1), else_=0)),
            func.sum(case((due, 1), else_=0)), func.sum(case((responded, 1), else_=0))]


class StatsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def tree(self) -> list[TreeNode]:
        stmt = select(OrgNode.id, OrgNode.parent_id, OrgNode.code, OrgNode.level, OrgNode.name,
                      OrgNode.name_zh_hant, OrgNode.name_en).order_by(OrgNode.code)
        return [TreeNode(*row) for row in (await self._s.execute(stmt)).all()]

    def _seconds(self, later, earlier) -> ColumnElement:
        if self._s.get_bind().dialect.name == "postgresql":
            return func.extract("epoch", later - earlier)
        # julianday is a float of days: rounded to the millisecond, whole seconds stay whole.
        return func.round((func.julianday(later) - func.julianday(earlier)) * 86400.0, 3)

    async def sums(self, start: datetime, end: datetime, now: datetime,
                   node_ids: Collection[int] | None = None, *,
                   durations: bool = True) -> NodeSums:
        """Everything a report counts, per node, for the period [start, end) and, for what is
        open, at ``now``. ``node_ids`` limits the nodes (None: all of them). Without
        ``durations`` the time to resolve is not summed (it needs each resolved ticket's
        creation: a join the console, which shows no averages, spares itself)."""
        out: NodeSums = {}
        if node_ids is None and self._s.get_bind().dialect.name == "sqlite":
            # SQLite answers a period's counts from the (node_id, created_at, …) index alone
            # when every node is named, where a scan by created_at looks each ticket up (a
            # district's month at a million tickets: about 200 ms against 310–360 ms).
            # PostgreSQL is the other way round (430 ms against 210 ms).
            node_ids = list((await self._s.scalars(select(OrgNode.id))).all())
        for part in (self._created(start, end, now), self._resolved(start, end, durations),
                     self._claimed(start, end), self._open(now), self._surveys(start, end)):
            stmt, names, *where = part
            node = where[0] if where else Ticket.node_id  # the column that places a row
            if node_ids is not None:
                stmt = stmt.where(node.in_(list(node_ids)))
            for node_id, *values in (await self._s.execute(stmt)).all():
                row = out.setdefault(node_id, {})
                for name, value in zip(names, values, strict=True):
                    row[name] = float(value or 0)
        return out

    @staticmethod
    def _created(start: datetime, end: datetime, now: datetime):
        stmt = (select(Ticket.node_id, func.count(),
                       *created_sums(Ticket.resolved_at < end, now))
                .where(Ticket.created_at >= start, Ticket.created_at < end)
                .group_by(Ticket.node_id))
        return stmt, ("new", *CREATED_SUMS)

    def _resolved(self, start: datetime, end: datetime, durations: bool = True):
        # Every resolution made in the period, at the node that made it: one the resident
        # sent back up still counts where it was made (and the next one where that was).
        done = TicketResolution
        counts = (func.count(), func.count(done.on_time),
                  func.sum(case((done.on_time.is_(True), 1), else_=0)))
        names = ("resolved", "timed", "on_time")
        if durations:
            stmt = (select(done.node_id, *counts,
                           func.sum(self._seconds(done.resolved_at, Ticket.created_at)))
                    .join(Ticket, Ticket.id == done.ticket_id))
            names = (*names, "resolve_seconds")
        else:
            stmt = select(done.node_id, *counts)
        stmt = (stmt.where(done.resolved_at >= start, done.resolved_at < end)
                .group_by(done.node_id))
        return stmt, names, done.node_id

    def _claimed(self, start: datetime, end: datetime):
        stmt = (select(Ticket.node_id, func.count(),
                       func.sum(self._seconds(Ticket.claimed_at, Ticket.created_at)))
                .where(Ticket.claimed_at >= start, Ticket.claimed_at < end)
                .group_by(Ticket.node_id))
        return stmt, ("claimed", "claim_seconds")

    @staticmethod
    def _open(now: datetime):
        overdue = and_(Ticket.deadline_at.is_not(None), Ticket.deadline_at < now)
        # Grouped by node_id + 0, not node_id: with statistics (ANALYZE) SQLite takes the
        # statuses for evenly spread and would read every ticket in node order to group them
        # (seconds at a million tickets) instead of the few open ones by the status index.
        node = (Ticket.node_id + 0).label("node_id")
        stmt = (select(node, func.count(), func.sum(case((overdue, 1), else_=0)))
                .where(Ticket.status.in_(OPEN_STATUSES)).group_by(node))
        return stmt, ("open", "overdue")

    @staticmethod
    def _surveys(start: datetime, end: datetime):
        # Solved and at least 基本满意: "not solved" is never a satisfied answer, and is an
        # answer with or without the score that may follow it. Counted at
        # the node that resolved the ticket (a poor answer moves the ticket up, and must not
        # leave with it).
        satisfied = and_(TicketSurvey.solved.is_(True),
                         TicketSurvey.score >= SATISFIED_MIN_SCORE)
        node = func.coalesce(TicketSurvey.node_id, Ticket.node_id)
        stmt = (select(node, func.count(), func.sum(case((satisfied, 1), else_=0)))
                .join(Ticket, Ticket.id == TicketSurvey.ticket_id)
                .where(TicketSurvey.status == "answered",
                       TicketSurvey.answered_at >= start, TicketSurvey.answered_at < end)
                .group_by(node))
        return stmt, ("answered", "satisfied"), node
