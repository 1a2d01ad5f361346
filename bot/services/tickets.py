"""The ticket life cycle, enforced in one place and logged as events.

Functions change state and append events; they do not commit. The caller adds what must be
told to whom (through the outbox) and commits once, so a state change and its notifications
land together or not at all.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func

from bot.clock import Clock
from bot.config import Category, Config, tier_of
from bot.services import emergency, routing, states
from bot.services.calendar import WorkCalendar
from bot.services.states import Action
from storage.models import (
    OPEN_STATUSES,
    OrgNode,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketResolution,
    TicketStatus,
)
from storage.repositories.tasks import NewTask
from storage.uow import UnitOfWork


class Refusal(enum.Enum):
    NOT_FOUND = "not_found"
    TAKEN = "taken"              # someone else holds it
    NOT_HOLDER = "not_holder"    # only the holder may do this
    WRONG_STATE = "wrong_state"  # e.g. resolving a closed ticket
    TOP_REACHED = "top_reached"  # escalating the district
    SAME_NODE = "same_node"


class TicketRefused(Exception):
    def __init__(self, refusal: Refusal, ticket: Ticket | None = None) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal
        self.ticket = ticket


def check(ticket: Ticket, action: Action) -> TicketStatus:
    """The status ``action`` would give the ticket, or TicketRefused(WRONG_STATE) if the
    transition table does not allow it from the ticket's status."""
    follows = states.TRANSITIONS.get((TicketStatus(ticket.status), action))
    if follows is None:
        raise TicketRefused(Refusal.WRONG_STATE, ticket)
    return follows


async def transition(uow: UnitOfWork, ticket_id: int, action: Action, values: dict, *,
                     among: tuple[str, ...] | None = None) -> bool:
    """Apply ``action`` as one compare-and-set: the ticket changes (to the table's status and
    ``values``) only if its status is still one the table allows ``action`` from, and, with
    ``among``, one of those; False if it no longer is (someone else was quicker)."""
    froms = tuple(status for status in states.sources(action)
                  if among is None or status in among)
    if not froms:
        return False
    follows = states.target(action, froms)
    if follows is not None:
        values = {**values, "status": follows}
    return await uow.tickets.transition(ticket_id, allowed=froms, values=values)


@dataclass(frozen=True)
class NewReport:
    category: Category
    description: str
    reporter_id: int
    language: str
    grid_id: int | None = None
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    anonymous: bool = False
    reporter_name: str | None = None
    reporter_phone: str | None = None
    attachments: Sequence[tuple[str, str]] = field(default_factory=tuple)  # (kind, file_id)
    details: Mapping[str, Any] = field(default_factory=dict)  # consultations, check-ups
    enterprise_id: int | None = None  # the enterprise it is made for


def is_emergency(config: Config, category: Category, text: str) -> bool:
    return category.emergency or words_signal_danger(config, text)


def words_signal_danger(config: Config, text: str) -> bool:
    """Whether the words alone signal danger (before any category is chosen)."""
    return emergency.signals_danger(config.emergency.all_words, config.emergency.all_harmless,
                                    text)


CLAIM_TIMERS = ("claim_remind", "claim_escalate")
DEADLINE_TIMERS = ("deadline_remind", "deadline_overdue", "deadline_escalate")


def sla_level(node: OrgNode) -> str:
    return "desk" if node.level == "desk" else tier_of(node.level)


def _deadline(config: Config, ticket: Ticket, node: OrgNode, now: datetime) -> datetime:
    sla = config.sla(ticket.category, level=sla_level(node))
    if ticket.urgent:
        return now + sla.resolution_urgent_within
    return WorkCalendar.from_config(config).add_working_days(now, sla.resolution_working_days)


def _when(config: Config, ticket: Ticket, moment: datetime) -> datetime:
    """When a timer of this ticket acts: on time for an urgent ticket; otherwise never in
    quiet hours (no reminders and escalations at midnight: nobody is on duty to act on
    them, and an escalation tells the residents too). They run when quiet hours end."""
    return moment if ticket.urgent else config.quiet_hours.next_allowed(moment,
                                                                        config.timezone)


