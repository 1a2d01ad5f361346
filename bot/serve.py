"""`gridgate run`: one instance of the bot as a service, from start to a clean stop.

Start: refuse a configuration that could take no reports, prepare the database, start the HTTP
server (health, metrics, and in webhook mode the webhook), reach the Bot API (retrying, saying
why it cannot be reached and what to do about it), start the scheduler and the outbox sender,
then take updates by long polling or by webhook.

Stop (SIGTERM or SIGINT): stop accepting updates (the webhook answers 503 and /readyz fails, so
Telegram and the balancer go elsewhere), finish the updates in hand, send what the outbox has due,
and exit 0, all within ``[runtime] shutdown_timeout``. Whatever is left over (updates in the
inbox, outbox rows, timers) is in the database for the next instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import signal
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from telegram import Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import Application
from telegram.request import HTTPXRequest, RequestData
from telegram.request._requestparameter import RequestParameter

from bot.clock import SystemClock
from bot.config import TELEGRAM_API_ROOT, Config, startup_problems
from bot.delivery import OutboxSender
from bot.health import bot_api_failure
from bot.i18n import Catalogs
from bot.inbox import Inbox, InboxDispatcher
from bot.runtime import Runtime
from bot.startup import (
    StartupError,
    database_failure,
    open_database,
    prepare,
    warn_unbound_centre,
)
from bot.web import Webhook, WebServer, derived_secret
from storage.db import Database
from storage.models import ProcessedUpdate
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

EXIT_USAGE = 2
MAX_RETRY_PAUSE = 60.0
MIN_SENDER_GRACE = 3.0
# Long polling fetches no more than this many updates per worker ahead of their handling.
IN_FLIGHT_PER_WORKER = 2
GET_UPDATES_LIMIT = 100  # the Bot API's largest getUpdates batch
ROOM_CHECK_INTERVAL = 0.02


class CannotStart(Exception):
    """Starting cannot succeed by waiting; the message says what the operator must do."""


@dataclass(frozen=True)
class ServeOptions:
    webhook: bool = False
    listen: str | None = None
    port: int | None = None
    # The process is the bot's own (gridgate run), not shared with a test run or an embedding
    # program: its garbage collection is tuned once it has started.
    own_process: bool = False


# Collections of the youngest objects after this many allocations (700 by default). Handling
# an update allocates thousands, most gone when it ends: collected that often, every few
# updates paid for a pass that found little, and survivors were promoted to be walked again.
YOUNG_COLLECTION_EVERY = 20_000


def settle_garbage_collection() -> None:
    """What start-up built (modules, catalogs, the org tree, SQLAlchemy's and PTB's classes)
    lives as long as the process: frozen, the collector's passes no longer walk it each time,
    and the young generation is collected less often. Under a flood the collector took about
    a tenth of the CPU before, a quarter of that after (bench/README.md)."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)


