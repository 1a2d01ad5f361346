"""Messages written to the outbox in an action's transaction and sent by the door at once."""

from __future__ import annotations

from typing import Any

from bot.delivery.render import as_json, message_params
from bot.runtime import Runtime
from bot.services.relay import ANSWER
from bot.views import Kept, View
from storage.models import Ticket
from storage.uow import UnitOfWork


async def keep(rt: Runtime, uow: UnitOfWork, chat_id: int, view: View, *,
         ticket: Ticket | None = None, edit_message_id: int | None = None) -> Kept:
    """Write ``view`` for ``chat_id`` to the outbox in ``uow`` (as an edit of
    ``edit_message_id`` if given), leased to the door that called the action, which sends it
    after the commit (``Kept``). About ``ticket``: a reply to it is then taken as being about
    the ticket, unless the person is in the middle of a form (bot.services.relay.ANSWER)."""
    params: dict[str, Any] = message_params(view)
    method = "sendMessage"
    if edit_message_id is not None:
        method, params["message_id"] = "editMessageText", edit_message_id
    return await keep_call(rt, uow, chat_id, method, params, ticket=ticket)


async def keep_call(rt: Runtime, uow: UnitOfWork, chat_id: int, method: str, params: dict[str, Any],
              *, ticket: Ticket | None = None) -> Kept:
    """``keep`` for any Bot API method (``params`` without the chat; PTB objects allowed)."""
    now = rt.clock.now()
    params = {key: as_json(value) for key, value in params.items()}
    # Leased to the caller: no sender takes it before the lease runs out.
    not_before = now + rt.config.delivery.lease
    row_id = await uow.outbox.insert(
        chat_id=chat_id, method=method, params={"chat_id": chat_id, **params}, now=now,
        not_before=not_before, ticket_id=ticket.id if ticket is not None else None,
        purpose=ANSWER if ticket is not None else None)
    return Kept(row_id, chat_id, not_before)