def claim_due(config: Config, ticket: Ticket, node: OrgNode, now: datetime) -> datetime:
    """When a ticket reported (or moved) to ``node`` at ``now`` must be claimed by: the moment
    its claim escalation acts (the category's claim time at the node's level, from the end of
    quiet hours for a ticket that is not urgent). The response rate counts a ticket as taken
    on in time if it was first claimed by the moment it had when it was reported."""
    sla = config.sla(ticket.category, level=sla_level(node))
    return _when(config, ticket, _when(config, ticket, now) + sla.claim_escalate_after)


def _claim_timers(config: Config, ticket: Ticket, node: OrgNode,
                  now: datetime) -> list[NewTask]:
    """An open ticket is reminded in its group, then escalated, unless someone claims it first;
    the figures are the category's at the node's level. At the top of the tree there is no
    escalation timer, only the reminder. Below it the timer is armed even while no group
    above could take the ticket: one may be bound before it fires (a district setting up),
    and a ticket must not stay put for want of a timer; if none can by then, it does
    nothing."""
    sla = config.sla(ticket.category, level=sla_level(node))
    payload = {"node_id": node.id}
    # A ticket that arrives in quiet hours waits for the morning before it counts as waiting.
    start = _when(config, ticket, now)
    timers = [NewTask("claim_remind", _when(config, ticket, start + sla.claim_remind_after),
                      ticket_id=ticket.id, payload=payload)]
    if node.parent_id is not None:
        timers.append(NewTask("claim_escalate", claim_due(config, ticket, node, now),
                              ticket_id=ticket.id, payload=payload))
    return timers


def _deadline_timers(config: Config, ticket: Ticket, node: OrgNode,
                     now: datetime) -> list[NewTask]:
    """Before the deadline the holder (or the group) is reminded, at it the group is told the
    ticket is overdue, and after the grace period it goes up one level (below the top of the
    tree, as for the claim timers). The timers carry the deadline they were set for: a moved
    or reopened ticket has a new one."""
    if ticket.deadline_at is None:
        return []
    sla = config.sla(ticket.category, level=sla_level(node))
    payload = {"node_id": node.id, "deadline": ticket.deadline_at.isoformat()}
    timers = []
    remind_at = _when(config, ticket, ticket.deadline_at - sla.resolution_remind_before)
    if remind_at < ticket.deadline_at and remind_at > now:
        timers.append(NewTask("deadline_remind", remind_at, ticket_id=ticket.id,
                              payload=payload))
    timers.append(NewTask("deadline_overdue", _when(config, ticket, ticket.deadline_at),
                          ticket_id=ticket.id, payload=payload))
    if node.parent_id is not None:  # at the top there is nobody to pass it to
        escalate_at = ticket.deadline_at + sla.resolution_escalate_after_overdue
        timers.append(NewTask("deadline_escalate", _when(config, ticket, escalate_at),
                              ticket_id=ticket.id, payload=payload))
    return timers


async def _arm_claim_timers(uow: UnitOfWork, config: Config, ticket: Ticket, node: OrgNode,
                            now: datetime) -> None:
    await uow.tasks.cancel(CLAIM_TIMERS, ticket_id=ticket.id)
    await uow.tasks.add_all(_claim_timers(config, ticket, node, now), now)


async def _arm_deadline_timers(uow: UnitOfWork, config: Config, ticket: Ticket, node: OrgNode,
                               now: datetime) -> None:
    await uow.tasks.cancel(DEADLINE_TIMERS, ticket_id=ticket.id)
    await uow.tasks.add_all(_deadline_timers(config, ticket, node, now), now)


async def _arm_timers(uow: UnitOfWork, config: Config, ticket: Ticket, node: OrgNode,
                      now: datetime) -> None:
    await _arm_claim_timers(uow, config, ticket, node, now)
    await _arm_deadline_timers(uow, config, ticket, node, now)