async def serve(config: Config, options: ServeOptions = ServeOptions()) -> int:
    from bot.app import ALLOWED_UPDATES, build_application, console_door, web_chat

    unusable = startup_problems(config)
    if unusable:
        for problem in unusable:
            log.error("%s", problem)
        return EXIT_USAGE
    clock = SystemClock()
    try:
        db = open_database(config)
    except StartupError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    try:
        await prepare(db, config, clock)
        await warn_unbound_centre(db)
    except StartupError as exc:
        await db.dispose()
        log.error("%s", exc)
        return EXIT_USAGE
    except (OSError, SQLAlchemyError) as exc:
        # Never the URL as written: it may hold the password. A service manager (systemd's
        # Restart=on-failure) tries again, which is why this is status 1 and not 2.
        await db.dispose()
        log.error("the database cannot be used: %s", database_failure(exc, config.database.url)
                  or type(exc).__name__)
        log.debug("database failure", exc_info=True)
        return 1
    rt = Runtime(config=config, db=db, clock=clock, catalogs=Catalogs.load())
    trouble = _PollingTrouble(config)
    polling_request = None if options.webhook else trouble.watched_request()
    app = build_application(rt, get_updates_request=polling_request)
    if polling_request is not None:
        polling_request.hold_back(app, IN_FLIGHT_PER_WORKER * config.runtime.max_concurrent_updates)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server: WebServer | None = None
    dispatcher: InboxDispatcher | None = None
    started = False
    listening = ""
    try:
        # In polling mode too: updates a webhook-mode run stored and left (acknowledged to
        # Telegram already) are handled, not stranded.
        dispatcher = InboxDispatcher(app, db, clock, lease=config.runtime.inbox_lease,
                                     slots=config.runtime.max_concurrent_updates)
        hook = None
        if options.webhook:
            inbox = Inbox(db, clock, app, dispatcher)
            hook = Webhook(path=config.webhook.path,
                           secret=_secret(config), receive=inbox.receive)
        if config.server.enabled:
            # Before the Bot API is reached: /healthz answers (and /readyz says what is
            # missing) while Telegram cannot be reached, instead of a process that looks dead.
            # Updates a webhook brings meanwhile wait in the inbox for the dispatcher.
            server = WebServer(db=db, clock=clock, health=app.bot_data.health,
                               metrics=rt.metrics, webhook=hook,
                               pages=[*([web_chat(app).routes] if config.web.enabled else []),
                                      *([console_door(app).routes]
                                        if config.console.enabled else [])])
            host = options.listen or config.server.listen
            try:
                port = await server.start(host, config.server.port if options.port is None
                                          else options.port)
            except OSError as exc:
                raise CannotStart(f"cannot listen on {host}:{options.port or config.server.port}"
                                  f" ({exc.strerror or type(exc).__name__})") from None
            listening = f"http://{host}:{port}"
            served = "webhook, " if hook else ""
            log.info("HTTP server on %s (%s/healthz, /readyz, /metrics)", listening, served)
        if not await _reach_bot_api(app, config, stop):
            return 0  # stopped while waiting for the Bot API
        if app.post_init:
            await app.post_init(app)
        await app.start()
        started = True
        if options.own_process:
            settle_garbage_collection()
        dispatcher.start()
        if options.webhook:
            await _set_webhook(app, config, ALLOWED_UPDATES)
            # Where this instance takes Telegram's calls (the path is [webhook] url's, which
            # may be a secret, so it is not repeated here).
            log.info("gridgate is running: webhook mode, taking updates on %s", listening)
        else:
            assert app.updater is not None
            if not await _inbox_first(db, stop):
                return 0
            await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES,
                                            error_callback=trouble.note)
            log.info("gridgate is running: long polling %s%s", config.telegram.api_base_url,
                     f"; HTTP server on {listening}" if listening else "")
        await stop.wait()
    except CannotStart as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    finally:
        await _shut_down(app, config, server, dispatcher, started, polling_request)
    return 0


async def _drain_outbox(app: Application, sender: OutboxSender,
                        left: Callable[[], float]) -> None:
    """Send what was queued when the stop began (others' rows are theirs to send), within
    what is left of the shutdown time."""
    # The loop finishes the calls it has under way (a call cut off might have reached
    # Telegram, and be sent again elsewhere): never less than a few seconds for that.
    await sender.stop(grace=max(MIN_SENDER_GRACE, min(10.0, left())))
    if left() <= 0:
        log.warning("stopping: no time left to send the outbox; it stays queued for the next "
                    "instance")
        return
    try:
        async with UnitOfWork(app.bot_data.runtime.db) as uow:
            last = await uow.outbox.last_id()
        await sender.drain(timeout=left(), up_to=last)
    except TimeoutError as exc:
        log.warning("stopping: %s; they stay queued for the next instance", exc)
    except Exception as exc:  # the database may be what failed
        log.warning("stopping: the outbox could not be drained (%s)", type(exc).__name__)


INBOX_FIRST_LIMIT = 60.0


async def _inbox_first(db: Database, stop: asyncio.Event) -> bool:
    """Before long polling starts: let the dispatcher handle what waits in the inbox (updates a
    stop that ran out of time kept, or a webhook-mode run left), so that a chat's newer updates,
    still at Telegram, come after them. False when told to stop meanwhile."""
    waited = 0.0
    while True:
        try:
            async with UnitOfWork(db) as uow:
                waiting = await uow.inbox.backlog()
        except SQLAlchemyError:
            return True  # the dispatcher and the handlers meet the database's trouble
        if waiting == 0:
            return True
        if waited == 0.0:
            log.info("handling %d updates left in the inbox before polling", waiting)
        if waited >= INBOX_FIRST_LIMIT:
            log.warning("%d updates still wait in the inbox; polling starts beside them",
                        waiting)
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)
            return False
        waited += 0.2


