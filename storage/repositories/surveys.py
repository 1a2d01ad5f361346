"""Follow-up surveys: one row per resident and round of a ticket (bot.services.surveys)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import TicketSurvey


class SurveyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    def add(self, survey: TicketSurvey) -> None:
        self._s.add(survey)

    async def get(self, survey_id: int) -> TicketSurvey | None:
        return await self._s.get(TicketSurvey, survey_id)

    async def refresh(self, survey: TicketSurvey) -> None:
        await self._s.refresh(survey)

    async def of_round(self, ticket_id: int, round_: int,
                       statuses: Iterable[str]) -> Sequence[TicketSurvey]:
        stmt = select(TicketSurvey).where(TicketSurvey.ticket_id == ticket_id,
                                          TicketSurvey.round == round_,
                                          TicketSurvey.status.in_(list(statuses)))
        return (await self._s.scalars(stmt.order_by(TicketSurvey.id))).all()

    async def of_ticket(self, ticket_id: int) -> Sequence[TicketSurvey]:
        stmt = select(TicketSurvey).where(TicketSurvey.ticket_id == ticket_id)
        return (await self._s.scalars(stmt.order_by(TicketSurvey.round,
                                                    TicketSurvey.id))).all()
