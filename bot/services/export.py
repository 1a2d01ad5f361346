"""Ticket exports for the district's statistics: `gridgate export tickets`.

One row per ticket created in a range of local days, with what statistics need and nothing
that names a person: no Telegram id, name or phone, and no exact place. The residents' free
text (description and address) and the resolution note, which may name people too, come
only with ``with_text``, which the command records in the admin action log.

CSV is written for Excel: UTF-8 with a byte order mark (without it Excel reads Chinese as
mojibake), CRLF line ends, and every text cell that a spreadsheet would take for a formula
(=, +, -, @, tab, carriage return first) is prefixed with an apostrophe (OWASP's advice on
CSV injection). JSON Lines carries the same fields with their JSON types.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, BinaryIO

from sqlalchemy import func, select

from bot.config import Config
from storage.models import OrgNode, Ticket, TicketSurvey
from storage.uow import UnitOfWork

FORMATS = ("csv", "jsonl")
FIELDS = ("number", "kind", "category", "status", "urgent", "node_code", "node_level",
          "grid_code", "created_at", "claimed_at", "resolved_at", "closed_at", "deadline_at",
          "on_time", "missed_deadline", "reopen_count", "close_reason", "survey_scores",
          "survey_mean", "personal_data_erased")
TEXT_FIELDS = ("description", "address", "resolution")
PAGE = 500

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportError(ValueError):
    """Bad input, in words for the operator."""


@dataclass(frozen=True)
class Range:
    first: date
    last: date  # inclusive

    def bounds(self, config: Config) -> tuple[datetime, datetime]:
        """[start, end) in UTC-aware datetimes: local midnight of first, of the day after last."""
        tz = config.timezone
        return (datetime.combine(self.first, time.min, tzinfo=tz),
                datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=tz))


def parse_day(text: str, option: str) -> date:
    if not _DATE.fullmatch(text.strip()):
        raise ExportError(f"{option}: {text!r} is not a date (use YYYY-MM-DD)")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ExportError(f"{option}: {text!r} is not a date (use YYYY-MM-DD)") from None


def parse_range(first: str, last: str) -> Range:
    start, end = parse_day(first, "--from"), parse_day(last, "--to")
    if start > end:
        raise ExportError(f"--from {start} is after --to {end}")
    return Range(start, end)


async def count(uow: UnitOfWork, config: Config, span: Range) -> int:
    start, end = span.bounds(config)
    return await uow.session.scalar(select(func.count()).select_from(Ticket).where(
        Ticket.created_at >= start, Ticket.created_at < end)) or 0


async def rows(uow: UnitOfWork, config: Config, span: Range, *,
               with_text: bool = False) -> AsyncIterator[dict[str, Any]]:
    """The tickets created in the range, oldest first, page by page."""
    start, end = span.bounds(config)
    nodes = {node.id: node for node in await uow.nodes.all()}
    last_id = 0
    while True:
        stmt = (select(Ticket).where(Ticket.created_at >= start, Ticket.created_at < end,
                                     Ticket.id > last_id)
                .order_by(Ticket.id).limit(PAGE))
        page = list((await uow.session.scalars(stmt)).all())
        if not page:
            return
        scores = await _scores([t.id for t in page], uow)
        for ticket in page:
            yield _row(config, ticket, nodes, scores.get(ticket.id, []), with_text)
        last_id = page[-1].id
        uow.session.expunge_all()  # a large export must not hold every row in memory


async def _scores(ticket_ids: list[int], uow: UnitOfWork) -> dict[int, list[int]]:
    stmt = (select(TicketSurvey.ticket_id, TicketSurvey.score)
            .where(TicketSurvey.ticket_id.in_(ticket_ids), TicketSurvey.status == "answered",
                   TicketSurvey.score.is_not(None))
            .order_by(TicketSurvey.ticket_id, TicketSurvey.round, TicketSurvey.answered_at,
                      TicketSurvey.id))
    found: dict[int, list[int]] = {}
    for ticket_id, score in (await uow.session.execute(stmt)).all():
        found.setdefault(ticket_id, []).append(score)
    return found


def _row(config: Config, ticket: Ticket, nodes: dict[int, OrgNode], scores: list[int],
         with_text: bool) -> dict[str, Any]:
    def local(moment: datetime | None) -> str | None:
        return None if moment is None else moment.astimezone(config.timezone).isoformat()

    node = nodes.get(ticket.node_id)
    grid = nodes.get(ticket.grid_id) if ticket.grid_id else None
    row = {
        "number": ticket.number, "kind": ticket.kind, "category": ticket.category,
        "status": ticket.status, "urgent": ticket.urgent,
        "node_code": node.code if node else None, "node_level": node.level if node else None,
        "grid_code": grid.code if grid else None, "created_at": local(ticket.created_at),
        "claimed_at": local(ticket.claimed_at), "resolved_at": local(ticket.resolved_at),
        "closed_at": local(ticket.closed_at), "deadline_at": local(ticket.deadline_at),
        "on_time": ticket.on_time, "missed_deadline": ticket.missed_deadline,
        "reopen_count": ticket.reopen_count, "close_reason": ticket.close_reason,
        "survey_scores": scores,
        "survey_mean": round(sum(scores) / len(scores), 2) if scores else None,
        "personal_data_erased": ticket.erased_at is not None,
    }
    if with_text:
        row.update(description=ticket.description or None, address=ticket.address,
                   resolution=ticket.resolution)
    return row


def safe_cell(value: Any) -> str:
    """One CSV cell: booleans as true/false, lists joined with ";", nothing as empty, and
    text that a spreadsheet would run as a formula defused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(item) for item in value)
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def fields(with_text: bool) -> tuple[str, ...]:
    return FIELDS + TEXT_FIELDS if with_text else FIELDS


class Writer:
    """Writes rows to a binary stream in one of FORMATS."""

    def __init__(self, stream: BinaryIO, fmt: str, *, with_text: bool = False) -> None:
        if fmt not in FORMATS:
            raise ExportError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
        self._stream, self._fmt = stream, fmt
        self._fields = fields(with_text)
        self.count = 0
        if fmt == "csv":
            self._buffer = io.StringIO()
            self._csv = csv.writer(self._buffer, lineterminator="\r\n")
            self._stream.write("\ufeff".encode())  # the BOM Excel needs to read UTF-8
            self._emit([self._fields])

    def _emit(self, lines: Iterable[list[str]] | Iterable[tuple[str, ...]]) -> None:
        self._csv.writerows(lines)
        self._stream.write(self._buffer.getvalue().encode("utf-8"))
        self._buffer.seek(0)
        self._buffer.truncate()

    def write(self, row: dict[str, Any]) -> None:
        self.count += 1
        if self._fmt == "csv":
            self._emit([[safe_cell(row.get(name)) for name in self._fields]])
        else:
            line = json.dumps({name: row.get(name) for name in self._fields},
                              ensure_ascii=False)
            self._stream.write(line.encode("utf-8") + b"\n")