async def arm_timers(uow: UnitOfWork, clock: Clock, config: Config, ticket: Ticket) -> None:
    """The timers of the ticket's current state, from now (bot.actions.backfill): deadline
    timers for an open ticket, and claim timers while nobody holds it."""
    node = await uow.nodes.get(ticket.node_id)
    now = clock.now()
    if ticket.status == TicketStatus.OPEN:
        await _arm_claim_timers(uow, config, ticket, node, now)
    await _arm_deadline_timers(uow, config, ticket, node, now)


def _event(ticket: Ticket, kind: str, now: datetime, actor_id: int | None, role: str,
           **data) -> TicketEvent:
    return TicketEvent(ticket_id=ticket.id, at=now, kind=kind, actor_id=actor_id,
                       actor_role=role, data=data)


async def create(uow: UnitOfWork, clock: Clock, config: Config, report: NewReport) -> Ticket:
    now = clock.now()
    local = now.astimezone(config.timezone)
    sequence = await uow.tickets.next_number(local.strftime("%Y%m%d"))
    grid = await uow.nodes.get(report.grid_id) if report.grid_id else None
    node = await routing.target_node(uow, report.category, grid)
    ticket = Ticket(
        number=f"{local:%m%d}-{sequence:04d}", kind=report.category.kind,
        category=report.category.code, status=TicketStatus.OPEN,
        urgent=is_emergency(config, report.category, report.description),
        description=report.description, node_id=node.id, grid_id=report.grid_id,
        address=report.address, latitude=report.latitude, longitude=report.longitude,
        reporter_id=report.reporter_id, anonymous=report.anonymous,
        reporter_name=None if report.anonymous else report.reporter_name,
        reporter_phone=None if report.anonymous else report.reporter_phone,
        language=report.language, details=dict(report.details),
        enterprise_id=report.enterprise_id, created_at=now, updated_at=now)
    ticket.deadline_at = _deadline(config, ticket, node, now)
    ticket.claim_due_at = claim_due(config, ticket, node, now)
    uow.tickets.add(ticket)
    await uow.tickets.flush()
    for kind, file_id in report.attachments:
        uow.tickets.attach(TicketAttachment(ticket_id=ticket.id, kind=kind, file_id=file_id,
                                            added_by_role="resident", added_at=now))
    uow.tickets.log(_event(ticket, "created", now, report.reporter_id, "resident",
                           node=node.code, urgent=ticket.urgent))
    # A new ticket has no timers to cancel: its timers go in with one statement.
    await uow.tasks.add_all([*_claim_timers(config, ticket, node, now),
                             *_deadline_timers(config, ticket, node, now)], now)
    return ticket


