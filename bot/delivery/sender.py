"""The outbox sender: makes the Bot API calls services wrote to the outbox, within
Telegram's limits, and turns every answer into a fact in the database.

How a row travels:

1. *Claim* (one short transaction per batch): due rows that no earlier row of their chat holds
   back, as many as the rate limits allow now, are leased by moving their ``not_before`` a
   minute ahead — on PostgreSQL under ``FOR UPDATE SKIP LOCKED``, so two senders never claim
   the same row. A leased row holds back the later rows of its chat, which keeps each chat's
   order across processes too.
2. *Prepare* (short transaction): the lease is renewed by compare-and-set (if another sender
   took the row over after the lease ran out, this one lets go) and "$card"/"$topic" are
   filled in from the ticket.
3. *Call* Telegram, outside any transaction; a chart the row describes ("$chart") is drawn
   just before (``bot.delivery.uploads``). Chats are served concurrently, each chat's rows
   one after the other.
4. *Record* (one transaction): sent and its consequences, or the failure and its facts. A
   call that failed on the way (a 5xx, no network) is tried again with growing waits until
   ``[delivery] give_up_after`` (``bot.delivery.rows``); a ticket's card given up is reported
   to the district centre's group.

Delivery is at least once in two cases, both accepted: a call that timed out may have
reached Telegram and is retried (no more often than the configured backoffs allow); and a row
is marked sent only after its call returned, so a process that dies mid-call (or whose
database fails right after the call) sends that row again once its lease runs out (after at
most ``lease``, one minute by default). Otherwise a row is sent once. A ticket's card that
shows twice that way stays usable: a press on either copy acts on the ticket and brings that
copy up to date (``bot.actions.notifier.bring_copy_up_to_date``).

Running it (the Application does not start it by itself)::

    async def post_init(app):            # ApplicationBuilder().post_init(...)
        sender = OutboxSender(rt.db, rt.clock, rt.config, app.bot, post_card=...)
        app.bot_data.sender = sender
        sender.start()                   # an asyncio task running run_forever()

    async def post_stop(app):            # ApplicationBuilder().post_stop(...)
        await app.bot_data.sender.stop()

Use ``asyncio.create_task`` (what ``start`` does), not ``Application.create_task``: the
Application waits for its own tasks to finish before ``post_stop`` runs, and this one never
finishes by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import telegram
from telegram import ChatMember
from telegram.error import ChatMigrated, TelegramError
from telegram.warnings import PTBUserWarning

from bot.clock import Clock
from bot.config import Config
from bot.delivery import uploads
from bot.delivery.calls import api_kwargs, describe
from bot.delivery.facts import Notices, PostCard, note_only_card, plain_notices
from bot.delivery.limits import RateLimiter
from bot.delivery.rows import DONE, HOLD, NO_TOPIC_RIGHT, Call, Rows
from bot.delivery.web import WebChannel
from bot.logs import log_context
from bot.metrics import Metrics
from storage.db import Database, first_in_line
from storage.models import is_web_user
from storage.uow import UnitOfWork, current_update

log = logging.getLogger(__name__)

# A migration re-sends at once to the new id; a chain of them is not something Telegram does.
MAX_MIGRATIONS = 2


@dataclass(frozen=True)
class _Claimed:
    id: int
    chat_id: int


class OutboxSender:
    def __init__(self, db: Database, clock: Clock, config: Config, bot: telegram.Bot, *,
                 monotonic: Callable[[], float] = time.monotonic,
                 post_card: PostCard | None = None,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 lease: timedelta = timedelta(minutes=1), concurrency: int = 8,
                 metrics: Metrics | None = None, notices: Notices | None = None,
                 web: WebChannel | None = None) -> None:
        """``post_card(uow, ticket, group, why)`` shows a ticket in a group after its old
        card became useless: its group is gone (re-routed) or became a supergroup (see
        ``bot.services.groups``); the default sends a note alone. ``notices`` tell people
        about deliveries that failed for good (a card, a resident who blocked the bot; see
        ``bot.delivery.facts``); the default ones are plain English.
        ``monotonic`` and ``sleep`` drive the rate limits (tests pass fakes); ``clock`` is the
        database time of ``not_before``. ``lease`` must outlast one Bot API call."""
        self._db = db
        self._clock = clock
        self._bot = bot
        self._sleep = sleep
        self._lease = lease
        self._concurrency = concurrency
        self._metrics = metrics
        # Web chats' rows become entries of their conversations (bot.delivery.web).
        self._web = web or WebChannel(db, clock)
        self._limits = RateLimiter(config.delivery, monotonic)
        self._rows = Rows(db, clock, config, self._limits, post_card or note_only_card(clock),
                          lease, notices or plain_notices(clock), metrics)
        self._batch = max(50, 4 * config.delivery.global_per_second)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._up_to: int | None = None  # while draining for a stop (see drain)
        # do_api_request warns when a method has a typed twin (sendMessage → send_message);
        # the outbox stores plain Bot API calls on purpose, so only this module's calls are
        # exempted.
        warnings.filterwarnings("ignore", message=r"Please use 'Bot\.\w+' instead of",
                                category=PTBUserWarning, module=__name__)

    # -- the loop -------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Deliver what is due and allowed now; returns how many calls were made."""
        # A sender started from inside an update's handling must not record that update.
        scope = current_update.set(None)
        try:
            # The sender's units of work, and those of the chats it serves (tasks started here),
            # go before the updates' that wait: a card must not wait behind a flood.
            with first_in_line():
                claimed, lease = await self._claim()
                by_chat: dict[int, list[int]] = {}
                for row in claimed:
                    by_chat.setdefault(row.chat_id, []).append(row.id)
                gate = asyncio.Semaphore(self._concurrency)
                results = await asyncio.gather(
                    *(self._serve_chat(chat_id, ids, lease, gate)
                      for chat_id, ids in by_chat.items()),
                    return_exceptions=True)
        finally:
            current_update.reset(scope)
        made = 0
        for result in results:
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                log.error("outbox: serving a chat failed: %s", describe(result))
            else:
                made += result
        return made

    async def drain(self, timeout: float = 10, *,  # noqa: ASYNC109 - the agreed API
                    up_to: int | None = None) -> None:
        """For tests and shutdown: run_once until nothing is due, sleeping only as long as the
        rate limits require. Raises TimeoutError if rows are still due after ``timeout``.
        With ``up_to``, only rows up to that id count (what was queued when a stop began:
        other instances keep adding theirs)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._up_to = up_to
        try:
            await self._drain(loop, deadline, timeout)
        finally:
            self._up_to = None

    async def _drain(self, loop: asyncio.AbstractEventLoop, deadline: float,
                     timeout: float) -> None:  # noqa: ASYNC109
        while True:
            await self.run_once()
            async with UnitOfWork(self._db) as uow:
                waiting = await uow.outbox.count_claimable(self._clock.now(), self._up_to)
            if not waiting:
                return
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"{waiting} outbox rows still due after {timeout}s")
            # A group's 20 a minute can mean a long wait: never past the deadline.
            await self._sleep(min(self._limits.wait_time() or 0.001, left))

    async def run_forever(self, interval: float = 0.5) -> None:
        """The background loop: survives any exception (logged), ends on cancellation or stop()."""
        while not self._stopping:
            made = 0
            try:
                made = await self.run_once()
            except Exception as exc:
                # Class only: a database error's text may quote the parameters (message text).
                log.error("outbox sender: %s; retrying in %ss", describe(exc), interval)
                log.debug("outbox sender failure", exc_info=True)
            await self._sleep(0 if made else self._rest(interval))

    def _rest(self, interval: float) -> float:
        """How long the loop rests after a round that made no call: ``interval``, unless the
        overall limit held it back (full from the round before, or everything paused): then
        only until the limit lets the next call go. Resting the whole interval there cost a
        bulk send a quarter of its rate (bench/bulk_delivery.py)."""
        if self._limits.can_send_any():
            return interval
        return min(interval, max(self._limits.claim_wait(), 0.001))

    def start(self) -> asyncio.Task[None]:
        """Run run_forever() as an asyncio task (see the module docstring)."""
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self.run_forever(), name="gridgate outbox sender")
        return self._task

    async def stop(self, grace: float = 10) -> None:
        """Let the current batch finish (up to ``grace`` seconds), then end the task."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        try:
            # Not wait_for: on Python 3.11 it can swallow a cancellation of the stopper.
            async with asyncio.timeout(grace):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _count_failure(self, exc: Exception) -> None:
        if self._metrics is not None:
            self._metrics.outbox_failed(type(exc).__name__)

    # -- claiming -------------------------------------------------------------------------------

    async def _claim(self) -> tuple[list[_Claimed], datetime]:
        now = self._clock.now()
        lease = now + self._lease
        if not self._limits.can_send_any():
            return [], lease
        chosen: list[_Claimed] = []
        try:
            async with UnitOfWork(self._db) as uow:
                rows = await uow.outbox.claimable(now, limit=self._batch,
                                                  skip_chats=self._limits.held_chats(),
                                                  up_to=self._up_to)
                heads = await uow.outbox.first_pending(sorted({r.chat_id for r in rows}))
                started: set[int] = set()
                stopped: set[int] = set()
                for row in rows:
                    chat_id = row.chat_id
                    if chat_id in stopped:
                        continue
                    # An older row of this chat is locked by another sender's claim right now.
                    if chat_id not in started and heads.get(chat_id) != row.id:
                        stopped.add(chat_id)
                        continue
                    started.add(chat_id)
                    if is_web_user(chat_id):  # no Telegram limit to keep
                        chosen.append(_Claimed(row.id, chat_id))
                        row.not_before = lease
                        continue
                    if not self._limits.reserve(chat_id):
                        stopped.add(chat_id)
                        if not self._limits.can_send_any():
                            break
                        continue
                    chosen.append(_Claimed(row.id, chat_id))
                    row.not_before = lease
                await uow.commit()
        except BaseException:
            for row in chosen:
                if not is_web_user(row.chat_id):
                    self._limits.release(row.chat_id)
            raise
        return chosen, lease

    async def _serve_chat(self, chat_id: int, ids: list[int], lease: datetime,
                          gate: asyncio.Semaphore) -> int:
        made = 0
        async with gate:
            for index, row_id in enumerate(ids):
                # Its lines name the row, and its ticket once known (see Rows.prepare).
                with log_context(outbox=row_id):
                    try:
                        outcome, calls = await self._deliver(row_id, chat_id, lease)
                    except Exception as exc:
                        # Most likely the database; the row keeps its lease and comes back.
                        log.error("outbox %s: %s", row_id, describe(exc))
                        log.debug("outbox %s failure", row_id, exc_info=True)
                        outcome, calls = HOLD, 0
                made += calls
                if outcome != DONE:
                    rest = ids[index + 1:]
                    for _ in rest if not is_web_user(chat_id) else ():
                        self._limits.release(chat_id)
                    if outcome == HOLD and rest:
                        await self._rows.release(rest, lease)
                    break
        return made

    # -- one row --------------------------------------------------------------------------------

    async def send_held(self, row_id: int, chat_id: int, lease: datetime) -> None:
        """Deliver at once a row that its writer leased (``not_before`` = ``lease``) in the
        transaction that wrote it: a reply that is sent straight after the commit and must
        still arrive if the process dies first (then the lease runs out and the loop sends
        it). Telegram's answer is handled as for any row; a row that has to wait is left to
        the loop."""
        # Made as the loop makes it, not as a call of the update being handled: a 429 is not
        # waited out here (the lease could run out meanwhile and the loop send the row too)
        # but postpones the row, and this sender's limits learn of it.
        # Its two transactions finish an update already under way (the person waits for
        # this message), so they go before the updates that wait to begin, as the loop's do:
        # behind a queue of them, a submit's answer waited three turns where a step waits one.
        scope = current_update.set(None)
        try:
            with log_context(outbox=row_id), first_in_line():
                await self._deliver(row_id, chat_id, lease, reserved=False)
        finally:
            current_update.reset(scope)

    async def _may_create_topics(self, call: Call) -> bool:
        """Ask Telegram whether the bot may create topics in the group, and remember it; a
        row it may not make fails quietly (the ticket's messages go to the General topic).
        When Telegram cannot tell now, the topic is simply tried."""
        try:
            member = await self._bot.get_chat_member(call.chat_id, self._bot.id)
        except TelegramError as exc:
            log.info("outbox %s: could not ask for the topic right in chat %s: %s", call.id,
                     call.chat_id, describe(exc))
            return True
        allowed = member.status == ChatMember.OWNER or (
            member.status == ChatMember.ADMINISTRATOR
            and bool(getattr(member, "can_manage_topics", False)))
        await self._rows.topic_right(call.chat_id, allowed)
        if not allowed:
            await self._rows.fail(call, NO_TOPIC_RIGHT, quietly=True)
        return allowed

    async def _deliver(self, row_id: int, chat_id: int, lease: datetime, *,
                       reserved: bool = True) -> tuple[str, int]:
        """Prepare, call and record one row; returns its outcome and the calls made.
        ``reserved``: a slot of the rate limits was reserved for it when it was claimed."""
        calls = 0
        if is_web_user(chat_id):
            return await self._deliver_web(row_id, lease), 1
        try:
            for _ in range(MAX_MIGRATIONS + 1):
                prepared = await self._rows.prepare(row_id, lease)
                if isinstance(prepared, str):
                    return prepared, calls
                call: Call = prepared
                lease = call.lease
                if call.again and self._metrics is not None:
                    self._metrics.outbox_resent.inc()
                if call.ask_topic_right and not await self._may_create_topics(call):
                    return DONE, calls
                # The overall cap is claimed a moment ahead (bot.delivery.limits): its slot
                # may still be held.
                while (wait := self._limits.global_wait()) > 0:
                    await self._sleep(wait)
                self._limits.stamp(call.chat_id, reserved=reserved)
                reserved = False
                calls += 1
                try:
                    try:
                        # Draws charts, reads web photos.
                        params = await uploads.materialize(call.params, self._web.file)
                        result = await self._bot.do_api_request(call.method,
                                                                api_kwargs=api_kwargs(params))
                    finally:
                        self._limits.answered(call.chat_id)  # it counts from its answer
                except ChatMigrated as exc:
                    self._count_failure(exc)
                    await self._rows.not_delivered(call)  # no repeat when sent to the new id
                    source = call.params.get("from_chat_id")
                    if await self._rows.migrated(call, exc.new_chat_id,
                                                 source if isinstance(source, int) else None):
                        continue  # at once, to the new id
                    return DONE, calls
                except TelegramError as exc:
                    self._count_failure(exc)
                    return await self._rows.refused(call, exc), calls
                except Exception as exc:
                    # Raised before anything went out (e.g. a value JSON cannot hold, a chart
                    # that cannot be drawn): retrying cannot help.
                    self._count_failure(exc)
                    await self._rows.fail(call, describe(exc))
                    return DONE, calls
                if self._metrics is not None:
                    self._metrics.outbox_sent.inc()
                await self._rows.sent(call, result)
                return DONE, calls
            await self._rows.fail(call, "ChatMigrated: migrated again")
            return DONE, calls
        finally:
            if reserved:
                self._limits.release(chat_id)

    async def _deliver_web(self, row_id: int, lease: datetime) -> str:
        prepared = await self._rows.prepare(row_id, lease)
        if isinstance(prepared, str):
            return prepared
        call: Call = prepared
        try:
            result = await self._web.call(call.id, call.chat_id, call.method, call.params)
        except Exception as exc:
            # The database, most likely: the row keeps its lease and comes back.
            self._count_failure(exc)
            log.error("outbox %s: to the web chat: %s", call.id, describe(exc))
            return HOLD
        if self._metrics is not None:
            self._metrics.outbox_sent.inc()
        await self._rows.sent(call, result)
        return DONE
