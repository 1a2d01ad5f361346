"""Where a person's data lies, for its export and its erasure (bot.services.privacy).

Lookups by person and by ticket across the tables that hold personal data, and the bulk
changes erasure makes. Nothing here decides what is personal: the service does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Booking,
    Draft,
    Enterprise,
    OutboxMessage,
    ScheduledTask,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketMessage,
    TicketReporter,
    TicketSurvey,
    User,
)


class PersonalDataRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    def _postgresql(self) -> bool:
        return self._s.get_bind().dialect.name == "postgresql"

    # -- a person's rows --------------------------------------------------------------------------

    async def reported(self, user_id: int, *, lock: bool = False) -> Sequence[Ticket]:
        """The tickets the person reported, oldest first; with ``lock``, their rows are held
        (PostgreSQL) so a worker's press waits for the erasure and then sees it."""
        stmt = select(Ticket).where(Ticket.reporter_id == user_id).order_by(Ticket.id)
        if lock and self._postgresql():
            stmt = stmt.with_for_update()
        return (await self._s.scalars(stmt.execution_options(populate_existing=True))).all()

    async def joined(self, user_id: int) -> Sequence[tuple[Ticket, datetime]]:
        """Other residents' tickets the person added themselves to, with when."""
        stmt = (select(Ticket, TicketReporter.added_at)
                .join(TicketReporter, TicketReporter.ticket_id == Ticket.id)
                .where(TicketReporter.user_id == user_id,
                       or_(Ticket.reporter_id.is_(None), Ticket.reporter_id != user_id))
                .order_by(Ticket.id))
        return [(ticket, added) for ticket, added in (await self._s.execute(stmt)).all()]

    async def surveys_of(self, user_id: int) -> Sequence[TicketSurvey]:
        stmt = select(TicketSurvey).where(TicketSurvey.user_id == user_id)
        return (await self._s.scalars(stmt.order_by(TicketSurvey.id))).all()

    async def events_by(self, user_id: int, ticket_id: int | None = None
                        ) -> Sequence[TicketEvent]:
        """What the person did or said as a resident."""
        stmt = select(TicketEvent).where(TicketEvent.actor_id == user_id,
                                         TicketEvent.actor_role == "resident")
        if ticket_id is not None:
            stmt = stmt.where(TicketEvent.ticket_id == ticket_id)
        return (await self._s.scalars(stmt.order_by(TicketEvent.id))).all()

    async def drafts_of(self, user_id: int) -> Sequence[Draft]:
        stmt = select(Draft).where(Draft.user_id == user_id).order_by(Draft.id)
        return (await self._s.scalars(stmt)).all()

    async def bookings_by(self, user_id: int) -> Sequence[Booking]:
        stmt = select(Booking).where(Booking.booked_by == user_id).order_by(Booking.id)
        return (await self._s.scalars(stmt)).all()

    async def forget_bookings_by(self, user_id: int) -> None:
        await self._s.execute(update(Booking).where(Booking.booked_by == user_id)
                              .values(booked_by=None)
                              .execution_options(synchronize_session=False))

    async def forget_enterprise_creator(self, user_id: int) -> None:
        await self._s.execute(update(Enterprise).where(Enterprise.created_by == user_id)
                              .values(created_by=None)
                              .execution_options(synchronize_session=False))

    async def forget_in_tasks(self, user_id: int) -> None:
        """Timers keep no trace of the person (their drafts' checks are cancelled already)."""
        await self._s.execute(update(ScheduledTask).where(ScheduledTask.user_id == user_id)
                              .values(user_id=None)
                              .execution_options(synchronize_session=False))

    async def delete_user(self, user_id: int) -> None:
        await self._s.flush()  # a row added earlier in this transaction goes too
        await self._s.execute(delete(User).where(User.id == user_id)
                              .execution_options(synchronize_session=False))

    # -- a ticket's rows --------------------------------------------------------------------------

    async def lock_ticket(self, ticket_id: int) -> Ticket | None:
        """The ticket as committed now, its row held until the transaction ends."""
        stmt = (select(Ticket).where(Ticket.id == ticket_id).with_for_update()
                .execution_options(populate_existing=True))
        return await self._s.scalar(stmt)

    async def events(self, ticket_id: int) -> Sequence[TicketEvent]:
        stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
        return (await self._s.scalars(stmt.order_by(TicketEvent.id))).all()

    async def surveys(self, ticket_id: int) -> Sequence[TicketSurvey]:
        stmt = select(TicketSurvey).where(TicketSurvey.ticket_id == ticket_id)
        return (await self._s.scalars(stmt.order_by(TicketSurvey.id))).all()

    async def delete_attachments(self, ticket_id: int, *, role: str,
                                 added_at: Iterable[datetime] | None = None) -> int:
        """A ticket's files added by ``role``; with ``added_at``, only those added then."""
        stmt = delete(TicketAttachment).where(TicketAttachment.ticket_id == ticket_id,
                                              TicketAttachment.added_by_role == role)
        if added_at is not None:
            moments = list(added_at)
            if not moments:
                return 0
            stmt = stmt.where(TicketAttachment.added_at.in_(moments))
        result = await self._s.execute(stmt.execution_options(synchronize_session=False))
        return result.rowcount or 0

    async def delete_co_reporters(self, ticket_id: int, user_id: int | None = None) -> None:
        stmt = delete(TicketReporter).where(TicketReporter.ticket_id == ticket_id)
        if user_id is not None:
            stmt = stmt.where(TicketReporter.user_id == user_id)
        await self._s.execute(stmt.execution_options(synchronize_session=False))

    async def messages(self, ticket_id: int) -> Sequence[TicketMessage]:
        stmt = select(TicketMessage).where(TicketMessage.ticket_id == ticket_id)
        return (await self._s.scalars(stmt.order_by(TicketMessage.chat_id,
                                                    TicketMessage.message_id))).all()

    async def delete_messages(self, rows: Iterable[TicketMessage]) -> None:
        for row in rows:
            await self._s.delete(row)

    async def delete_messages_in_chat(self, chat_id: int) -> None:
        """Every message of any ticket remembered in one (private) chat."""
        await self._s.execute(delete(TicketMessage).where(TicketMessage.chat_id == chat_id)
                              .execution_options(synchronize_session=False))

    # -- the outbox -----------------------------------------------------------------------------

    async def outbox_of_ticket(self, ticket_id: int) -> Sequence[OutboxMessage]:
        stmt = select(OutboxMessage).where(OutboxMessage.ticket_id == ticket_id)
        return (await self._s.scalars(stmt.order_by(OutboxMessage.id))).all()

    async def clear_outbox_of_chat(self, chat_id: int, error: str) -> None:
        """Nothing more goes to the chat, and nothing said there is kept: what waits fails,
        and every row's call (its text) is emptied."""
        await self._s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.chat_id == chat_id, OutboxMessage.status == "pending")
            .values(status="failed", last_error=error)
            .execution_options(synchronize_session=False))
        await self._s.execute(update(OutboxMessage).where(OutboxMessage.chat_id == chat_id)
                              .values(params={})
                              .execution_options(synchronize_session=False))

    async def untracked_edits(self, chat_id: int, message_id: int) -> list[OutboxMessage]:
        """Edits of a message that name no ticket (a card retired when its ticket moved on
        keeps its text that way)."""
        stmt = select(OutboxMessage).where(
            OutboxMessage.chat_id == chat_id, OutboxMessage.ticket_id.is_(None),
            OutboxMessage.method.in_(("editMessageText", "editMessageReplyMarkup")))
        return [row for row in (await self._s.scalars(stmt)).all()
                if (row.params or {}).get("message_id") == message_id]

    # -- retention ------------------------------------------------------------------------------

    async def over_before(self, cutoff: datetime, limit: int) -> Sequence[int]:
        """Tickets over (closed or withdrawn) before ``cutoff`` that still hold personal data,
        oldest first. On PostgreSQL the rows are locked, skipping any another process holds:
        two sweeps at once never take the same ticket."""
        stmt = (select(Ticket.id).where(Ticket.status.in_(("closed", "withdrawn")),
                                        Ticket.closed_at < cutoff, Ticket.erased_at.is_(None))
                .order_by(Ticket.closed_at, Ticket.id).limit(limit))
        if self._postgresql():
            stmt = stmt.with_for_update(skip_locked=True)
        return list((await self._s.scalars(stmt)).all())
