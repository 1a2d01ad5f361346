"""The bot's own HTTP server (aiohttp): the webhook, /healthz, /readyz and /metrics.

The webhook answers Telegram as soon as the update is stored in the database inbox (see
bot.inbox): an acknowledged update can no longer be lost, and handling it takes no time from the
answer. A call without the right secret token is refused with 403 before anything is read.
While the instance shuts down, the webhook answers 503, so Telegram (or the proxy in front of
several instances) sends the update again, elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from bot.clock import Clock
from bot.health import Health
from bot.metrics import CONTENT_TYPE, Metrics
from storage.db import Database

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Telegram's updates are a few kilobytes; a megabyte is a generous bound for nonsense.
MAX_UPDATE_BYTES = 1024 * 1024

Receive = Callable[[dict], Awaitable[bool]]


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
                 webhook: Webhook | None = None) -> None:
        self._db = db
        self._clock = clock
        self._health = health
        self._metrics = metrics
        self._webhook = webhook
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.accepting = True
        self.app = web.Application(client_max_size=MAX_UPDATE_BYTES)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics_page)
        if webhook is not None:
            self.app.router.add_post(webhook.path, self._update)

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the port (useful with 0)."""
        self._runner = web.AppRunner(self.app, access_log=None)  # access logs add nothing here
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
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), hook.secret.encode()):
            self._metrics.webhook_requests.labels("forbidden").inc()
            log.warning("webhook: refused a call without the right secret token")
            return web.Response(status=403)
        if not self.accepting:
            self._metrics.webhook_requests.labels("unavailable").inc()
            return web.Response(status=503, headers={"Retry-After": "1"})
        try:
            payload = await request.json(loads=json.loads)
        except (ValueError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int) or \
                isinstance(payload.get("update_id"), bool):
            self._metrics.webhook_requests.labels("invalid").inc()
            return web.Response(status=400, text="not a Telegram update")
        try:
            new = await hook.receive(payload)
        except Exception as exc:  # Telegram sends it again after a 5xx
            self._metrics.webhook_requests.labels("error").inc()
            log.error("webhook: update %s could not be stored (%s); Telegram will send it again",
                      payload["update_id"], type(exc).__name__)
            return web.Response(status=500)
        self._metrics.webhook_requests.labels("stored" if new else "duplicate").inc()
        return web.Response(status=200)

    # -- health and metrics ----------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def _readyz(self, request: web.Request) -> web.Response:
        ready, checks = await self._health.readiness()
        return web.json_response({"ready": ready, "checks": checks},
                                 status=200 if ready else 503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        try:
            await self._metrics.refresh(self._db, self._clock.now())
        except Exception as exc:  # the process's own counters are still worth it
            log.warning("metrics: the database gauges could not be read (%s)",
                        type(exc).__name__)
        response = web.Response(body=self._metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response
