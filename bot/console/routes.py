"""The console's HTTP door on the bot's own server: the page, its sign-in through the bot, its
JSON calls and its live event stream.

Every call but the sign-in's needs a session (an HttpOnly cookie, SameSite=Strict); every POST
also its Origin and the session's CSRF token. A node or a ticket outside the person's subtrees
is answered as if it did not exist. What the person is allowed to see is decided again when
Telegram is asked about their groups (every ``[console] membership_recheck``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import io
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import segno
from aiohttp import web

from bot import web_guard as guard
from bot.actions import console
from bot.i18n import Translator, language_choices
from bot.runtime import Runtime
from bot.services.webchat import page_language
from bot.views import console_access as words
from bot.views import console_page as console_views

log = logging.getLogger(__name__)

STATIC = {"console.js": "text/javascript", "console.css": "text/css",
          "icon.svg": "image/svg+xml"}
LIVE_EVERY = 2.0  # seconds between looks for changes (the page refetches on each)

# The nodes of the centre and desk groups a Telegram user is in (asks Telegram).
MemberNodes = Callable[[int], Awaitable[list[int]]]


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


@dataclass
class Console:
    rt: Runtime
    bot_username: Callable[[], str]  # the bot's @username, for the t.me link
    member_nodes: MemberNodes

    def routes(self, app: web.Application) -> None:
        guard.add_page(app, "/console", "bot.console", "console.html", STATIC)
        app.router.add_post("/console/api/signin", self.signin)
        app.router.add_get("/console/api/signin/status", self.signin_status)
        app.router.add_post("/console/api/signout", self.signout)
        app.router.add_get("/console/api/me", self.me)
        app.router.add_post("/console/api/language", self.language)
        app.router.add_get("/console/api/tree", self.tree)
        app.router.add_get("/console/api/map", self.map)
        app.router.add_get("/console/api/rates", self.rates)
        app.router.add_get("/console/api/trend", self.trend)
        app.router.add_get("/console/api/queue", self.queue)
        app.router.add_get(r"/console/api/ticket/{id:\d{1,12}}", self.ticket)
        app.router.add_post(r"/console/api/ticket/{id:\d{1,12}}/nudge", self.nudge)
        app.router.add_post(r"/console/api/ticket/{id:\d{1,12}}/escalate", self.escalate)
        app.router.add_get("/console/api/export", self.export)
        app.router.add_get("/console/api/live", self.live)

    # -- signing in ----------------------------------------------------------------------------

    async def signin(self, request: web.Request) -> web.Response:
        try:
            self._origin(request)
        except Refusal as refusal:
            return self._refused(request, refusal)
        begun = await console.begin_signin(self.rt)
        link = f"https://t.me/{self.bot_username()}?start=console_{begun.nonce}"
        svg = io.BytesIO()
        segno.make(link, error="m").save(svg, kind="svg", scale=6, border=2, dark="#10263d")
        t = self._browser_t(request)
        response = guard.json_response({
            "link": link, "start": f"/start console_{begun.nonce}",
            "qr_svg": svg.getvalue().decode(), "expires_in": begun.expires_in,
            "hint": words.signin_prompt(t), "language": t.language,
            "strings": console_views.page_strings(t)})
        guard.set_cookie(response, begun.secret, secure=self._https(request),
                         max_age=begun.expires_in, name=guard.CONSOLE_PENDING,
                         path="/console", samesite="Strict")
        return response

    async def signin_status(self, request: web.Request) -> web.Response:
        state, token = await console.signin_state(
            self.rt, request.cookies.get(guard.CONSOLE_PENDING))
        t = self._browser_t(request)
        message = {"expired": words.code_expired(t), "refused": words.refused(t)}.get(state, "")
        response = guard.json_response({"state": state, "message": message})
        if token is not None:
            guard.set_cookie(response, token, secure=self._https(request),
                             max_age=int(self.rt.config.console.idle_timeout.total_seconds()
                                         * 12), name=guard.CONSOLE_COOKIE, path="/console",
                             samesite="Strict")
            response.del_cookie(guard.CONSOLE_PENDING, path="/console")
        return response

    async def signout(self, request: web.Request) -> web.Response:
        try:
            await self._person(request, post=True)  # a signed-in page, from its origin
        except Refusal as refusal:
            return self._refused(request, refusal)
        await console.signout(self.rt, request.cookies.get(guard.CONSOLE_COOKIE))
        log.info("a console session signed out")
        response = guard.json_response({})
        response.del_cookie(guard.CONSOLE_COOKIE, path="/console")
        return response

    # -- who and where -------------------------------------------------------------------------

    async def me(self, request: web.Request) -> web.Response:
        try:
            person = await self._person(request)
        except Refusal as refusal:
            return self._refused(request, refusal)
        return guard.json_response(await self._me(request, person))

    async def _me(self, request: web.Request, person: console.Staff) -> dict[str, Any]:
        t = await self._t(request, person)
        return {"name": person.name, "admin": person.admin, "csrf": person.csrf,
                "language": t.language, "roots": list(person.roots),
                "languages": language_choices(),
                "strings": console_views.page_strings(t)}

    async def language(self, request: web.Request) -> web.Response:
        try:
            person = await self._person(request, post=True)
            payload = await _body(request)
            code = payload.get("language")
            if code not in ("zh_Hans", "zh_Hant", "en"):
                raise Refusal(400, "bad_request")
        except Refusal as refusal:
            return self._refused(request, refusal)
        await console.choose_language(self.rt, person, code)
        return guard.json_response(await self._me(request, person))

    async def tree(self, request: web.Request) -> web.Response:
        try:
            person = await self._person(request)
        except Refusal as refusal:
            return self._refused(request, refusal)
        t = await self._t(request, person)
        return guard.json_response({"nodes": await console.tree(self.rt, person, t.language)})

    # -- the views ------------------------------------------------------------------------------

    async def map(self, request: web.Request) -> web.Response:
        return await self._view(request, lambda person, node, t: console.grid_map(
            self.rt, person, node, t))

    async def rates(self, request: web.Request) -> web.Response:
        period, first, last = (request.query.get("period", "today"),
                               request.query.get("from", ""), request.query.get("to", ""))

        async def view(person, node, t):
            if period not in ("today", "week", "month", "range"):
                raise Refusal(400, "bad_request")
            try:
                return await console.rates(self.rt, person, node, t, period, first, last)
            except ValueError as exc:
                raise Refusal(400, "bad_request") from exc
        return await self._view(request, view)

    async def trend(self, request: web.Request) -> web.Response:
        rate = request.query.get("rate", "resolution")
        days = _int(request.query.get("days"), 30, 1, 366)

        async def view(person, node, t):
            if rate not in ("response", "resolution", "on_time", "satisfaction"):
                raise Refusal(400, "bad_request")
            return await console.trend(self.rt, person, node, rate, days)
        return await self._view(request, view)

    async def queue(self, request: web.Request) -> web.Response:
        q = request.query

        async def view(person, node, t):
            view_ = q.get("view", "all")
            if view_ not in ("overdue", "due_soon", "unclaimed", "reopened", "all"):
                raise Refusal(400, "bad_request")
            return await console.queue(
                self.rt, person, node, t, view_, category=q.get("category") or None,
                status=q.get("status") or None,
                min_age_hours=_int(q.get("min_age_hours"), None, 0, 24 * 366),
                number=(q.get("q") or "").strip()[:16] or None,
                offset=_int(q.get("offset"), 0, 0, 10_000_000),
                limit=_int(q.get("limit"), 50, 1, 200))
        return await self._view(request, view)

    async def _view(self, request: web.Request, build) -> web.Response:
        """A view of one node the person may see (``?node=``; their first root if none)."""
        try:
            person = await self._person(request)
            node = _int(request.query.get("node"), person.roots[0] if person.roots else 0,
                        0, 2 ** 62)
            if not await console.may_see(self.rt, person, node):
                raise Refusal(404, "not_found")
            t = await self._t(request, person)
            return guard.json_response(await build(person, node, t))
        except Refusal as refusal:
            return self._refused(request, refusal)

    async def ticket(self, request: web.Request) -> web.Response:
        try:
            person = await self._person(request)
            t = await self._t(request, person)
            shown = await console.ticket(self.rt, person, int(request.match_info["id"]), t)
            if shown is None:
                raise Refusal(404, "not_found")
        except Refusal as refusal:
            return self._refused(request, refusal)
        return guard.json_response(shown)

    async def nudge(self, request: web.Request) -> web.Response:
        try:
            person = await self._person(request, post=True)
            payload = await _body(request)
            note = payload.get("text") if isinstance(payload.get("text"), str) else ""
            t = await self._t(request, person)
            said = await console.nudge(self.rt, person, int(request.match_info["id"]), note, t)
            if said is None:
                raise Refusal(404, "not_found")
        except Refusal as refusal:
            return self._refused(request, refusal)
        return guard.json_response({"ok": True, "message": said})

    async def escalate(self, request: web.Request) -> web.Response:
        try:
            person = await self._person(request, post=True)
            t = await self._t(request, person)
            said = await console.escalate(self.rt, person, int(request.match_info["id"]), t)
            if said is None:
                raise Refusal(404, "not_found")
        except Refusal as refusal:
            return self._refused(request, refusal)
        return guard.json_response({"ok": True, "message": said})

    async def export(self, request: web.Request) -> web.StreamResponse:
        try:
            person = await self._person(request)
            node = _int(request.query.get("node"), person.roots[0], 0, 2 ** 62)
            today = self.rt.clock.now().astimezone(self.rt.config.timezone).date()
            first = request.query.get("from") or (today - timedelta(days=30)).isoformat()
            last = request.query.get("to") or today.isoformat()
            try:
                content = await console.export_csv(self.rt, person, node, first, last)
            except (ValueError, LookupError) as exc:
                raise Refusal(400, "bad_request") from exc
            if content is None:
                raise Refusal(404, "not_found")
        except Refusal as refusal:
            return self._refused(request, refusal)
        response = guard.with_headers(web.Response(body=content, content_type="text/csv",
                                                   charset="utf-8"), cache="no-store")
        name = f"tickets-{_safe(first)}-{_safe(last)}.csv"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    async def live(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: "changed" whenever any ticket changed (the page refetches its
        view, which shows only the person's own); a comment every 15 s keeps proxies open."""
        try:
            await self._person(request)
        except Refusal as refusal:
            return self._refused(request, refusal)
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-store",
            "X-Accel-Buffering": "no", **guard.HEADERS})
        await response.prepare(request)
        last = await console.changes(self.rt)
        quiet = 0.0
        try:
            while True:
                await asyncio.sleep(LIVE_EVERY)
                if await console.staff(self.rt, request.cookies.get(guard.CONSOLE_COOKIE)) \
                        is None:
                    await response.write(b"event: signedout\ndata: {}\n\n")
                    break
                now = await console.changes(self.rt)
                quiet += LIVE_EVERY
                if now != last:
                    last, quiet = now, 0.0
                    await response.write(b"event: changed\ndata: {}\n\n")
                elif quiet >= 15:
                    quiet = 0.0
                    await response.write(b": still here\n\n")
        except ConnectionResetError:
            pass  # the page went away
        with contextlib.suppress(Exception):
            await response.write_eof()
        return response

    # -- checks -----------------------------------------------------------------------------------

    def _origin(self, request: web.Request) -> None:
        if not guard.same_origin(request, guard.expected_origin(
                self.rt.config.web.public_url, request)):
            raise Refusal(403, "origin", words.forbidden_origin(self._browser_t(request)))

    async def _person(self, request: web.Request, *, post: bool = False) -> console.Staff:
        if post:
            self._origin(request)
        person = await console.staff(self.rt, request.cookies.get(guard.CONSOLE_COOKIE))
        if person is None:
            raise Refusal(401, "session", words.signed_out(self._browser_t(request)))
        if post and not hmac.compare_digest(
                request.headers.get(guard.CSRF_HEADER, "").encode(), person.csrf.encode()):
            raise Refusal(403, "csrf", words.signed_out(self._browser_t(request)))
        if console.needs_recheck(self.rt, person):
            person = await console.rechecked(self.rt, person,
                                             await self.member_nodes(person.user_id))
            if person is None:
                raise Refusal(401, "session", words.no_longer_member(self._browser_t(request)))
        return person

    def _https(self, request: web.Request) -> bool:
        return guard.is_https(self.rt.config.web.public_url, request)

    def _browser_t(self, request: web.Request) -> Translator:
        return self.rt.translator(page_language(request.headers.get("Accept-Language"),
                                                self.rt.config.default_language))

    async def _t(self, request: web.Request, person: console.Staff) -> Translator:
        chosen = await console.language_of(self.rt, person)
        if chosen is not None:
            return self.rt.translator(chosen)
        return self._browser_t(request)

    def _refused(self, request: web.Request, refusal: Refusal) -> web.Response:
        message = refusal.message or words.bad_request(self._browser_t(request))
        return guard.json_response({"error": refusal.code, "message": message},
                                   status=refusal.status)








async def _body(request: web.Request) -> dict[str, Any]:
    if guard.too_large(request, 16 * 1024):
        raise Refusal(413, "bad_request")
    payload = await guard.json_object(request)
    if payload is None:
        raise Refusal(400, "bad_request")
    return payload


def _int(raw: str | None, default, low: int, high: int):
    if raw is None or not re.fullmatch(r"\d{1,19}", raw):
        return default
    return max(low, min(high, int(raw)))


def _safe(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        return "range"

