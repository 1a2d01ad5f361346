"""Tickets, their event log, co-reporters, attachments and the messages that belong to them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from storage.models import (
    OPEN_STATUSES,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketMessage,
    TicketReporter,
    TicketResolution,
    TicketSequence,
)

# A second copy of a ticket's card in its group (ticket_message.purpose): a send that timed
# out after reaching Telegram, sent again. Learnt when someone presses one of its buttons, and
# kept up to date with the card from then on.
CARD_COPY = "card_copy"


# Read for every new report (its default place); built once, as the statement's expression
# cost about as much to build as to run.
# Each message a ticket's card, number or relay leaves in a chat is remembered: one
# statement, not a look for it first.
_REMEMBER = {name: insert(TicketMessage.__table__).on_conflict_do_nothing(
    index_elements=["chat_id", "message_id"])
    for name, insert in (("postgresql", postgresql_insert), ("sqlite", sqlite_insert))}
_CO_REPORTED = select(TicketReporter.ticket_id).where(
    TicketReporter.user_id == bindparam("user_id"))
_RECENT_GRIDS = (select(Ticket.grid_id)
                 .where(or_(Ticket.reporter_id == bindparam("user_id"),
                            Ticket.id.in_(_CO_REPORTED)))
                 .order_by(Ticket.id.desc()).limit(bindparam("limit")))


class TicketRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, ticket_id: int, *, for_update: bool = False) -> Ticket | None:
        stmt = select(Ticket).where(Ticket.id == ticket_id)
        if for_update:
            stmt = stmt.with_for_update()
        return await self._s.scalar(stmt)

    async def get_locked(self, ticket_id: int | None) -> Ticket | None:
        """The ticket as committed now, its row locked until the transaction ends (PostgreSQL;
        SQLite has one writer at a time): for timers, which must decide on what is true
        after any update that held the ticket has committed."""
        if ticket_id is None:
            return None
        stmt = (select(Ticket).where(Ticket.id == ticket_id).with_for_update()
                .execution_options(populate_existing=True))
        return await self._s.scalar(stmt)

    async def by_number(self, number: str) -> Ticket | None:
        return await self._s.scalar(select(Ticket).where(Ticket.number == number))

    def add(self, ticket: Ticket) -> None:
        self._s.add(ticket)

    async def flush(self) -> None:
        await self._s.flush()

    async def next_number(self, day: str) -> int:
        """The next number of the day: one upsert, so two transactions never get the same
        value and the first ticket of a day needs no separate insert that could race."""
        dialect = self._s.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(TicketSequence).values(day=day, last=1)
        stmt = stmt.on_conflict_do_update(index_elements=[TicketSequence.day],
                                          set_={"last": TicketSequence.last + 1})
        return (await self._s.execute(stmt.returning(TicketSequence.last))).scalar_one()

    async def transition(self, ticket_id: int, *, allowed: Sequence[str],
                         values: dict) -> bool:
        """Compare-and-set: change the ticket only if it is still in an allowed state, so two
        workers pressing Claim at once cannot both win."""
        result = await self._s.execute(
            update(Ticket).where(Ticket.id == ticket_id, Ticket.status.in_(allowed))
            .values(**values).execution_options(synchronize_session=False))
        return result.rowcount == 1

    async def refresh(self, ticket: Ticket) -> None:
        await self._s.refresh(ticket)

    async def count_by_status(self) -> dict[str, int]:
        """How many tickets are in each state (for /metrics)."""
        rows = await self._s.execute(select(Ticket.status, func.count()).group_by(Ticket.status))
        return {status: count for status, count in rows.all()}

    async def count_by_reporter_since(self, user_id: int, since: datetime) -> int:
        stmt = select(func.count()).select_from(Ticket).where(
            Ticket.reporter_id == user_id, Ticket.created_at >= since)
        return await self._s.scalar(stmt) or 0

    async def open_with_location(self, category: str) -> Sequence[tuple[int, float, float]]:
        """(id, latitude, longitude) of the open tickets of a category that have a place: the
        positions only, not a whole ticket each (every submit reads them all)."""
        stmt = select(Ticket.id, Ticket.latitude, Ticket.longitude).where(
            Ticket.category == category, Ticket.status.in_(OPEN_STATUSES),
            Ticket.latitude.is_not(None))
        return [tuple(row) for row in (await self._s.execute(stmt)).all()]

    async def open_at_node(self, node_id: int) -> Sequence[Ticket]:
        stmt = select(Ticket).where(Ticket.node_id == node_id,
                                    Ticket.status.in_(OPEN_STATUSES)).order_by(Ticket.id)
        return (await self._s.scalars(stmt)).all()

    async def open_in_group(self, chat_id: int) -> Sequence[Ticket]:
        stmt = select(Ticket).where(Ticket.group_chat_id == chat_id,
                                    Ticket.status.in_(OPEN_STATUSES)).order_by(Ticket.id)
        return (await self._s.scalars(stmt)).all()

    async def of_resident(self, user_id: int, *, offset: int, limit: int) -> Sequence[Ticket]:
        co = select(TicketReporter.ticket_id).where(TicketReporter.user_id == user_id)
        stmt = (select(Ticket).where(or_(Ticket.reporter_id == user_id, Ticket.id.in_(co)))
                .order_by(Ticket.id.desc()).offset(offset).limit(limit))
        return (await self._s.scalars(stmt)).all()

    async def recent_grids_of_resident(self, user_id: int, *, limit: int) -> list[int | None]:
        """The grids of the person's ``limit`` newest tickets, newest first (None for a ticket
        without one): read as plain values, for a new report's default place."""
        return list((await self._s.scalars(_RECENT_GRIDS, {"user_id": user_id,
                                                            "limit": limit})).all())

    async def count_of_resident(self, user_id: int) -> int:
        co = select(TicketReporter.ticket_id).where(TicketReporter.user_id == user_id)
        stmt = select(func.count()).select_from(Ticket).where(
            or_(Ticket.reporter_id == user_id, Ticket.id.in_(co)))
        return await self._s.scalar(stmt) or 0

    async def is_reporter(self, ticket: Ticket, user_id: int) -> bool:
        if ticket.reporter_id == user_id:
            return True
        return await self._s.get(TicketReporter, (ticket.id, user_id)) is not None

    async def residents(self, ticket: Ticket) -> list[int]:
        """Everyone to keep informed: the reporter first, then co-reporters. A reporter whose
        data was erased is nobody to inform."""
        stmt = select(TicketReporter.user_id).where(TicketReporter.ticket_id == ticket.id)
        reporter = [] if ticket.reporter_id is None else [ticket.reporter_id]
        return [*reporter, *[u for u in (await self._s.scalars(stmt)).all()
                             if u != ticket.reporter_id]]

    def add_co_reporter(self, ticket_id: int, user_id: int, at: datetime) -> None:
        self._s.add(TicketReporter(ticket_id=ticket_id, user_id=user_id, added_at=at))

    def log(self, event: TicketEvent) -> None:
        self._s.add(event)

    async def events(self, ticket_id: int) -> Sequence[TicketEvent]:
        stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(
            TicketEvent.id)
        return (await self._s.scalars(stmt)).all()

    def record_resolution(self, resolution: TicketResolution) -> None:
        self._s.add(resolution)

    def attach(self, attachment: TicketAttachment) -> None:
        self._s.add(attachment)

    async def attachments(self, ticket_id: int) -> Sequence[TicketAttachment]:
        stmt = select(TicketAttachment).where(TicketAttachment.ticket_id == ticket_id).order_by(
            TicketAttachment.id)
        return (await self._s.scalars(stmt)).all()

    async def remember_message(self, chat_id: int, message_id: int, ticket_id: int,
                               purpose: str = "relay") -> None:
        """A message known already keeps what it was first remembered as."""
        if self._s.sync_session.identity_map.get(
                identity_key(TicketMessage, (chat_id, message_id))) is not None:
            return
        dialect = self._s.get_bind().dialect.name
        await self._s.execute(_REMEMBER["postgresql" if dialect == "postgresql" else "sqlite"],
                              {"chat_id": chat_id, "message_id": message_id,
                               "ticket_id": ticket_id, "purpose": purpose})

    async def message(self, chat_id: int, message_id: int) -> TicketMessage | None:
        return await self._s.get(TicketMessage, (chat_id, message_id))

    async def card_copies(self, ticket_id: int, chat_id: int) -> Sequence[TicketMessage]:
        """The copies of the ticket's card known in a chat (CARD_COPY), oldest first."""
        stmt = select(TicketMessage).where(
            TicketMessage.ticket_id == ticket_id, TicketMessage.chat_id == chat_id,
            TicketMessage.purpose == CARD_COPY).order_by(TicketMessage.message_id)
        return (await self._s.scalars(stmt)).all()

    async def move_group(self, old_chat_id: int, new_chat_id: int,
                         now: datetime) -> list[Ticket]:
        """A group migrated: its open tickets are handled under the new id from now on.
        Returns them, locked (so of two transactions learning the news at once only the first
        finds them), with the card and topic ids of the old chat still set: the caller decides
        what becomes of those. Tickets that are over stay with the old chat, where the ids
        they keep are valid."""
        stmt = (select(Ticket).where(Ticket.group_chat_id == old_chat_id,
                                     Ticket.status.in_(OPEN_STATUSES))
                .order_by(Ticket.id).with_for_update())
        moved = list((await self._s.scalars(stmt)).all())
        for ticket in moved:
            ticket.group_chat_id, ticket.updated_at = new_chat_id, now
        return moved

    async def by_topic(self, chat_id: int, topic_id: int) -> Ticket | None:
        return await self._s.scalar(select(Ticket).where(Ticket.group_chat_id == chat_id,
                                                         Ticket.topic_id == topic_id))