async def _keep_unhandled(app: Application, polled: _AnsweredRequest | None) -> None:
    """The stop ran out of time with updates fetched by long polling still unhandled: Telegram
    has them as delivered and will not send them again. Their handling is cancelled (a unit of
    work not committed leaves nothing behind) and they are stored in the inbox, which the next
    start (or another instance) handles, in order, before anything newer of their chats."""
    queued: list[object] = []
    while not app.update_queue.empty():  # not yet handed to the update processor
        queued.append(app.update_queue.get_nowait())
        app.update_queue.task_done()
    for item in queued:
        if not isinstance(item, Update):
            app.update_queue.put_nowait(item)  # PTB's own stop signal goes back
    prefix = f"Application:{app.bot.id}:process_concurrent_update"
    handling = [task for task in asyncio.all_tasks() if task.get_name().startswith(prefix)]
    for task in handling:
        task.cancel()
    await asyncio.gather(*handling, return_exceptions=True)
    if polled is None or not polled.fetched:
        return
    rt = app.bot_data.runtime
    kept = 0
    try:
        async with UnitOfWork(rt.db) as uow:
            ids = list(polled.fetched)
            done = set(await uow.session.scalars(select(ProcessedUpdate.update_id).where(
                ProcessedUpdate.update_id.in_(ids))))
        inbox = Inbox(rt.db, rt.clock, app)
        for update_id, payload in polled.fetched.items():
            if update_id not in done:
                kept += await inbox.receive(payload)
    except Exception as exc:  # the database may be what failed
        log.warning("stopping: updates fetched by long polling could not be kept (%s); "
                    "they are lost", type(exc).__name__)
        return
    if kept:
        log.warning("stopping: %d updates fetched by long polling were not handled in time; "
                    "they wait in the inbox for the next start", kept)


def _secret(config: Config) -> str:
    assert config.telegram.token
    return config.webhook.secret_token or derived_secret(config.telegram.token)


async def _reach_bot_api(app: Application, config: Config, stop: asyncio.Event) -> bool:
    """Initialize (getMe), waiting as long as the Bot API cannot be reached; False when told
    to stop meanwhile."""
    pause = 1.0
    told: str | None = None
    while True:
        try:
            await app.initialize()
            if told is not None:
                log.info("reached the Bot API at %s", config.telegram.api_base_url)
            return True
        except InvalidToken:
            raise CannotStart("the Bot API refused the bot token; check TELEGRAM_BOT_TOKEN (or "
                              "[telegram] token) against what @BotFather gave") from None
        except (NetworkError, TelegramError) as exc:
            why = bot_api_failure(exc, config.telegram.api_base_url)
            # What to do about it once, and again only when the reason changes.
            hint = "" if why == told else f" {_reach_hint(config)}"
            told = why
            log.error("cannot reach the Bot API at %s: %s; trying again in %.0f s.%s",
                      config.telegram.api_base_url, why, pause, hint)
        with contextlib.suppress(TimeoutError):
            # Not wait_for: on Python 3.11 it can swallow a cancellation.
            async with asyncio.timeout(pause):
                await stop.wait()
            return False
        pause = min(pause * 2, MAX_RETRY_PAUSE)


def _reach_hint(config: Config) -> str:
    if config.telegram.api_base_url == TELEGRAM_API_ROOT:
        return ("If this network cannot reach Telegram, run a Bot API server where it can "
                "(telegram-bot-api) and set TELEGRAM_API_BASE_URL (or [telegram] api_base_url) "
                "to its address, or give a proxy in HTTPS_PROXY; see docs/deployment.md, "
                "\"When Telegram cannot be reached\".")
    return ("Is the Bot API server there running, and is TELEGRAM_API_BASE_URL (or [telegram] "
            "api_base_url) its address?")


class _PollingTrouble:
    """PTB's polling loop logs a failed getUpdates as a traceback at ERROR, though it only
    waits and asks again; a dropped connection is routine on a long poll. One warning line
    with the reason instead, and a line when polling works again."""

    def __init__(self, config: Config) -> None:
        self._base_url = config.telegram.api_base_url
        self._failed = 0

    def note(self, exc: TelegramError) -> None:
        self._failed += 1
        log.warning("long polling: %s; asking again", bot_api_failure(exc, self._base_url))

    def answered(self) -> None:
        if self._failed:
            log.info("long polling works again (after %d failed %s)", self._failed,
                     "call" if self._failed == 1 else "calls")
            self._failed = 0

    def watched_request(self) -> HTTPXRequest:
        """What getUpdates is sent with (as PTB's own, one connection): PTB's loop says
        nothing when a call succeeds, so the request itself tells."""
        return _AnsweredRequest(self.answered)


