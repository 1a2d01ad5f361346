"""Webhook mode's updates, from the database inbox to the handlers, on any instance.

The webhook stores each update (``Inbox.receive``) and answers Telegram; every instance's
``InboxDispatcher`` then takes work from the shared table:

* **Per-chat order.** Only a chat's oldest stored update may be leased, and the next one only
  after it is handled and removed. So a chat's updates are handled one at a time, in update_id
  order (Telegram numbers updates in the order they happen), whichever instance stored them and
  whichever handles them. Different chats run in parallel, on all instances.
* **Once.** A lease is taken by compare-and-set, so two instances never hold the same update;
  the handler's effects and the update_id are committed together (bot.processor), so an update
  that is taken over after a crash, or sent again by Telegram, is dropped if it was handled.
* **Nothing lost.** A lease is renewed while its instance lives; an instance that dies leaves
  its leases to run out (``[runtime] inbox_lease``), and another instance takes the updates over.
  An update whose handling never finishes (it killed each instance that took it, say) is set
  aside after a few takeovers, kept in the table out of its chat's line, instead of blocking
  the chat for ever; a failure that is reported (the database was away) is only retried.
* **Fast.** The instance that stores an update leases it in the same transaction when it can
  serve the chat at once (the chat's oldest update, a slot free or the chat served here
  already) and handles it from memory; else it is nudged, and the others look at the table
  every ``poll`` seconds. So an update usually costs two transactions: storing it (before
  Telegram is answered: the webhook cannot wait for the handling) and its handling, whose
  first commit removes its row and names the chat's next update (storage.uow
  ``InboxLease``). Looking for work (which leases every free chat's oldest update in one
  transaction) happens when something was stored unleased, a task ends with more waiting
  for a slot, and every ``poll`` seconds; a chat with more waiting takes a transaction to
  lease its next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import timedelta

from telegram import Update
from telegram.ext import Application

from bot.clock import Clock
from bot.logs import log_context
from bot.processor import chat_key
from storage.db import Database, first_in_line
from storage.uow import InboxLease, UnitOfWork, current_inbox_lease

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


def inbox_key(update: Update | None, update_id: int) -> str:
    key = chat_key(update) if update is not None else None
    if key is None:
        return f"update:{update_id}"  # nothing to keep it in order with
    kind, ident = key  # type: ignore[misc]
    return f"{kind}:{ident}"


class Inbox:
    """The webhook's side: store an update, wake the local dispatcher."""

    def __init__(self, db: Database, clock: Clock, app: Application,
                 dispatcher: InboxDispatcher | None = None) -> None:
        self._db = db
        self._clock = clock
        self._app = app
        self.dispatcher = dispatcher

    async def receive(self, payload: dict) -> bool:
        update_id = payload["update_id"]
        try:
            update = Update.de_json(payload, self._app.bot)
        except Exception:  # stored all the same; the handlers will see it
            update = None
        key = inbox_key(update, update_id)
        now = self._clock.now()
        dispatcher = self.dispatcher
        # The update is in hand: when this instance can serve its chat now, it leases it in
        # the transaction that stores it and serves it from memory, instead of a transaction
        # to find it in the table and another to lease it.
        adopt = update is not None and dispatcher is not None and dispatcher.reserve(key)
        leased = False
        try:
            # Telegram waits for the webhook's answer before it sends more, so the store goes
            # before the units of work waiting to handle updates stored already
            # (first_in_line). It is one short transaction, and stores come no faster than
            # Telegram delivers: the handling still gets its turns.
            with first_in_line():
                async with UnitOfWork(self._db) as uow:
                    new = await uow.inbox.add(update_id=update_id, chat_key=key,
                                              payload=payload, now=now)
                    if new and adopt:
                        leased = await uow.inbox.lease_stored(
                            update_id, dispatcher.token, until=now + dispatcher.lease)
                    await uow.session.commit()
        finally:
            if adopt:
                dispatcher.unreserve(key)
        if not new:
            log.info("update %s received again while waiting; kept once", update_id)
        if dispatcher is not None:
            if leased:
                dispatcher.adopt(key, update_id, payload, update)
            else:
                dispatcher.nudge(key)
        return new


