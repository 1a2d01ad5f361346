"""Timers for work that has none: tickets from before timers existed (an upgrade), or whose
timers were lost to a bug. Run at start-up (``bot.app``); it arms only what is missing, so
running it again changes nothing. Each batch is a unit of work of its own, committed here.

* an open, claimed or in-progress ticket without a pending claim or deadline timer gets the
  timers of its state (claim timers only while nobody holds it);
* a resolved ticket whose current round was never put to its residents gets its follow-up.
"""

from __future__ import annotations

import logging

from sqlalchemy import exists, select

from bot.runtime import Runtime
from bot.services import surveys, tickets
from storage.models import OPEN_STATUSES, ScheduledTask, Ticket, TicketStatus, TicketSurvey

log = logging.getLogger(__name__)

BATCH = 500


async def arm_missing(rt: Runtime) -> int:
    """Arm the timers of tickets that have none; returns how many tickets got some."""
    timers = tickets.CLAIM_TIMERS + tickets.DEADLINE_TIMERS
    no_timer = ~exists().where(ScheduledTask.ticket_id == Ticket.id,
                               ScheduledTask.status == "pending",
                               ScheduledTask.kind.in_(timers))
    not_asked = ~exists().where(TicketSurvey.ticket_id == Ticket.id,
                                TicketSurvey.round == Ticket.reopen_count)
    armed = 0
    for where, arm in (
            ((Ticket.status.in_(OPEN_STATUSES), no_timer),
             lambda uow, ticket: tickets.arm_timers(uow, rt.clock, rt.config, ticket)),
            ((Ticket.status == TicketStatus.RESOLVED, not_asked),
             lambda uow, ticket: surveys.plan(uow, rt.clock, rt.config, ticket))):
        after = 0
        while True:  # in batches, by id, so a ticket that needs nothing is not seen again
            async with rt.uow() as uow:
                stmt = (select(Ticket).where(*where, Ticket.id > after)
                        .order_by(Ticket.id).limit(BATCH))
                batch = (await uow.session.scalars(stmt)).all()
                for ticket in batch:
                    await arm(uow, ticket)
                await uow.commit()
            armed += len(batch)
            if len(batch) < BATCH:
                break
            after = batch[-1].id
    if armed:
        log.warning("armed the missing timers of %d tickets", armed)
    return armed
