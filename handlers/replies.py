"""Replies that must outlive a crash between the commit and the send.

Most answers are sent straight after the commit and, were the process killed in between, the
person would simply ask again. A few say what only the bot knows, such as the number of the
ticket just created: they are written to the outbox in the transaction that makes them true,
leased to the handler that wrote them, and sent by it at once after the commit, through the
outbox sender (so Telegram's answer is handled as for any row, and the row is marked sent).
If the process dies first, the lease runs out and the outbox sender of whichever instance
runs next delivers the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegram import TelegramObject
from telegram.ext import ContextTypes

from bot.runtime import Runtime
from bot.services.relay import ANSWER
from storage.models import OutboxMessage, Ticket
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class Kept:
    """A reply written to the outbox and leased to its writer; send it with `send_kept`
    once the transaction is committed."""

    row: OutboxMessage  # its id is known once the transaction is committed


def keep(rt: Runtime, uow: UnitOfWork, chat_id: int, method: str, params: dict[str, Any], *,
         ticket: Ticket | None = None) -> Kept:
    """Write ``method(chat_id=chat_id, **params)`` to the outbox in ``uow``, about ``ticket``
    (a reply to it is then taken as being about the ticket, unless the person is in the
    middle of a form: bot.services.relay.ANSWER). Buttons may be PTB objects."""
    now = rt.clock.now()
    params = {key: value.to_dict() if isinstance(value, TelegramObject) else value
              for key, value in params.items()}
    row = uow.outbox.add(chat_id=chat_id, method=method, params={"chat_id": chat_id, **params},
                         now=now, ticket_id=ticket.id if ticket is not None else None,
                         purpose=ANSWER if ticket is not None else None)
    # Leased to this handler: no sender takes it before the lease runs out.
    row.not_before = now + rt.config.delivery.lease
    return Kept(row)


async def send_kept(context: ContextTypes.DEFAULT_TYPE, kept: Kept) -> None:
    """Send a kept reply now (after the commit of the transaction that wrote it)."""
    await context.bot_data.outbox_sender().send_held(kept.row.id, kept.row.chat_id,
                                                     kept.row.not_before)
