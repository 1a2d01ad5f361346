"""What a resident types outside any conversation: never just "not understood".

The text is kept in a draft of its own (the person's conversation until they choose what to do
with it), so the buttons that offer to report it or to pass it on carry only the draft's token
(random: SQLite gives a deleted draft's id to the next one), and pressing one after a restart
still finds the words. Several messages in a row are one thought ("你好" and then the problem):
they are joined, as long as they fit a description.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from bot.clock import Clock
from bot.config import Config
from bot.services.reporting import characters, clean_text, description_problem
from storage.models import OPEN_STATUSES, Ticket
from storage.uow import UnitOfWork

FLOW = "freetext"
STEP = "offer"
# Open tickets offered as places to send the text to, newest first; more would be a wall of
# buttons, and older ones are under My tickets.
TICKETS_OFFERED = 3
_TICKETS_LOOKED_AT = 20


@dataclass(frozen=True)
class Offer:
    token: str
    text: str
    describable: bool       # good as a report's description as it is
    tickets: list[Ticket]   # the person's open tickets, newest first


def describable(config: Config, text: str) -> bool:
    return description_problem(config, text) is None


async def keep(uow: UnitOfWork, clock: Clock, config: Config, user_id: int,
               text: str) -> Offer | None:
    """Keep `text` (after what was kept before, if it still fits) as the person's
    conversation. None while the person is in another conversation: that is not ours to
    drop."""
    text = clean_text(text)
    current = await uow.drafts.any_of(user_id)
    if current is not None and current.flow != FLOW:
        return None
    data = dict(current.data or {}) if current is not None else {}
    token = data.get("token") or secrets.token_hex(4)
    earlier = data.get("text") or ""
    joined = f"{earlier}\n{text}" if earlier else text
    if characters(joined) <= config.limits.description_max_chars:
        text = joined
    data = {"text": text, "token": token}
    if current is not None:
        uow.drafts.save(current, step=STEP, data=data, now=clock.now())
    else:
        await uow.drafts.start(user_id, FLOW, STEP, data, clock.now())
    return Offer(token, text, describable(config, text), await open_tickets(uow, user_id))


async def kept(uow: UnitOfWork, user_id: int, token: str) -> str | None:
    """The text behind an offer's button, if that offer is still the person's conversation."""
    draft = await uow.drafts.get(user_id, FLOW)
    if draft is None or (draft.data or {}).get("token") != token:
        return None
    return draft.data.get("text") or None


async def forget(uow: UnitOfWork, user_id: int) -> None:
    await uow.drafts.discard(user_id, FLOW)


async def open_tickets(uow: UnitOfWork, user_id: int) -> list[Ticket]:
    mine = await uow.tickets.of_resident(user_id, offset=0, limit=_TICKETS_LOOKED_AT)
    return [ticket for ticket in mine if ticket.status in OPEN_STATUSES][:TICKETS_OFFERED]
