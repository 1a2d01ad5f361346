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
from bot.delivery.facts import (
    Notices,
    PostCard,
    card_arrived_after_all,
    card_undelivered,
    group_gone,
    resident_lost,
    user_unreachable,
)
from bot.delivery.limits import RateLimiter
from bot.logs import bind_log_context
from bot.metrics import Metrics
from bot.services.groups import migrated as group_migrated
from storage.db import Database
from storage.models import OutboxMessage
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

NO_TOPIC_RIGHT = "the bot may not create topics in this group"

# How long a row whose "$card" is still on its way to another chat waits before a new look.
CARD_WAIT = timedelta(seconds=2)

# Past the configured backoffs a failing row's wait keeps doubling, up to this (or up to the
# last backoff, if that is longer): Telegram may be in trouble for hours, and the row is kept
# trying until delivery.give_up_after without hammering it.
MAX_BACKOFF = timedelta(minutes=30)

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
    # A forum topic in a group where it is not known whether the bot may create topics:
    # asked first (getChatMember), so that a group where it may not costs no refused call.
    ask_topic_right: bool = False


class Rows:
    def __init__(self, db: Database, clock: Clock, config: Config, limits: RateLimiter,
                 post_card: PostCard, lease: timedelta, notices: Notices,
                 metrics: Metrics | None = None) -> None:
        self._db = db
        self._clock = clock
        self._config = config
        self._limits = limits
        self._post_card = post_card
        self._lease = lease
        self._notices = notices
        self._metrics = metrics

    async def prepare(self, row_id: int, lease: datetime) -> Call | str:
        """Renew the lease (if it is still ours) and fill in the placeholders: the call to
        make, or the outcome when there is none to make."""
        now = self._clock.now()
        renewed = now + self._lease
        async with UnitOfWork(self._db) as uow:
            row = await uow.outbox.take_lease(row_id, held_until=lease, until=renewed)
            if row is None:
                return HOLD  # sent, failed or taken over meanwhile
            ask_topic_right = False
            if row.method == "createForumTopic":
                group = await uow.groups.get(row.chat_id)
                if group is not None and group.can_manage_topics is False:
                    # The ticket's messages go to the General topic ("$topic" is dropped).
                    row.status, row.last_error = "failed", NO_TOPIC_RIGHT
                    await uow.commit()
                    log.debug("outbox %s: no topic in chat %s: %s", row.id, row.chat_id,
                              NO_TOPIC_RIGHT)
                    return DONE
                ask_topic_right = group is not None and group.can_manage_topics is None
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
            return Call(row.id, row.chat_id, row.method, params, renewed, again,
                        ask_topic_right)

    async def topic_right(self, chat_id: int, allowed: bool) -> None:
        """Remember whether the bot may create forum topics in a group (also learnt from
        my_chat_member updates, handlers.membership)."""
        async with UnitOfWork(self._db) as uow:
            group = await uow.groups.get(chat_id, for_update=True)
            if group is not None and group.can_manage_topics is not allowed:
                group.can_manage_topics = allowed
                group.updated_at = self._clock.now()
                await uow.commit()

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
            failed = row.status == "failed"
            if row.status != "sent":
                if failed:
                    log.info("outbox %s: %s to %s went out after all (%s)", row.id, row.method,
                             row.chat_id, row.last_error)
                row.status, row.sent_at, row.last_error = "sent", now, None
            if row.ticket_id is not None and result is not None:
                await self._record_for_ticket(uow, row, call, result)
                if failed and row.purpose == "card":
                    await self._card_found(uow, row)
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
                await self._card_lost(uow, row)
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
            elif call.method == "createForumTopic" and "not enough rights" in text:
                # Rights can change without the news reaching us: learnt now, the ticket's
                # messages go to the General topic, and later tickets ask for no topic.
                await self.topic_right(call.chat_id, False)
                await self.fail(call, error, quietly=True)
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
            stopped = await self._postpone(call, exc, delay=None)
            if stopped is None:
                return HOLD
            log.warning("outbox %s: %s to %s %s: %s", call.id, call.method, call.chat_id,
                        stopped, error)
            return DONE
        await self.fail(call, error)  # Conflict, an unknown method, ...
        return DONE

    async def _postpone(self, call: Call, exc: TelegramError, *,
                        delay: timedelta | None) -> str | None:
        """Move the row's not_before on: by ``delay`` (not an attempt), or by the next retry
        backoff (an attempt). When the row is not to be tried again it fails instead, and
        what stopped it is returned (for the log); None while it waits."""
        error = describe(exc)
        async with UnitOfWork(self._db) as uow:
            row = await uow.outbox.locked(call.id)
            if row is None or row.status != "pending":
                return None
            row.last_error = error[:256]
            if not isinstance(exc, TimedOut):
                row.sent_at = None  # it never reached the chat: a retry is no repeat
            if delay is None:
                row.attempts += 1
                stopped = await self._stop_trying(uow, row, exc)
                if stopped is not None:
                    row.status = "failed"
                    await uow.commit()
                    return stopped
                delay = backoff(self._config.delivery.retry_backoffs, row.attempts)
            row.not_before = self._clock.now() + delay
            await uow.commit()
            return None

    async def _stop_trying(self, uow: UnitOfWork, row: OutboxMessage,
                           exc: TelegramError) -> str | None:
        """Why a row that just failed again is not to be tried again, or None. A row is
        kept trying for as long as it may matter: until delivery.give_up_after has passed
        since it was queued, or until its ticket was closed or withdrawn (after the row
        was queued: what is said about a ticket as it closes still goes out). A call that
        timed out may have arrived, though, and each try may show it once more: those are
        tried no more often than the configured backoffs allow. A ticket's card given up is
        reported (see _card_lost)."""
        delivery = self._config.delivery
        ticket = await uow.tickets.get(row.ticket_id) if row.ticket_id is not None else None
        if (ticket is not None and ticket.closed_at is not None
                and ticket.closed_at > row.created_at):
            return f"stopped after {row.attempts} attempts: ticket {ticket.number} is over"
        if isinstance(exc, TimedOut) and row.attempts > len(delivery.retry_backoffs):
            why = (f"gave up after {row.attempts} attempts; the last timed out (it may have "
                   "arrived)")
        elif (self._clock.now() - row.created_at >= delivery.give_up_after
              or not delivery.retry_backoffs):
            why = (f"gave up after {row.attempts} attempts in "
                   f"{self._clock.now() - row.created_at}")
        else:
            return None
        if self._metrics is not None:
            self._metrics.outbox_given_up.inc()
        await self._card_lost(uow, row)
        return why

    async def _card_lost(self, uow: UnitOfWork, row: OutboxMessage) -> None:
        """A row that failed for good: when it was a ticket's card, the ticket would wait
        unseen, so the district centre's group is told (bot.delivery.facts)."""
        if row.purpose != "card" or row.ticket_id is None:
            return
        ticket = await uow.tickets.get(row.ticket_id)
        if ticket is not None and await card_undelivered(uow, self._clock, ticket, row.chat_id,
                                                         self._notices):
            log.warning("outbox %s: the card of ticket %s never reached chat %s; the "
                        "district centre's group is told", row.id, ticket.number, row.chat_id)

    async def _card_found(self, uow: UnitOfWork, row: OutboxMessage) -> None:
        """A card given up went out after all: an alarm raised for it is taken back."""
        ticket = await uow.tickets.get(row.ticket_id)
        if ticket is not None and await card_arrived_after_all(uow, self._clock, ticket,
                                                               row.chat_id, self._notices):
            log.info("outbox %s: the card of ticket %s reached chat %s after all; the "
                     "district centre's group is told", row.id, ticket.number, row.chat_id)

    async def _unreachable(self, call: Call, error: str) -> None:
        async with UnitOfWork(self._db) as uow:
            if call.chat_id > 0:
                await user_unreachable(uow, self._clock, call.chat_id)
                moved = []
                # What failed for them said something about their tickets: each ticket's
                # group learns (once) that its resident cannot be reached.
                for ticket_id in await uow.outbox.pending_tickets(call.chat_id, call.id):
                    ticket = await uow.tickets.get(ticket_id)
                    if ticket is not None:
                        await resident_lost(uow, self._clock, ticket, call.chat_id,
                                            self._notices)
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


def backoff(backoffs: Sequence[timedelta], attempt: int) -> timedelta:
    """The wait after the ``attempt``-th failed attempt (from 1): the configured backoffs,
    then doubling from the last one, up to MAX_BACKOFF (or the last backoff, if longer)."""
    if attempt <= len(backoffs):
        return backoffs[attempt - 1]
    last = backoffs[-1]
    ceiling = max(last, MAX_BACKOFF)
    doublings = attempt - len(backoffs)
    if doublings >= 32:
        return ceiling
    return min(last * (2 ** doublings), ceiling)


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
