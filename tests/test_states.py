"""The ticket state machine is one table, and every status change goes through it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.clock import FakeClock
from bot.services import states, tickets
from bot.services.states import TRANSITIONS, Action
from bot.services.tickets import NewReport, Refusal, TicketRefused
from bot.startup import prepare
from storage.db import Database
from storage.models import OPEN_STATUSES, TICKET_STATUSES, Ticket, TicketStatus
from storage.uow import UnitOfWork
from tests.harness import make_config

ROOT = Path(__file__).resolve().parent.parent
EVERY_MOVE = [(status, action) for status in TicketStatus for action in Action]


def test_the_table_as_the_life_cycle_reads() -> None:
    o, c, p = TicketStatus.OPEN, TicketStatus.CLAIMED, TicketStatus.IN_PROGRESS
    r, x, w = TicketStatus.RESOLVED, TicketStatus.CLOSED, TicketStatus.WITHDRAWN
    assert TRANSITIONS == {
        (o, Action.CLAIM): c, (c, Action.RELEASE): o, (c, Action.START): p,
        (c, Action.RESOLVE): r, (p, Action.RESOLVE): r, (r, Action.CLOSE): x,
        (r, Action.REOPEN): o,
        (o, Action.WITHDRAW): w, (c, Action.WITHDRAW): w, (p, Action.WITHDRAW): w,
        (o, Action.MOVE): o, (c, Action.MOVE): o, (p, Action.MOVE): o,
        (c, Action.HAND_OVER): o, (p, Action.HAND_OVER): o,
        (c, Action.TAKE_OVER): c, (p, Action.TAKE_OVER): p,
        (o, Action.NO_SHOW): x, (c, Action.NO_SHOW): x, (p, Action.NO_SHOW): x,
    }
    # Nothing leaves a closed or withdrawn ticket; only what is open can be withdrawn.
    assert not any(status in (x, w) for status, _ in TRANSITIONS)
    assert states.sources(Action.WITHDRAW) == OPEN_STATUSES
    assert TICKET_STATUSES == tuple(TicketStatus)
    # Stored as plain text and compared with it, as rows read back are.
    assert TicketStatus.IN_PROGRESS == "in_progress" and f"{TicketStatus.OPEN}" == "open"


@pytest.mark.parametrize(("status", "action"), EVERY_MOVE)
def test_check_allows_exactly_the_table(status: TicketStatus, action: Action) -> None:
    ticket = Ticket(status=str(status))
    if (status, action) in TRANSITIONS:
        assert tickets.check(ticket, action) == TRANSITIONS[(status, action)]
        assert states.allows(status, action)
    else:
        with pytest.raises(TicketRefused) as refused:
            tickets.check(ticket, action)
        assert refused.value.refusal is Refusal.WRONG_STATE and refused.value.ticket is ticket
        assert not states.allows(status, action)


async def test_the_database_walks_the_whole_table(db: Database) -> None:
    """Every status × action through the compare-and-set the services use: an allowed move
    lands on the table's status, any other leaves the ticket as it was."""
    config = make_config()
    clock = FakeClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    await prepare(db, config, clock)
    async with UnitOfWork(db) as uow:
        node = await uow.nodes.by_code("SFQ-DH-01-G1")
        ticket = await tickets.create(uow, clock, config, NewReport(
            category=config.category("sanitation"), description="楼道里堆满了垃圾",
            reporter_id=501, language="zh_Hans", grid_id=node.id))
        await uow.commit()
        ticket_id = ticket.id
    for status, action in EVERY_MOVE:
        async with UnitOfWork(db) as uow:
            await uow.session.execute(update(Ticket).where(Ticket.id == ticket_id)
                                      .values(status=status))
            won = await tickets.transition(uow, ticket_id, action, {"holder_name": "甲"})
            ticket = await uow.tickets.get(ticket_id)
            await uow.tickets.refresh(ticket)
            allowed = (status, action) in TRANSITIONS
            assert won is allowed, (status, action)
            assert ticket.status == (TRANSITIONS[(status, action)] if allowed else status)
            assert (ticket.holder_name == "甲") is allowed
            await uow.session.execute(update(Ticket).where(Ticket.id == ticket_id)
                                      .values(holder_name=None))
            await uow.commit()


def test_every_status_change_goes_through_the_table() -> None:
    """No path writes a ticket's status around ``tickets.transition``: the compare-and-set of
    the repository is called there alone, and no code sets a status by hand."""
    direct = re.compile(r"uow\.tickets\.transition\(|\bticket\.status\s*=[^=]")
    offenders = [f"{path.relative_to(ROOT)}:{n}"
                 for folder in ("bot", "handlers", "scheduler")
                 for path in (ROOT / folder).rglob("*.py")
                 for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
                 if direct.search(line)]
    assert offenders == ["bot/services/tickets.py:" + str(_line_of_the_one_call())]


def _line_of_the_one_call() -> int:
    lines = (ROOT / "bot/services/tickets.py").read_text("utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if "uow.tickets.transition(" in line)
