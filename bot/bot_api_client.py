"""The HTTP client of the Bot API calls (getUpdates keeps PTB's own, bot/serve.py), on aiohttp.

PTB's default client (httpx over httpcore) spent about a third of gridgate's CPU under a flood
of residents (bench/README.md, "Conversation over real HTTP"): httpcore looks over every
connection of its pool, and asks each idle one's socket whether it is readable, whenever a
request starts or ends, so with a pool sized for 64 workers each call cost about 1.3 ms of CPU;
aiohttp (already installed for the web server) takes a free connection without looking at the
others, about 0.1 ms a call on this machine (bench/README.md). What the bot sends and how
failures read is unchanged: the same form-encoded or multipart body, PTB's timeouts with the
same defaults, TimedOut for a timeout and NetworkError for the rest, the certificates and
proxy settings httpx would use (its ``create_ssl_context``; HTTPS_PROXY, HTTP_PROXY, ALL_PROXY
and NO_PROXY in the environment). The environment is read once per host, not by aiohttp's
``trust_env``, which looks up the proxy (and ~/.netrc) again in a thread for every call: a
fifth of the process's CPU.
"""

from __future__ import annotations

import urllib.request
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

# PTB's HTTPXRequest defaults.
READ_TIMEOUT = 5.0
WRITE_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0
POOL_TIMEOUT = 1.0
MEDIA_WRITE_TIMEOUT = 20.0
# How long an idle connection is kept open (httpx's keep-alive expiry).
KEEPALIVE = 5.0


def _seconds(value: Any, default: float | None) -> float | None:
    return default if isinstance(value, BaseRequest.DEFAULT_NONE.__class__) else value


class AiohttpRequest(BaseRequest):
    """A ``BaseRequest`` over one aiohttp session with up to ``connection_pool_size``
    connections, all kept open between calls."""

    def __init__(self, connection_pool_size: int, *, read_timeout: float | None = READ_TIMEOUT,
                 write_timeout: float | None = WRITE_TIMEOUT,
                 connect_timeout: float | None = CONNECT_TIMEOUT,
                 pool_timeout: float | None = POOL_TIMEOUT,
                 media_write_timeout: float | None = MEDIA_WRITE_TIMEOUT) -> None:
        self._size = connection_pool_size
        self._read = read_timeout
        self._write = write_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._media_write = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        # As PTB's client: usable once made (the session is opened at the first call, inside
        # the event loop), not after shutdown() until initialize() again.
        self._shut = False
        self._proxies: dict[tuple[str, str], str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        self._shut = False
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._size, limit_per_host=self._size, keepalive_timeout=KEEPALIVE,
                ssl=httpx.create_ssl_context(trust_env=True))
            self._session = aiohttp.ClientSession(connector=connector,
                                                  timeout=aiohttp.ClientTimeout(total=None))

    async def shutdown(self) -> None:
        self._shut = True
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._shut:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        if self._session is None or self._session.closed:
            await self.initialize()
        session = self._session
        assert session is not None
        files = request_data.multipart_data if request_data else None
        body: Any = None
        if request_data is not None:
            fields = request_data.json_parameters
            if files:
                form = aiohttp.FormData()
                for name, value in fields.items():
                    form.add_field(name, value)
                for name, (filename, content, mimetype) in files.items():
                    form.add_field(name, content, filename=filename, content_type=mimetype)
                body = form
            elif fields:
                body = fields  # form-encoded, as httpx sends it
        read = _seconds(read_timeout, self._read)
        write = _seconds(write_timeout, self._media_write if files else self._write)
        connect = _seconds(connect_timeout, self._connect)
        pool = _seconds(pool_timeout, self._pool)
        # aiohttp has no timeout for sending the body: the whole call is bounded by the sum,
        # which is never shorter than httpx's phases one after the other.
        parts = (pool, connect, write, read)
        total = None if None in parts else sum(parts)  # type: ignore[arg-type]
        waiting = None if pool is None or connect is None else pool + connect
        timeout = aiohttp.ClientTimeout(total=total, connect=waiting, sock_connect=connect,
                                        sock_read=read)
        try:
            async with session.request(method, url, data=body, timeout=timeout,
                                       proxy=self._proxy(url),
                                       headers={"User-Agent": self.USER_AGENT}) as response:
                return response.status, await response.read()
        except TimeoutError as err:  # aiohttp's timeouts are TimeoutErrors too
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err

    def _proxy(self, url: str) -> str | None:
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        if key not in self._proxies:
            self._proxies[key] = environment_proxy(*key)
        return self._proxies[key]


def environment_proxy(scheme: str, host: str) -> str | None:
    """The proxy the environment names for ``scheme`` (or ALL_PROXY), unless NO_PROXY
    exempts ``host``."""
    proxies = urllib.request.getproxies_environment()
    if not proxies or urllib.request.proxy_bypass_environment(host, proxies):
        return None
    return proxies.get(scheme) or proxies.get("all")
