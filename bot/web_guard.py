"""What keeps the bot's pages (the residents' web chat, the centres' console) safe on the open
internet: the origin every change must come from, the CSRF token, the cookies, the headers of
every answer, and rate limits.

Rate limits are counted in this process's memory (a sliding window per key): they protect the
process from a flood and the groups from spam, and a restart that forgets them loses nothing a
person needs. With several instances behind one address each counts its own share.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

COOKIE = "gg_chat"                 # the web chat's device session
CONSOLE_COOKIE = "gg_console"      # a console session
CONSOLE_PENDING = "gg_console_in"  # a browser waiting for its sign-in to be confirmed
CSRF_HEADER = "X-CSRF-Token"
# No inline script or style anywhere: a message that slipped through escaping still cannot run.
CSP = ("default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
       "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'; object-src 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "geolocation=(self), camera=(self), microphone=()",
}


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def expected_origin(public_url: str | None, request: web.Request) -> str:
    """The chat's own origin: the public address, or where this request reached us (the page
    and its calls come from the same place) when none is configured."""
    if public_url:
        return origin_of(public_url)
    return f"{request.scheme}://{request.host}".lower()


def same_origin(request: web.Request, expected: str) -> bool:
    origin = request.headers.get("Origin")
    return origin is not None and origin.lower() == expected


def is_https(public_url: str | None, request: web.Request) -> bool:
    """Whether the browser reaches us over https (the cookie is then Secure): the public
    address says so; without one, a proxy's X-Forwarded-Proto or the request itself."""
    if public_url:
        return public_url.lower().startswith("https://")
    return (request.headers.get("X-Forwarded-Proto", request.scheme).lower() == "https")


def set_cookie(response: web.StreamResponse, token: str, *, secure: bool, max_age: int,
               name: str = COOKIE, path: str = "/chat", samesite: str = "Lax") -> None:
    response.set_cookie(name, token, max_age=max_age, path=path, httponly=True,
                        secure=secure, samesite=samesite)


def client_address(request: web.Request) -> str:
    """The address limits are counted by: the proxy's X-Real-IP when the request came through
    one on this machine (the deployment guide's nginx sets it), else the peer."""
    peer = request.remote or ""
    forwarded = request.headers.get("X-Real-IP")
    if forwarded and peer in ("127.0.0.1", "::1"):
        return forwarded.strip()[:64]
    return peer


class Limits:
    """Sliding-window counters: ``hit(key, limit, window)`` is None when allowed, else the
    seconds until it would be. At most ``max_keys`` keys are remembered (the oldest go)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self._now = monotonic
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._max = max_keys

    def hit(self, key: str, limit: int, window: float) -> float | None:
        now = self._now()
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
            if len(self._hits) > self._max:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= limit:
            return max(hits[0] + window - now, 0.1)
        hits.append(now)
        return None


# -- the pages' answers -----------------------------------------------------------------------


def page_file(package: str, name: str) -> bytes:
    """A file of a page's ``static/`` folder in ``package`` (bot.webchat, bot.console)."""
    return resources.files(package).joinpath("static", name).read_bytes()


# What every page loads beside its own files (bot.pages): name -> content type.
SHARED_STATIC = {"dom.js": "text/javascript", "pages.css": "text/css"}


def add_page(app: web.Application, path: str, package: str, page: str,
             static: dict[str, str]) -> None:
    """Serve ``page`` of ``package``'s ``static/`` folder at ``path``, and under
    ``path``/static/ the files named in ``static`` (name -> content type) and the pages' shared
    ones (SHARED_STATIC); any other name is not found."""

    async def show_page(request: web.Request) -> web.Response:
        return with_headers(web.Response(body=page_file(package, page), content_type="text/html",
                                         charset="utf-8"), cache="no-store")

    async def show_static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in static:
            body, content_type = page_file(package, name), static[name]
        elif name in SHARED_STATIC:
            body, content_type = page_file("bot.pages", name), SHARED_STATIC[name]
        else:
            raise web.HTTPNotFound()
        return with_headers(web.Response(body=body, content_type=content_type),
                            cache="no-cache")

    app.router.add_get(path, show_page)
    app.router.add_get(path + "/static/{name}", show_static)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def with_headers(response: web.Response, *, cache: str) -> web.Response:
    """Every answer of a page: the safety headers, and how long it may be cached."""
    response.headers.update(HEADERS)
    response.headers["Cache-Control"] = cache
    return response


def json_response(value: Any, *, status: int = 200, cache: str = "no-store") -> web.Response:
    return with_headers(web.Response(text=dumps(value), status=status,
                                     content_type="application/json"), cache=cache)


def too_large(request: web.Request, limit: int) -> bool:
    return request.content_length is not None and request.content_length > limit


async def json_object(request: web.Request) -> dict[str, Any] | None:
    """The request's JSON object (an empty body: an empty one); None for anything else."""
    try:
        payload = json.loads(await request.read() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None
