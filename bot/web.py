"""The bot's own HTTP server (aiohttp): the webhook, /healthz, /readyz and /metrics.

The webhook answers Telegram as soon as the update is stored in the database inbox (see
bot.inbox): an acknowledged update can no longer be lost, and handling it takes no time from the
answer. A call without the right secret token is refused with 403 before anything is read.
While the instance shuts down, the webhook answers 503, so Telegram (or the proxy in front of
several instances) sends the update again, elsewhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from bot.clock import Clock
from bot.health import CHECK_TIMEOUT, Health
from bot.metrics import CONTENT_TYPE, Metrics
from storage.db import Database

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Telegram's updates are a few kilobytes; a megabyte is a generous bound for nonsense.
MAX_UPDATE_BYTES = 1024 * 1024
# Storing an update takes milliseconds; a database that does not answer gets a 500 (Telegram
# sends the update again later) rather than a connection Telegram holds open.
RECEIVE_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

Receive = Callable[[dict], Awaitable[bool]]


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON a database can keep")


def _update_of(body: bytes) -> dict | None:
    """The update in a webhook call's body, or None for anything that is not one: not UTF-8
    JSON, not an object, no integer update_id that fits a BIGINT, NaN or Infinity anywhere
    (JSON has none; PostgreSQL's JSON refuses them), or nested past reason."""
    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(payload, dict):
        return None
    update_id = payload.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool) or not (
            -(2 ** 63) <= update_id < 2 ** 63):
        return None
    return payload


class _Refusals:
    """Logs refused webhook calls at most once a minute, with how many there were: a scan of
    the address must not flood the log."""

    def __init__(self) -> None:
        self._count = 0
        self._last = -60.0

    def note(self) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._last >= 60:
            log.warning("webhook: refused %d call(s) without the right secret token",
                        self._count)
            self._count, self._last = 0, now


def derived_secret(token: str) -> str:
    """The webhook secret when none is configured: the same on every instance of a deployment
    (all have the token), useless to anyone without the token, and not the token itself."""
    return hashlib.sha256(f"gridgate webhook secret:{token}".encode()).hexdigest()


@dataclass
class Webhook:
    path: str
    secret: str
    receive: Receive  # stores the update; True when new, False when stored already


class WebServer:
    def __init__(self, *, db: Database, clock: Clock, health: Health, metrics: Metrics,
                 webhook: Webhook | None = None,
                 pages: Sequence[Callable[[web.Application], None]] = ()) -> None:
        """``pages`` add their routes to the server: the residents' web chat (bot.webchat)
        and the centres' console (bot.console)."""
        self._db = db
        self._clock = clock
        self._health = health
        self._metrics = metrics
        self._webhook = webhook
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._refusals = _Refusals()
        self.accepting = True
        self.app = web.Application(client_max_size=MAX_UPDATE_BYTES)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics_page)
        if webhook is not None:
            self.app.router.add_post(webhook.path, self._update)
        for add_routes in pages:
            add_routes(self.app)

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the port (useful with 0)."""
        # No access log (paths, probes: nothing of use); a short wait for requests in progress
        # when stopping (each is bounded by RECEIVE_TIMEOUT and CHECK_TIMEOUT anyway).
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=STOP_TIMEOUT)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port)
        await self._site.start()
        address = self._runner.addresses[0]
        return address[1]

    def stop_accepting(self) -> None:
        """From now on the webhook answers 503 and /readyz fails (shutting down)."""
        self.accepting = False
        self._health.stopping = True

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()  # waits for requests in progress
            self._runner = None

    # -- the webhook ----------------------------------------------------------------------------

    async def _update(self, request: web.Request) -> web.Response:
        hook = self._webhook
        assert hook is not None
        # Whatever bytes the header holds (surrogateescape: never an error), compared in
        # constant time.
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, hook.secret.encode()):
            self._metrics.webhook_requests.labels("forbidden").inc()
            self._refusals.note()
            return web.Response(status=403)
        if not self.accepting:
            self._metrics.webhook_requests.labels("unavailable").inc()
            return web.Response(status=503, headers={"Retry-After": "1"})
        payload = _update_of(await request.read())
        if payload is None:
            self._metrics.webhook_requests.labels("invalid").inc()
            return web.Response(status=400, text="not a Telegram update")
        try:
            async with asyncio.timeout(RECEIVE_TIMEOUT):
                new = await hook.receive(payload)
        except Exception as exc:  # Telegram sends it again after a 5xx
            self._metrics.webhook_requests.labels("error").inc()
            log.error("webhook: update %s could not be stored (%s); Telegram will send it again",
                      payload["update_id"], "timed out" if isinstance(exc, TimeoutError)
                      else type(exc).__name__)
            return web.Response(status=500)
        self._metrics.webhook_requests.labels("stored" if new else "duplicate").inc()
        return web.Response(status=200)

    # -- health and metrics ----------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def _readyz(self, request: web.Request) -> web.Response:
        instance_only = request.query.get("scope") == "instance"
        ready, checks = await self._health.readiness(instance_only=instance_only)
        return web.json_response({"ready": ready, "checks": checks},
                                 status=200 if ready else 503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await self._metrics.refresh(self._db, self._clock.now())
        except Exception as exc:  # the process's own counters are still worth it
            log.warning("metrics: the database gauges could not be read (%s)",
                        type(exc).__name__)
        response = web.Response(body=self._metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response
