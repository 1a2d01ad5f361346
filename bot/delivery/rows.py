"""What the sender writes about one outbox row: each step is one short transaction, never
open while Telegram is being called."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.clock import Clock
from bot.config import Config
from bot.delivery.calls import (
    REACT_WHEN_SENT,
    CardNotThere,
    describe,
    message_ids,
    resolve,
    retry_after_seconds,
    sends_messages,
)
from bot.delivery.facts import PostCard, group_gone, user_unreachable
from bot.delivery.limits import RateLimiter
from bot.logs import bind_log_context
from bot.services.groups import migrated as group_migrated
from storage.db import Database
from storage.models import OutboxMessage
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# How long a row whose "$card" is still on its way to another chat waits before a new look.
CARD_WAIT = timedelta(seconds=2)

# What became of a row, for the rest of its chat's rows in this batch.
DONE = "done"  # sent or failed for good: the next row of the chat may go
HOLD = "hold"  # waits (RetryAfter, backoff, card not there yet, lease lost): the chat stops
GONE = "gone"  # the chat is unreachable; its pending rows were failed


@dataclass(frozen=True)
class Call:
    id: int
    chat_id: int
    method: str
    params: dict[str, Any]
    lease: datetime
    # Handed to Telegram before without an answer recorded: sending it again may show it twice.
    again: bool = False


class Rows:
    def __init__(self, db: Database, clock: Clock, config: Config, limits: RateLimiter,
                 post_card: PostCard, lease: timedelta) -> None:
        self._db = db
        self._clock = clock
        self._config = config
        self._limits = limits
        self._post_card = post_card
        self._lease = lease

    async def prepare(self, row_id: int, lease: datetime) -> Call | str:
        """Renew the lease (if it is still ours) and fill in the placeholders: the call to
        make, or the outcome when there is none to make."""
        now = self._clock.now()
        renewed = now + self._lease
        async with UnitOfWork(self._db) as uow:
            if not await uow.outbox.take_lease(row_id, held_until=lease, until=renewed):
                return HOLD  # sent, failed or taken over meanwhile
            row = await uow.outbox.get(row_id)
            ticket = await uow.tickets.get(row.ticket_id) if row.ticket_id else None
            if ticket is not None:
                bind_log_context(ticket=ticket.number)
            try:
                params = resolve(row.params, ticket, row.chat_id)
            except CardNotThere as exc:
                card = (await uow.outbox.pending_card(ticket.id, exc.chat_id)
                        if ticket is not None else None)
                # Wait for a card on its way, unless it queues behind this very row.
                if card is not None and (exc.chat_id != row.chat_id or card < row.id):
                    row.not_before = now + CARD_WAIT
                    await uow.commit()
                    return HOLD
                params = None
                if exc.reply_only:  # the message only replies to the card: it goes without
                    try:
                        params = resolve(row.params, ticket, row.chat_id, without_card=True)
                    except CardNotThere:
                        params = None
                if params is None:
                    row.status, row.last_error = "failed", "the ticket's card is not in that chat"
                    await uow.commit()
                    log.info("outbox %s: %s to %s dropped: no card of ticket %s in chat %s",
                             row.id, row.method, row.chat_id, ticket and ticket.number,
                             exc.chat_id)
                    return DONE
                log.debug("outbox %s: no card of ticket %s in chat %s to reply to; sent "
                          "without", row.id, ticket and ticket.number, exc.chat_id)
            # A pending row's sent_at says when it was handed to Telegram. Set already, its
            # sender never recorded the answer: it died mid-call (its lease ran out and this
            # sender took the row over) or the call timed out. Telegram may have it: this is
            # the one case of at-least-once delivery, and it is said so.
            again = row.sent_at is not None
            if again:
                log.warning("outbox %s: %s to %s was handed to Telegram before and no answer "
                            "was recorded; sending it again (it may show twice)", row.id,
                            row.method, row.chat_id)
            row.sent_at = now
            await uow.commit()
            return Call(row.id, row.chat_id, row.method, params, renewed, again)

    async def not_delivered(self, call: Call) -> None:
        """Telegram answered that it did not deliver the call (a migrated group): the row was
        not handed over after all, so making it again is no repeat."""
        async with UnitOfWork(self._db) as uow:
            row = await uow.outbox.locked(call.id)
            if row is not None and row.status == "pending":
                row.sent_at = None
                await uow.commit()

    async def release(self, row_ids: Sequence[int], lease: datetime) -> None:
        """Leased rows of a chat that was held up go back to waiting their turn."""
        async with UnitOfWork(self._db) as uow:
            await uow.outbox.release(row_ids, held_until=lease, at=self._clock.now())
            await uow.commit()

    async def sent(self, call: Call, result: Any) -> None:
        """Mark the row sent, with what it produced for its ticket, in one transaction.

        A row may have failed meanwhile (its ticket moved on while the call was under way) or
        been sent by another sender that took it over: what the call produced is recorded all
        the same, for it is in the chat now. A card becomes the ticket's card only in the
        ticket's group and only if the ticket has none yet (likewise a forum topic); any
        other card (late, for a group the ticket has left, or a second one) loses its
        buttons, and any other topic is closed, through the outbox."""
        async with UnitOfWork(self._db) as uow:
            row = await uow.outbox.locked(call.id)
            if row is None:
                return
            now = self._clock.now()
            if row.status != "sent":
                if row.status == "failed":
                    log.info("outbox %s: %s to %s went out after all (%s)", row.id, row.method,
                             row.chat_id, row.last_error)
                row.status, row.sent_at, row.last_error = "sent", now, None
            if row.ticket_id is not None and result is not None:
                await self._record_for_ticket(uow, row, call, result)
            react = row.params.get(REACT_WHEN_SENT)
            if isinstance(react, dict) and result is not None:
                # Not about the ticket (no ticket id): if the ticket moves on, the reaction
                # still belongs to the message in the group it was written in.
                uow.outbox.add(chat_id=react["chat_id"], method="setMessageReaction", params={
                    "chat_id": react["chat_id"], "message_id": react["message_id"],
                    "reaction": [{"type": "emoji", "emoji": react["emoji"]}]}, now=now)
            await uow.commit()
        log.debug("outbox %s: %s to %s sent", call.id, call.method, call.chat_id)

    async def _record_for_ticket(self, uow: UnitOfWork, row: OutboxMessage, call: Call,
                                 result: Any) -> None:
        ticket = await uow.tickets.get(row.ticket_id, for_update=True)
        if ticket is None:
            return
        now = self._clock.now()
        ids = message_ids(result)
        for message_id in ids:
            await uow.tickets.remember_message(row.chat_id, message_id, ticket.id,
                                               row.purpose or "relay")
        here = ticket.group_chat_id == row.chat_id
        if row.purpose == "card" and sends_messages(row.method) and ids:
            if here and ticket.card_message_id is None:
                ticket.card_message_id = ids[0]
            elif _has_buttons(call.params):
                log.info("outbox %s: card of ticket %s in chat %s is not its card; its "
                         "buttons go", row.id, ticket.number, row.chat_id)
                uow.outbox.add(chat_id=row.chat_id, method="editMessageReplyMarkup",
                               params={"chat_id": row.chat_id, "message_id": ids[0],
                                       "reply_markup": {"inline_keyboard": []}}, now=now)
        if row.method == "createForumTopic" and isinstance(result, dict):
            topic = result.get("message_thread_id")
            if not isinstance(topic, int):
                return
            if here and ticket.topic_id is None:
                ticket.topic_id = topic
            else:
                log.info("outbox %s: topic of ticket %s in chat %s is not its topic; closed",
                         row.id, ticket.number, row.chat_id)
                uow.outbox.add(chat_id=row.chat_id, method="closeForumTopic",
                               params={"chat_id": row.chat_id, "message_thread_id": topic},
                               now=now)

    async def fail(self, call: Call, error: str, *, quietly: bool = False) -> None:
        async with UnitOfWork(self._db) as uow:
            row = await uow.outbox.locked(call.id)
            if row is not None and row.status == "pending":
                row.status, row.last_error, row.sent_at = "failed", error[:256], None
                await uow.commit()
        (log.debug if quietly else log.warning)(
            "outbox %s: %s to %s failed: %s", call.id, call.method, call.chat_id, error)

    async def refused(self, call: Call, exc: TelegramError) -> str:
        """Telegram said no: wait, retry later, give up, or learn a fact about the chat."""
        error = describe(exc)
        if isinstance(exc, RetryAfter):
            seconds = retry_after_seconds(exc)
            everything = self._limits.flood(call.chat_id, seconds)
            await self._postpone(call, exc, delay=timedelta(seconds=seconds))
            log.warning("outbox %s: flood control, %s waits %.0fs", call.id,
                        "everything" if everything else f"chat {call.chat_id}", seconds)
            return HOLD
        if isinstance(exc, Forbidden) or _group_lost(call, exc):
            await self._unreachable(call, error)
            return GONE
        if isinstance(exc, BadRequest):
            text = exc.message.lower()
            if "message is not modified" in text:
                await self.sent(call, None)  # the message already says exactly this
            else:
                quietly = ("message to edit not found" in text
                           or "message to delete not found" in text)
                await self.fail(call, error, quietly=quietly)
            return DONE
        if isinstance(exc, NetworkError | InvalidToken):
            # TimedOut is a NetworkError, and a timed-out send may well have been delivered
            # (Telegram got it, the answer got lost): retrying it is at-least-once, accepted
            # for this one case rather than losing the message. Other network errors (and a
            # token revoked while running) never reached the chat.
            if not await self._postpone(call, exc, delay=None):
                log.warning("outbox %s: %s to %s gave up after %d attempts: %s", call.id,
                            call.method, call.chat_id,
                            len(self._config.delivery.retry_backoffs) + 1, error)
                return DONE
            return HOLD
        await self.fail(call, error)  # Conflict, an unknown method, ...
        return DONE

    async def _postpone(self, call: Call, exc: TelegramError, *,
                        delay: timedelta | None) -> bool:
        """Move the row's not_before on: by ``delay`` (not an attempt), or by the next retry
        backoff (an attempt). False when the backoffs ran out and the row failed instead."""
        error = describe(exc)
        async with UnitOfWork(self._db) as uow:
            row = await uow.outbox.locked(call.id)
            if row is None or row.status != "pending":
                return True
            row.last_error = error[:256]
            if not isinstance(exc, TimedOut):
                row.sent_at = None  # it never reached the chat: a retry is no repeat
            if delay is None:
                backoffs = self._config.delivery.retry_backoffs
                row.attempts += 1
                if row.attempts > len(backoffs):
                    row.status = "failed"
                    await uow.commit()
                    return False
                delay = backoffs[row.attempts - 1]
            row.not_before = self._clock.now() + delay
            await uow.commit()
            return True

    async def _unreachable(self, call: Call, error: str) -> None:
        async with UnitOfWork(self._db) as uow:
            if call.chat_id > 0:
                await user_unreachable(uow, self._clock, call.chat_id)
                moved = []
            else:
                # First, so that the conversation of its tickets follows them to their new
                # groups; what is left for the group fails below.
                moved = await group_gone(uow, self._clock, self._config, call.chat_id,
                                         self._post_card)
            failed = await uow.outbox.fail_pending_for_chat(call.chat_id, error)
            await uow.commit()
        log.warning("outbox %s: chat %s is unreachable (%s): %d rows failed, %d tickets "
                    "re-routed", call.id, call.chat_id, error, failed, len(moved))

    async def migrated(self, call: Call, new_chat_id: int, source: int | None = None) -> bool:
        """Telegram said a group became a supergroup. Usually the row's own chat: the group
        moves to the new id and True says the row can go there at once. When the row was for
        a private chat the group must be the chat it copies from (``source``): the group is
        moved all the same, but the message to copy is not in the new one, so the row fails
        and False is returned."""
        old_chat_id = call.chat_id if call.chat_id < 0 else source
        if old_chat_id is not None and old_chat_id < 0:
            async with UnitOfWork(self._db) as uow:
                await group_migrated(uow, self._clock, old_chat_id=old_chat_id,
                                     new_chat_id=new_chat_id, post_card=self._post_card)
                await uow.commit()
            log.info("outbox %s: group %s migrated to %s", call.id, old_chat_id, new_chat_id)
        if old_chat_id == call.chat_id:
            return True
        await self.fail(call, "ChatMigrated: the message to copy is in a group that became a "
                              "supergroup")
        return False


# Telegram's descriptions (PTB capitalises the first letter of a BadRequest's) that mean the
# bot cannot post in a group at all: it is gone for us, as after a Forbidden. A restriction
# of one kind of message ("not enough rights to send photos") leaves the group usable, and
# only that row fails.
_LOST_GROUP = ("chat not found", "not enough rights to send text messages",
               "not enough rights to post", "have no rights to send a message",
               "chat_write_forbidden", "need administrator rights in the channel chat")


def _group_lost(call: Call, exc: TelegramError) -> bool:
    if call.chat_id >= 0 or not isinstance(exc, BadRequest):
        return False
    if call.params.get("from_chat_id", call.chat_id) != call.chat_id:
        return False  # "chat not found" may be about the chat a copy comes from
    text = exc.message.lower()
    return any(phrase in text for phrase in _LOST_GROUP)


def _has_buttons(params: dict[str, Any]) -> bool:
    markup = params.get("reply_markup")
    return isinstance(markup, dict) and any(markup.get("inline_keyboard") or ())
