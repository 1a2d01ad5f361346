"""Is this instance alive, and ready for work? (/healthz and /readyz)

Alive means the process answers. Ready means it can do its job: the database answers, the Bot
API answers, its scheduler ticks and is not falling behind, the outbox is not piling up, and it
is not shutting down. A load balancer sends updates only to ready instances; an orchestrator
restarts one that stops being alive.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import text
from telegram.error import NetworkError, TelegramError, TimedOut

from bot.clock import Clock
from bot.config import Config
from storage.db import Database
from storage.uow import UnitOfWork

CHECK_TIMEOUT = 3.0
# getMe is cheap, but probes come every few seconds from every balancer: ask Telegram at most
# this often (a failure is asked again sooner).
BOT_API_OK_FOR = 30.0
BOT_API_FAILED_FOR = 5.0


@dataclass
class Health:
    db: Database
    clock: Clock
    config: Config
    # The Bot API probe (getMe); None skips the check (tests of the other checks).
    ask_bot_api: Callable[[], Awaitable[object]] | None = None
    monotonic: Callable[[], float] = time.monotonic
    started_at: float = field(default_factory=time.monotonic)
    last_tick: float | None = None
    stopping: bool = False
    _bot_api: tuple[float, bool, str] | None = None

    def ticked(self) -> None:
        self.last_tick = self.monotonic()

    async def readiness(self, *, instance_only: bool = False) -> tuple[bool, dict[str, dict]]:
        """(ready, what each check found).

        The scheduler's lag and the outbox backlog belong to the whole deployment: when they
        fail, they fail on every instance at once. A load balancer choosing between instances
        asks ``instance_only`` (/readyz?scope=instance): this process's own state only — not
        stopping, its database connection, its Bot API connection, its scheduler ticking."""
        checks: dict[str, dict] = {}
        if self.stopping:
            checks["shutdown"] = {"ok": False, "detail": "shutting down"}
        checks["database"] = await self._database()
        checks["bot_api"] = await self._bot_api_check()
        checks["scheduler"] = await self._scheduler(lag=not instance_only)
        if not instance_only:
            checks["outbox"] = await self._outbox()
        return all(check["ok"] for check in checks.values()), checks

    async def _database(self) -> dict:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                async with self.db.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not ready"
            return {"ok": False, "detail": _why(exc)}
        return {"ok": True}

    async def _bot_api_check(self) -> dict:
        if self.ask_bot_api is None:
            return {"ok": True, "detail": "not checked"}
        now = self.monotonic()
        if self._bot_api is not None:
            at, ok, detail = self._bot_api
            if now - at < (BOT_API_OK_FOR if ok else BOT_API_FAILED_FOR):
                return {"ok": ok, **({"detail": detail} if detail else {})}
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await self.ask_bot_api()
            result = (now, True, "")
        except Exception as exc:
            result = (now, False, bot_api_failure(exc, self.config.telegram.api_base_url))
        self._bot_api = result
        return {"ok": result[1], **({"detail": result[2]} if result[2] else {})}

    async def _scheduler(self, *, lag: bool = True) -> dict:
        interval = self.config.scheduler.tick_interval.total_seconds()
        # A tick may be skipped while the previous one still runs; three missed in a row (and
        # never less than half a minute) is a scheduler that stopped.
        allowed = max(3 * interval, 30.0)
        since = self.monotonic() - (self.last_tick if self.last_tick is not None
                                    else self.started_at)
        if since > allowed:
            return {"ok": False, "detail": f"no tick for {since:.0f} s"}
        if not lag:
            return {"ok": True}
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                now = self.clock.now()
                async with UnitOfWork(self.db) as uow:
                    oldest = await uow.tasks.oldest_due(now)
        except Exception as exc:
            return {"ok": False, "detail": _why(exc)}
        lag = (now - oldest) if oldest else timedelta(0)
        limit = self.config.runtime.readyz_max_scheduler_lag
        detail = {"lag_seconds": round(lag.total_seconds(), 1)}
        return {"ok": lag <= limit, **detail}

    async def _outbox(self) -> dict:
        """The backlog decides; messages being retried (Telegram failing on them) are shown
        beside it, not failed on: every instance would drop out of the balancer at once, for
        a trouble no instance can cure."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                now = self.clock.now()
                async with UnitOfWork(self.db) as uow:
                    backlog = await uow.outbox.backlog()
                    retrying, oldest = await uow.outbox.retrying()
        except Exception as exc:
            return {"ok": False, "detail": _why(exc)}
        found = {"ok": backlog <= self.config.runtime.readyz_max_outbox_backlog,
                 "backlog": backlog, "retrying": retrying}
        if oldest is not None:
            found["oldest_retrying_seconds"] = round(max(0.0, (now - oldest).total_seconds()))
        return found


def _why(exc: BaseException) -> str:
    # The class only: a driver's message may quote a URL with a password, or the bot token.
    return "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__


def bot_api_failure(exc: BaseException, base_url: str) -> str:
    """Why a call to the Bot API failed, in words an operator can act on: the name does not
    resolve, the connection is refused, nothing answers in time, TLS failed."""
    # Never the exception's own text: an HTTP library's may quote the URL, token included.
    host = urlsplit(base_url).hostname or base_url
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and isinstance(cause.__cause__, OSError):
            # A client's own error made from the system's (aiohttp's connector errors are
            # OSErrors, its TLS ones SSLErrors): the system's says more.
            cause = cause.__cause__
            continue
        if isinstance(cause, socket.gaierror):
            return f"the name {host} does not resolve (DNS)"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (f"the TLS certificate of {host} is not trusted "
                    f"({cause.verify_message or cause.reason})")
        if isinstance(cause, ssl.SSLError):
            reason = getattr(cause, "reason", None)
            return f"the TLS handshake with {host} failed ({reason or type(cause).__name__})"
        if isinstance(cause, ConnectionRefusedError):
            return f"{host} refused the connection"
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return f"there is no route to {host} (network unreachable)"
        if isinstance(cause, TimedOut | TimeoutError):
            return f"{host} did not answer in time (timed out)"
        # httpx's and aiohttp's names for a connection that went away mid-call (a proxy or a
        # NAT forgot it; routine on a long poll), without importing them for a few names.
        if isinstance(cause, ConnectionError) or type(cause).__name__ in _DROPPED:
            return f"{host} closed the connection before answering"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, TelegramError) and not isinstance(exc, NetworkError):
        return f"it answered with an error ({exc.message})"
    return type(exc).__name__


_DROPPED = ("RemoteProtocolError", "ReadError", "WriteError", "ServerDisconnectedError",
            "ClientPayloadError")
