"""Which conversation a person is in: the flow of their newest private draft."""

from __future__ import annotations

from bot.runtime import Runtime


async def flow_of(rt: Runtime, user_id: int) -> str | None:
    async with rt.uow() as uow:
        draft = await uow.drafts.any_of(user_id)
    return draft.flow if draft is not None else None