class InboxDispatcher:
    def __init__(self, app: Application, db: Database, clock: Clock, *, lease: timedelta,
                 slots: int = 64, poll: float = 0.5) -> None:
        self._app = app
        self._db = db
        self._clock = clock
        self._lease = lease
        self._slots = slots
        self._poll = poll
        self.token = secrets.token_hex(16)  # this instance's leases
        self._wake = asyncio.Event()
        self._chats: dict[str, asyncio.Task[None]] = {}
        self._held: set[int] = set()  # update_ids leased and being handled (renewed)
        # Chats whose update the webhook is storing and may lease at once (Inbox.receive):
        # looking for work leaves them alone meanwhile, and they count as served.
        self._reserved: set[str] = set()
        # A chat's next update leased as it was stored while this instance still serves
        # the chat: its serving task takes it before it ends.
        self._handoff: dict[str, tuple[int, dict]] = {}
        # Whether the table may hold work this instance has not looked for since: updates
        # stored unleased, chats left out for want of a slot, chats served here when their
        # next update was stored unleased (``_behind``). A task's end looks again only then:
        # otherwise every update handled would cost a transaction finding nothing.
        self._look_again = False
        self._behind: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def lease(self) -> timedelta:
        return self._lease

    def nudge(self, key: str | None = None) -> None:
        """Something was stored unleased (``key``: its chat): look at the table now, and
        again when that chat's task here ends (the chat's next update may wait behind it)."""
        self._look_again = True
        if key is not None and key in self._chats:
            self._behind.add(key)
        self._wake.set()

    def reserve(self, key: str) -> bool:
        """Whether a chat's just-received update may be leased as it is stored (the chat is
        served here already, or a slot is free); if so the chat is held for it until
        ``unreserve``. Whether it may be leased at all (it is its chat's oldest) is the
        lease's own check."""
        if self._stopping or key in self._reserved or key in self._handoff:
            return False
        if key not in self._chats and len(self._chats) + len(self._reserved) >= self._slots:
            return False
        self._reserved.add(key)
        return True

    def unreserve(self, key: str) -> None:
        self._reserved.discard(key)

    def adopt(self, key: str, update_id: int, payload: dict, update: Update) -> None:
        """Serve an update leased as it was stored (its first lease), parsed already: by the
        chat's serving task if one is still at work (being the chat's oldest, the update
        came after everything that task had), else by a new one."""
        if self._stopping:
            return  # the stop gives its lease back (or it runs out)
        taken = {"payload": payload, "attempts": 1, "update": update}
        serving = self._chats.get(key)
        if serving is not None and not serving.done():
            self._held.add(update_id)
            self._handoff[key] = (update_id, taken)
            return
        self._start(key, update_id, taken)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(), name="gridgate inbox"),
                       asyncio.create_task(self._heartbeat(), name="gridgate inbox leases")]

    async def stop(self, timeout: float) -> bool:  # noqa: ASYNC109 - a drain deadline
        """Take nothing new, let the updates in hand finish (up to ``timeout`` seconds), then
        give back whatever is still held. True when everything in hand finished."""
        self._stopping = True
        self._wake.set()
        in_hand = list(self._chats.values())
        finished = True
        if in_hand:
            _, pending = await asyncio.wait(in_hand, timeout=timeout)
            finished = not pending
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            async with UnitOfWork(self._db) as uow:
                released = await uow.inbox.release_all(self.token)
                await uow.session.commit()
            if released:
                log.info("inbox: %d update(s) handed back for another instance", released)
        except Exception as exc:  # the leases run out by themselves then
            log.warning("inbox: leases could not be handed back (%s)", type(exc).__name__)
        return finished

    async def run_once(self) -> int:
        """Lease the oldest update of chats nobody serves and start serving them, in one
        transaction; returns how many were started."""
        self._look_again = False
        free = self._slots - len(self._chats) - len(self._reserved)
        if free <= 0 or self._stopping:
            self._look_again = not self._stopping
            return 0
        now = self._clock.now()
        leased: dict[str, tuple[int, dict]] = {}
        async with UnitOfWork(self._db) as uow:
            heads = await uow.inbox.free_heads(now, limit=free,
                                               skip_chats=sorted({*self._chats, *self._reserved}))
            if len(heads) >= free:
                self._look_again = True  # more may wait for a slot
            for update_id, key in heads:
                if key in self._chats or key in self._reserved or key in leased:
                    continue
                taken = await uow.inbox.lease(update_id, self.token, now=now,
                                              until=now + self._lease)
                if taken is not None:  # else another instance was quicker
                    leased[key] = (update_id, taken)
            await uow.session.commit()
        for key, (update_id, taken) in leased.items():
            self._start(key, update_id, taken)
        return len(leased)

    def _start(self, key: str, update_id: int, taken: dict) -> None:
        self._held.add(update_id)
        task = asyncio.create_task(self._serve_chat(key, update_id, taken),
                                   name=f"gridgate inbox {key}")
        self._chats[key] = task
        task.add_done_callback(lambda done, key=key: self._finished(key, done))

    def _finished(self, key: str, task: asyncio.Task[None]) -> None:
        if self._chats.get(key) is task:  # not a task started since for the chat
            del self._chats[key]
        if key in self._behind or self._look_again:
            self._behind.discard(key)
            self._wake.set()  # the chat may have more, and a slot is free

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self.run_once()
            except Exception as exc:  # the database may come back
                log.error("inbox: looking for work failed (%s)", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                # Not wait_for: on Python 3.11 it can swallow a cancellation (the stop).
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()
            self._wake.clear()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._lease.total_seconds() / 3)
            try:
                async with UnitOfWork(self._db) as uow:
                    await uow.inbox.renew(self.token, sorted(self._held),
                                          self._clock.now() + self._lease)
                    await uow.session.commit()
            except Exception as exc:
                log.warning("inbox: leases could not be renewed (%s)", type(exc).__name__)

    async def _serve_chat(self, key: str, update_id: int, taken: dict) -> None:
        """Handle the chat's updates one after the other while it has any (``taken``: the
        leased first one)."""
        try:
            next_one: tuple[int, dict] | None = (update_id, taken)
            while next_one is not None:
                next_one = await self._serve_one(key, *next_one)
                if next_one is None and not self._stopping:
                    # Leased by the webhook as it was stored, meanwhile (adopt).
                    next_one = self._handoff.pop(key, None)
        except Exception as exc:
            # The database, most likely. Nothing is lost: an update this instance still held
            # is no longer renewed, runs out of lease and is taken over (here or elsewhere).
            log.error("inbox: serving a chat stopped (%s); its updates are looked at again",
                      type(exc).__name__)
        finally:
            left = self._handoff.pop(key, None)
            if left is not None:  # not served: no longer renewed, its lease runs out
                self._held.discard(left[0])

    async def _serve_one(self, key: str, update_id: int,
                         taken: dict) -> tuple[int, dict] | None:
        """Handle one leased update (its first commit removes it); the chat's next one,
        leased, if any."""
        self._held.add(update_id)
        lease = InboxLease(self.token, key)
        try:
            try:
                with log_context(update_id=update_id):
                    handled = await self._handle(update_id, taken["payload"],
                                                 taken["attempts"], lease,
                                                 taken.get("update"))
            except Exception as exc:
                # Most likely the database (handlers' own errors go to the error handler):
                # give the update back, to be tried again after a pause.
                pause = min(2 ** min(taken["attempts"], 6), 60)
                log.error("inbox: update %s failed (%s); tried again in %d s", update_id,
                          type(exc).__name__, pause)
                await self._give_back(update_id, timedelta(seconds=pause))
                return None
            if handled and lease.removed:
                next_id = lease.next_head
            else:
                # Set aside, or no commit of its handling passed (it had been handled
                # before, or the lease was lost): the row goes (if still this lease's) here.
                async with UnitOfWork(self._db) as uow:
                    if handled:
                        await uow.inbox.remove(update_id, self.token)
                    else:
                        await uow.inbox.set_aside(update_id, self.token)
                    await uow.session.commit()
                    next_id = await uow.inbox.head_of(key)
        finally:
            self._held.discard(update_id)
        if next_id is None or self._stopping:
            return None
        now = self._clock.now()
        async with UnitOfWork(self._db) as uow:
            following = await uow.inbox.lease(next_id, self.token, now=now,
                                              until=now + self._lease)
            await uow.session.commit()
        if following is None:
            return None  # another instance was quicker
        return next_id, following

    async def _handle(self, update_id: int, payload: dict, attempts: int,
                      lease: InboxLease, update: Update | None = None) -> bool:
        """Handle the update; False when it is to be set aside instead."""
        if attempts > MAX_ATTEMPTS:
            log.error("inbox: update %s set aside: its handling never finished in %d tries "
                      "(each instance holding it stopped)", update_id, attempts - 1)
            return False
        if attempts > 1:
            log.warning("inbox: update %s taken over (attempt %d)", update_id, attempts)
        try:
            if update is None:  # else read already, by the webhook that stored it
                update = Update.de_json(payload, self._app.bot)
        except Exception as exc:  # it will never read better
            log.error("inbox: update %s cannot be read (%s); set aside", update_id,
                      type(exc).__name__)
            return False
        app = self._app
        # Its first commit checks that this instance still holds it, and removes it (uow).
        token = current_inbox_lease.set(lease)
        try:
            await app.update_processor.process_update(update, app.process_update(update))
        finally:
            current_inbox_lease.reset(token)
        return True

    async def _give_back(self, update_id: int, pause: timedelta) -> None:
        try:
            async with UnitOfWork(self._db) as uow:
                await uow.inbox.release(update_id, self.token,
                                        not_before=self._clock.now() + pause)
                await uow.session.commit()
        except Exception as exc:  # no longer renewed, its lease runs out by itself
            log.warning("inbox: update %s could not be given back (%s)", update_id,
                        type(exc).__name__)