class _AnsweredRequest(HTTPXRequest):
    """getUpdates, told when a call succeeded, and held back while the updates already fetched
    wait for their handling (``hold_back``)."""

    __slots__ = ("_answered", "_app", "_capacity", "fetched")

    def __init__(self, answered: Callable[[], None]) -> None:
        # Two: the long poll, and the call that confirms the last updates at a stop, which
        # otherwise waited for the cancelled poll's connection and failed after the pool
        # timeout (PTB logs it with a traceback) when the stop came during a poll.
        super().__init__(connection_pool_size=2)
        self._answered = answered
        self._app: Application | None = None
        self._capacity = 0
        # The updates fetched last, as Telegram sent them, by update_id: what a stop that runs
        # out of time stores in the inbox for the next start (_keep_unhandled).
        self.fetched: OrderedDict[int, dict] = OrderedDict()

    def hold_back(self, app: Application, capacity: int) -> None:
        """Fetch only while fewer than ``capacity`` fetched updates are unhandled, and no more
        than makes up the difference. PTB's polling loop otherwise takes everything Telegram
        has, as fast as it comes, and confirms it to Telegram with the next call: after a flood
        thousands of updates waited in memory, and a stop, which must handle every confirmed
        update (Telegram will not send it again), took minutes instead of seconds. Held back,
        the rest wait at Telegram, unconfirmed, for this process or the next."""
        self._app, self._capacity = app, capacity

    def _in_flight(self) -> int:
        assert self._app is not None
        # Fetched and not yet handed to the update processor, and handed and not yet done.
        return (self._app.update_queue.qsize()
                + self._app.update_processor.current_concurrent_updates)

    async def _room(self) -> int | None:
        """How many updates the next getUpdates may fetch (None: as it asks), once there is
        room; while stopping (the last call only confirms), at once."""
        app = self._app
        while app is not None and app.updater is not None and app.updater.running:
            room = self._capacity - self._in_flight()
            if room > 0:
                return min(room, GET_UPDATES_LIMIT)
            await asyncio.sleep(ROOM_CHECK_INTERVAL)
        return None

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         *args, **kwargs) -> tuple[int, bytes]:
        if self._app is not None and request_data is not None and url.endswith("/getUpdates"):
            room = await self._room()
            if room is not None:
                asked = request_data.parameters
                if asked.get("limit") is None or int(asked["limit"]) > room:  # type: ignore[arg-type]
                    request_data = RequestData([RequestParameter.from_input(key, value)
                                                for key, value in {**asked, "limit": room}.items()])
        code, payload = await super().do_request(url, method, request_data, *args, **kwargs)
        if 200 <= code <= 299:
            self._answered()
            if self._app is not None and url.endswith("/getUpdates"):
                self._note_fetched(payload)
        return code, payload

    def _note_fetched(self, payload: bytes) -> None:
        try:
            updates = json.loads(payload).get("result") or []
        except (ValueError, AttributeError):
            return
        for update in updates:
            if isinstance(update, dict) and isinstance(update.get("update_id"), int):
                self.fetched[update["update_id"]] = update
        # In flight are never more than the capacity; the window keeps a few batches more.
        while len(self.fetched) > self._capacity + 2 * GET_UPDATES_LIMIT:
            self.fetched.popitem(last=False)


async def _set_webhook(app: Application, config: Config, allowed: list[str]) -> None:
    # Every instance sets the same webhook on start: harmless, and a deployment whose webhook
    # was deleted (or pointed elsewhere by hand) comes back by restarting any one instance.
    try:
        await app.bot.set_webhook(url=config.webhook.url or "", secret_token=_secret(config),
                                  allowed_updates=allowed,
                                  max_connections=config.webhook.max_connections)
    except InvalidToken:
        raise CannotStart("the Bot API refused the bot token") from None
    except TelegramError as exc:
        # Telegram explains (e.g. "bad webhook: ..."); the URL may hold a secret path, the
        # explanation does not.
        raise CannotStart(f"Telegram refused the webhook address: {exc.message}") from None
    log.info("webhook set (%d connections at most)", config.webhook.max_connections)


async def _shut_down(app: Application, config: Config, server: WebServer | None,
                     dispatcher: InboxDispatcher | None, started: bool,
                     polled: _AnsweredRequest | None = None) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.runtime.shutdown_timeout.total_seconds()

    def left() -> float:
        return max(0.0, deadline - loop.time())

    if started:
        log.info("stopping: finishing the work in hand (at most %.0f s)", left())
    if server is not None:
        server.stop_accepting()
    if dispatcher is not None:
        if not await dispatcher.stop(max(0.0, left() - MIN_SENDER_GRACE)):
            log.warning("stopping: some updates were not finished in time; another instance "
                        "(or the next start) handles them")
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        # Handles what polling fetched (confirmed to Telegram, so it is not sent again: held
        # back to a few per worker, see _AnsweredRequest) and lets a running tick finish.
        stopping = asyncio.ensure_future(app.stop())
        await asyncio.wait({stopping}, timeout=max(0.0, left() - MIN_SENDER_GRACE))
        if not stopping.done():
            await _keep_unhandled(app, polled)
            # What is left is a running tick (or a task a handler started) finishing.
            await asyncio.wait({stopping}, timeout=max(0.0, left() - MIN_SENDER_GRACE))
        sender = app.bot_data.sender
        if sender is not None:
            await _drain_outbox(app, sender, left)
        if app.post_stop:
            await app.post_stop(app)
    if server is not None:
        log.debug("stopping: the HTTP server")
        await server.stop()
    log.debug("stopping: the application")
    with contextlib.suppress(Exception):
        await app.shutdown()
    if app.post_shutdown:
        await app.post_shutdown(app)
    log.info("stopped")