async def add_co_reporter(uow: UnitOfWork, clock: Clock, ticket: Ticket, user_id: int) -> None:
    if await uow.tickets.is_reporter(ticket, user_id):
        return
    now = clock.now()
    uow.tickets.add_co_reporter(ticket.id, user_id, now)
    uow.tickets.log(_event(ticket, "co_reporter", now, user_id, "resident"))


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine); plenty for "within 250 m"."""
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


async def nearby_open(uow: UnitOfWork, config: Config, category: str, lat: float,
                      lon: float) -> Ticket | None:
    radius = config.limits.duplicate_radius_m
    if radius <= 0:
        return None
    best: tuple[float, int] | None = None
    for ticket_id, latitude, longitude in await uow.tickets.open_with_location(category):
        d = distance_m(lat, lon, latitude, longitude)
        if d <= radius and (best is None or d < best[0]):
            best = (d, ticket_id)
    return await uow.tickets.get(best[1]) if best else None


async def over_hourly_limit(uow: UnitOfWork, clock: Clock, config: Config,
                            user_id: int) -> bool:
    since = clock.now() - timedelta(hours=1)
    return (await uow.tickets.count_by_reporter_since(user_id, since)
            >= config.limits.tickets_per_hour)


async def _load(uow: UnitOfWork, ticket_id: int) -> Ticket:
    ticket = await uow.tickets.get(ticket_id)
    if ticket is None:
        raise TicketRefused(Refusal.NOT_FOUND)
    return ticket


async def _load_locked(uow: UnitOfWork, ticket_id: int) -> Ticket:
    """The ticket as it is now, its row locked until the transaction ends: what is checked
    about it (above all who holds it) stays true until the change is written, so checking and
    writing together act as one compare-and-set on status and holder. PostgreSQL locks the
    row (SELECT … FOR UPDATE waits for a concurrent change and then sees it); SQLite has one
    writer at a time, and every gridgate transaction takes that lock when it begins."""
    ticket = await uow.tickets.get(ticket_id, for_update=True)
    if ticket is None:
        raise TicketRefused(Refusal.NOT_FOUND)
    # The caller may have loaded the ticket earlier in this transaction: the session then
    # hands back that object as it was, so read the locked row again.
    await uow.tickets.refresh(ticket)
    return ticket


async def claim(uow: UnitOfWork, clock: Clock, ticket_id: int, worker_id: int,
                worker_name: str) -> Ticket:
    now = clock.now()
    won = await transition(uow, ticket_id, Action.CLAIM, {
        "holder_id": worker_id, "holder_name": worker_name,
        "updated_at": now, "claimed_at": func.coalesce(Ticket.claimed_at, now)})
    ticket = await _load(uow, ticket_id)
    await uow.tickets.refresh(ticket)
    if not won:
        refusal = Refusal.TAKEN if ticket.status in OPEN_STATUSES else Refusal.WRONG_STATE
        raise TicketRefused(refusal, ticket)
    uow.tickets.log(_event(ticket, "claimed", now, worker_id, "worker", name=worker_name))
    await uow.tasks.cancel(CLAIM_TIMERS, ticket_id=ticket.id)
    return ticket


async def _holder_step(uow: UnitOfWork, clock: Clock, ticket_id: int, worker_id: int, *,
                       action: Action, values: dict, kind: str, **data) -> Ticket:
    ticket = await _load_locked(uow, ticket_id)
    check(ticket, action)
    if ticket.holder_id != worker_id:
        raise TicketRefused(Refusal.NOT_HOLDER, ticket)
    now = clock.now()
    won = await transition(uow, ticket_id, action, {**values, "updated_at": now})
    await uow.tickets.refresh(ticket)
    if not won:
        raise TicketRefused(Refusal.WRONG_STATE, ticket)
    uow.tickets.log(_event(ticket, kind, now, worker_id, "worker", **data))
    return ticket


async def release(uow: UnitOfWork, clock: Clock, ticket_id: int, worker_id: int, *,
                  config: Config | None = None) -> Ticket:
    """Back to open; with the config, the claim timers start again from now."""
    ticket = await _holder_step(uow, clock, ticket_id, worker_id, action=Action.RELEASE,
                                values={"holder_id": None, "holder_name": None},
                                kind="released")
    if config is not None:
        await _arm_claim_timers(uow, config, ticket, await uow.nodes.get(ticket.node_id),
                                clock.now())
    return ticket


async def start(uow: UnitOfWork, clock: Clock, ticket_id: int, worker_id: int) -> Ticket:
    return await _holder_step(uow, clock, ticket_id, worker_id, action=Action.START,
                              values={}, kind="started")


async def resolve(uow: UnitOfWork, clock: Clock, ticket_id: int, worker_id: int,
                  note: str) -> Ticket:
    """Resolved by its holder; the resident is asked to confirm later (bot.services.surveys)."""
    now = clock.now()
    # A ticket passed up for being overdue stays late, whatever its new level's deadline.
    on_time = case((Ticket.deadline_at.is_(None), None),
                   else_=and_(Ticket.deadline_at >= now, Ticket.missed_deadline.is_(False)))
    ticket = await _holder_step(uow, clock, ticket_id, worker_id,
                                action=Action.RESOLVE,
                                values={"resolution": note,
                                        "resolved_at": now, "on_time": on_time},
                                kind="resolved", note=note)
    # Kept apart from the ticket, which a reopening takes its resolution from: the work was
    # done here, and counts here.
    uow.tickets.record_resolution(TicketResolution(
        ticket_id=ticket.id, node_id=ticket.node_id, resolved_at=now, on_time=ticket.on_time))
    await uow.tasks.cancel(DEADLINE_TIMERS, ticket_id=ticket.id)
    return ticket


async def close(uow: UnitOfWork, clock: Clock, ticket_id: int, reason: str) -> Ticket | None:
    """A resolved ticket closes once its residents are content ("rated") or did not answer in
    time ("unanswered"). None if it is no longer resolved (reopened, closed meanwhile)."""
    now = clock.now()
    won = await transition(uow, ticket_id, Action.CLOSE, {
        "closed_at": now, "close_reason": reason, "updated_at": now})
    if not won:
        return None
    ticket = await _load(uow, ticket_id)
    await uow.tickets.refresh(ticket)
    uow.tickets.log(_event(ticket, "closed", now, None, "system", reason=reason))
    return ticket


async def reopen(uow: UnitOfWork, clock: Clock, config: Config, ticket_id: int, *,
                 actor_id: int, reason: str) -> tuple[Ticket, OrgNode, OrgNode] | None:
    """A resident says a resolved ticket is not solved: it opens again one level higher, as
    an escalation goes (``routing.escalation_target``; at the top it stays where it is), with
    a fresh deadline and its timers. None if it is no longer resolved."""
    ticket = await _load_locked(uow, ticket_id)
    if not states.allows(ticket.status, Action.REOPEN):
        return None
    source = await uow.nodes.get(ticket.node_id)
    target = await routing.escalation_target(uow, source) or source
    now = clock.now()
    won = await transition(uow, ticket.id, Action.REOPEN, {
        "node_id": target.id, "holder_id": None, "holder_name": None,
        "resolved_at": None, "on_time": None, "reopen_count": Ticket.reopen_count + 1,
        "updated_at": now, "deadline_at": _deadline(config, ticket, target, now)})
    await uow.tickets.refresh(ticket)
    if not won:
        return None
    uow.tickets.log(_event(ticket, "reopened", now, actor_id, "resident",
                           from_node=source.code, to_node=target.code, reason=reason))
    await _arm_timers(uow, config, ticket, target, now)
    return ticket, source, target


def resolve_refusal(ticket: Ticket, worker_id: int) -> Refusal | None:
    """Why ``worker_id`` may not resolve the ticket now, or None if they may: lets a handler
    refuse at once instead of first asking for a resolution note (``resolve`` checks again)."""
    if not states.allows(ticket.status, Action.RESOLVE):
        return Refusal.WRONG_STATE
    if ticket.holder_id != worker_id:
        return Refusal.NOT_HOLDER
    return None


# Statuses in which someone holds the ticket: only they may send it elsewhere.
HELD_STATUSES = (TicketStatus.CLAIMED, TicketStatus.IN_PROGRESS)


def move_refusal(ticket: Ticket, actor_id: int | None, *, system: bool = False) -> Refusal | None:
    """Why ``actor_id`` may not transfer or escalate the ticket now, or None if they may: an
    open ticket may be moved by any member of its group, a held one only by its holder (a
    system move, such as an SLA escalation, by nobody's leave). ``move`` checks again."""
    if not states.allows(ticket.status, Action.MOVE):
        return Refusal.WRONG_STATE
    if not system and ticket.status in HELD_STATUSES and ticket.holder_id != actor_id:
        return Refusal.NOT_HOLDER
    return None


async def move(uow: UnitOfWork, clock: Clock, config: Config, ticket_id: int, *,
               to_node_id: int | None, actor_id: int | None, role: str, reason: str,
               kind: str, system: bool = False) -> tuple[Ticket, OrgNode, OrgNode]:
    """Transfer (to a chosen node) or escalate (to_node_id None: up, to the nearest node above
    the group that handles it now that has a group of its own: ``routing.escalation_target``).
    The ticket opens afresh at its new node, unclaimed; the old group's card stops offering
    actions.

    A claimed or in-progress ticket is moved only by its holder (Refusal.NOT_HOLDER), unless
    ``system`` is set: moves the system makes on its own (``role="system"``, e.g. an SLA
    escalation) take the ticket from whoever holds it."""
    if system and role != "system":
        raise ValueError("only the system moves a ticket without its holder's leave")
    ticket = await _load_locked(uow, ticket_id)
    refusal = move_refusal(ticket, actor_id, system=system)
    if refusal is not None:
        raise TicketRefused(refusal, ticket)
    source = await uow.nodes.get(ticket.node_id)
    if to_node_id is None:
        target = await routing.escalation_target(uow, source)
        if target is None:
            raise TicketRefused(Refusal.TOP_REACHED, ticket)
    else:
        target = await uow.nodes.get(to_node_id)
        if target is None:
            raise TicketRefused(Refusal.NOT_FOUND, ticket)
        if target.id == source.id:
            raise TicketRefused(Refusal.SAME_NODE, ticket)
    now = clock.now()
    # The row is locked since _load_locked: status and holder are still what was checked.
    won = await transition(uow, ticket.id, Action.MOVE, {
        "node_id": target.id, "holder_id": None, "holder_name": None,
        "updated_at": now, "deadline_at": _deadline(config, ticket, target, now)},
        among=(ticket.status,))
    await uow.tickets.refresh(ticket)
    if not won:
        raise TicketRefused(Refusal.WRONG_STATE, ticket)
    uow.tickets.log(_event(ticket, kind, now, actor_id, role, from_node=source.code,
                           to_node=target.code, reason=reason))
    await _arm_timers(uow, config, ticket, target, now)
    return ticket, source, target


async def unclaim_for_new_group(uow: UnitOfWork, clock: Clock, config: Config,
                                ticket: Ticket) -> str | None:
    """The ticket goes to another group while keeping its node (the one that handled it can
    no longer be reached): whoever held it is a member of the old group, not of the new one,
    where nobody could act on it in their name. So it arrives there open, to be claimed, with
    its claim timers running from now. Returns the former holder's name (None if nobody
    held it)."""
    if not states.allows(ticket.status, Action.HAND_OVER):
        return None
    holder = ticket.holder_name or "?"
    now = clock.now()
    won = await transition(uow, ticket.id, Action.HAND_OVER, {
        "holder_id": None, "holder_name": None, "updated_at": now})
    await uow.tickets.refresh(ticket)
    if not won:
        return None
    await _arm_claim_timers(uow, config, ticket, await uow.nodes.get(ticket.node_id), now)
    return holder


async def withdraw(uow: UnitOfWork, clock: Clock, ticket_id: int, resident_id: int,
                   reason: str) -> Ticket:
    ticket = await _load(uow, ticket_id)
    if ticket.reporter_id != resident_id:
        raise TicketRefused(Refusal.NOT_HOLDER, ticket)
    now = clock.now()
    won = await transition(uow, ticket.id, Action.WITHDRAW, {
        "closed_at": now, "close_reason": "withdrawn",
        "updated_at": now})
    await uow.tickets.refresh(ticket)
    if not won:
        raise TicketRefused(Refusal.WRONG_STATE, ticket)
    uow.tickets.log(_event(ticket, "withdrawn", now, resident_id, "resident", reason=reason))
    await uow.tasks.cancel(CLAIM_TIMERS + DEADLINE_TIMERS, ticket_id=ticket.id)
    return ticket


async def note_message(uow: UnitOfWork, clock: Clock, ticket: Ticket, *, actor_id: int,
                       role: str, kind: str, text: str | None = None,
                       file: tuple[str, str] | None = None, name: str | None = None) -> None:
    """A relayed message or added information, kept in the log (and attachments); ``name``
    is a worker's, as the history shows them."""
    now = clock.now()
    if file is not None:
        uow.tickets.attach(TicketAttachment(ticket_id=ticket.id, kind=file[0], file_id=file[1],
                                            added_by_role=role, added_at=now))
    extra = {"name": name} if name else {}
    uow.tickets.log(_event(ticket, kind, now, actor_id, role, text=text or "",
                           file=file[0] if file else None, **extra))
