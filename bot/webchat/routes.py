"""The web chat's HTTP door on the bot's own server: the page, its JSON calls and its WebSocket.

Each call checks where it came from (the Origin, then the CSRF token the session answer gave
the page), who it is (the session cookie), and how often they have been here (rate limits);
reads what the person did into plain values; has the same action as Telegram act on it inside
a ``turn`` (one update id per thing done, from the page's key for it: a retried request is
acted on once); stores the answer as entries of the conversation (``bot.actions.webchat``);
and answers with every entry after the page's cursor. The page shows nothing the database
does not already hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import re
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from bot import web_guard as guard
from bot.actions import webchat
from bot.actions.updates import DuplicateUpdate, settle
from bot.delivery.web import WEB_FILE, Hub
from bot.i18n import Translator, language_choices
from bot.runtime import Runtime
from bot.services import webchat as rules
from bot.views import Answer, Kept, View
from bot.views import webchat as views
from bot.webchat import inputs, photos

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096   # what Telegram takes in one message: the web chat takes no more
KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")
STATIC = {"chat.js": "text/javascript", "chat.css": "text/css", "icon.svg": "image/svg+xml"}
POLL_SECONDS = 5.0  # a live page also asks the database this often (other instances' news)

SendKept = Callable[[Kept], Awaitable[None]]
Download = Callable[[str], Awaitable[bytes | None]]


class Refusal(Exception):
    """A request answered with an error the page shows (``message`` in the person's
    language)."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        super().__init__(code)
        self.status, self.code, self.message, self.retry_after = status, code, message, \
            retry_after


@dataclass
class WebChat:
    rt: Runtime
    send_kept: SendKept           # a kept message goes out through the outbox sender now
    download: Download | None = None  # a Telegram file by its id (a worker's photo)
    hub: Hub = field(default_factory=Hub)
    limits: guard.Limits = field(default_factory=guard.Limits)
    # One thing at a time per person, as Telegram's updates of one chat (held while in use).
    _locks: weakref.WeakValueDictionary[int, asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary)

    def routes(self, app: web.Application) -> None:
        guard.add_page(app, "/chat", "bot.webchat", "chat.html", STATIC)
        app.router.add_post("/chat/api/session", self.session)
        app.router.add_get("/chat/api/messages", self.messages)
        app.router.add_post("/chat/api/send", self.send)
        app.router.add_post("/chat/api/press", self.press)
        app.router.add_post("/chat/api/location", self.location)
        app.router.add_post("/chat/api/contact", self.contact)
        app.router.add_post("/chat/api/photo", self.photo)
        app.router.add_post("/chat/api/language", self.language)
        app.router.add_post("/chat/api/recover", self.recover)
        app.router.add_get("/chat/api/map", self.map)
        app.router.add_get(r"/chat/api/file/{seq:\d{1,9}}/{index:\d{1,2}}", self.file)
        app.router.add_get("/chat/ws", self.socket)

    @property
    def _config(self):
        return self.rt.config.web

    # -- the session ------------------------------------------------------------------------

    async def session(self, request: web.Request) -> web.Response:
        """Opens (or resumes) the browser's session: the page's first call. It issues the CSRF
        token, so the Origin alone vouches for it (and the cookie is SameSite)."""
        try:
            self._check_origin(request)
            payload = await _json(request)
            at = payload.get("at")
            at = at if isinstance(at, str) and re.fullmatch(r"[A-Za-z0-9_.\-]{1,48}", at) \
                else None
            token = request.cookies.get(guard.COOKIE)
            known = await webchat.session(self.rt, token)
            if known is None:
                wait = self.limits.hit("session:" + guard.client_address(request),
                                       self._config.sessions_per_hour, 3600)
                if wait is not None:
                    t = self._browser_t(request)
                    raise Refusal(429, "rate", views.too_many_sessions(t), wait)
            opened = await webchat.open_session(
                self.rt, token if known is not None else None, at=at,
                language_code=rules.browser_language(request.headers.get("Accept-Language")))
        except Refusal as refusal:
            return self._refused(refusal, request)
        t = self.rt.translator(opened.language)
        found, cursor = await webchat.entries(self.rt, opened.session)
        if not found:
            # A new conversation begins with the welcome and the menu, as /start does.
            await self._run(opened.session, "welcome", None, lambda: inputs.COMMANDS["start"](
                self.rt, self._who(request, opened.session)), None)
            found, cursor = await webchat.entries(self.rt, opened.session)
        response = guard.json_response({
            "csrf": opened.session.csrf, "language": opened.language,
            "languages": language_choices(), "strings": webchat.page_strings(t),
            "place": ({"code": opened.place[0], "name": opened.place[1]}
                      if opened.place else None),
            "messages": [self._message(e) for e in found], "cursor": cursor})
        if opened.token is not None:
            self._set_cookie(request, response, opened.token)
        return response

    async def messages(self, request: web.Request) -> web.Response:
        try:
            current = await self._session(request)
        except Refusal as refusal:
            return self._refused(refusal, request)
        return await self._entries(current, _after(request))

    # -- what the person does ------------------------------------------------------------------

    async def send(self, request: web.Request) -> web.Response:
        async def act(current: webchat.Session, payload: dict, t: Translator) -> Any:
            text = payload.get("text")
            if not isinstance(text, str) or not text.strip():
                raise Refusal(400, "bad_request", views.bad_request(t))
            if len(text) > TEXT_LIMIT:
                raise Refusal(400, "too_long", views.text_too_long(t, TEXT_LIMIT))
            reply_to = payload.get("reply_to")
            replied = None
            if isinstance(reply_to, int) and not isinstance(reply_to, bool):
                replied = await webchat.replied(self.rt, current, reply_to)
            who = self._who(request, current)
            return webchat.said_text(text), lambda: inputs.text(
                self.rt, who, text, reply_to=reply_to if replied is not None else None,
                reply_to_text=replied or "")
        return await self._act(request, act)

    async def press(self, request: web.Request) -> web.Response:
        async def act(current: webchat.Session, payload: dict, t: Translator) -> Any:
            data, message = payload.get("data"), payload.get("message")
            if not isinstance(data, str) or len(data) > 64 or not isinstance(message, int):
                raise Refusal(400, "bad_request", views.bad_request(t))
            # Only a button the conversation shows may be pressed (forged data is refused
            # by the actions all the same).
            if not await webchat.offers(self.rt, current, message, data):
                data = "\x00"
            who = self._who(request, current)
            return None, lambda: inputs.press(self.rt, who, data), message
        return await self._act(request, act)

    async def location(self, request: web.Request) -> web.Response:
        async def act(current: webchat.Session, payload: dict, t: Translator) -> Any:
            lat, lon = payload.get("latitude"), payload.get("longitude")
            if not (_number(lat) and _number(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
                raise Refusal(400, "bad_request", views.bad_request(t))
            who = self._who(request, current)
            return webchat.said_location(t, lat, lon), lambda: inputs.location(
                self.rt, who, float(lat), float(lon))
        return await self._act(request, act)

    async def contact(self, request: web.Request) -> web.Response:
        async def act(current: webchat.Session, payload: dict, t: Translator) -> Any:
            typed = payload.get("phone")
            number = rules.typed_phone(typed if isinstance(typed, str) else None)
            if number is None:
                raise Refusal(400, "not_mobile", views.not_a_mobile(t))
            who = self._who(request, current)
            return webchat.said_phone(number), lambda: inputs.phone(self.rt, who, number)
        return await self._act(request, act)

    async def photo(self, request: web.Request) -> web.Response:
        async def act(current: webchat.Session, payload: dict, t: Translator) -> Any:
            content = payload.get("file")
            if not isinstance(content, bytes) or not content:
                raise Refusal(400, "not_image", views.not_a_photo(t))
            wait = self.limits.hit(f"photo:{current.resident_id}", self._config.uploads_per_hour,
                                   3600)
            if wait is not None:
                raise Refusal(429, "rate", views.too_many_photos(t), wait)
            try:
                jpeg = await asyncio.to_thread(photos.reencode, content)
            except photos.NotAPhoto as exc:
                raise Refusal(400, "not_image", views.not_a_photo(t)) from exc
            token = await webchat.keep_photo(self.rt, current, jpeg)
            who = self._who(request, current)
            return webchat.said_photo(token), lambda: inputs.photo(
                self.rt, who, WEB_FILE + token, len(jpeg))
        return await self._act(request, act, form=True)

    async def language(self, request: web.Request) -> web.Response:
        async def act(current: webchat.Session, payload: dict, t: Translator) -> Any:
            code = payload.get("language")
            if not isinstance(code, str) or len(code) > 8:
                raise Refusal(400, "bad_request", views.bad_request(t))
            who = self._who(request, current)
            return None, lambda: inputs.press(self.rt, who, "lang:" + code)

        async def words(current: webchat.Session) -> dict[str, Any]:
            t = await webchat.language_of(self.rt, current, None)
            return {"language": t.language, "strings": webchat.page_strings(t)}
        return await self._act(request, act, more=words)

    async def recover(self, request: web.Request) -> web.Response:
        try:
            current = await self._session(request)
            payload = await _json(request)
            t = await self._translator(request, current)
            wait = self.limits.hit("recover:" + guard.client_address(request), 10, 3600)
            if wait is not None:
                raise Refusal(429, "rate", views.too_many(t), wait)
            code = payload.get("code")
            found = await webchat.recover(self.rt, current, code if isinstance(code, str)
                                          else "")
            if found is None:
                raise Refusal(400, "wrong_code", views.wrong_recovery_code(t))
        except Refusal as refusal:
            return self._refused(refusal, request)
        await webchat.record(self.rt, found, Answer([webchat.opened_elsewhere(t)]))
        self.hub.wake(found.resident_id)
        return await self._entries(found, 0)

    # -- what the page reads ------------------------------------------------------------------

    async def map(self, request: web.Request) -> web.Response:
        return guard.json_response(await webchat.grid_map(self.rt), cache="public, max-age=300")

    async def file(self, request: web.Request) -> web.StreamResponse:
        try:
            current = await self._session(request, rotate=False)
        except Refusal as refusal:
            return self._refused(refusal, request)
        found = await webchat.file(self.rt, current, int(request.match_info["seq"]),
                                   int(request.match_info["index"]))
        if found is None:
            raise web.HTTPNotFound()
        content, content_type = found.content, found.content_type
        if content is None and found.telegram_file_id and self.download is not None:
            content = await self.download(found.telegram_file_id)
            content_type = "image/jpeg" if found.name == "photo.jpg" else \
                "application/octet-stream"
        if content is None:
            raise web.HTTPNotFound()
        response = guard.with_headers(web.Response(body=content, content_type=content_type),
                                      cache="private, max-age=86400")
        if not content_type.startswith("image/"):
            response.headers["Content-Disposition"] = \
                f'attachment; filename="{re.sub(r"[^A-Za-z0-9._-]", "_", found.name)}"'
        return response

    async def socket(self, request: web.Request) -> web.StreamResponse:
        try:
            self._check_origin(request)
            current = await self._session(request, rotate=False)
        except Refusal as refusal:
            return self._refused(refusal, request)
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=4096)
        await ws.prepare(request)
        cursor = 0
        event = self.hub.listen(current.resident_id)
        reader = asyncio.create_task(self._read_cursor(ws))
        try:
            first = await reader  # the page says what it has seen first
            if first is None:
                return ws
            cursor = first
            reader = asyncio.create_task(self._read_cursor(ws))
            while not ws.closed:
                event.clear()
                found, last = await webchat.entries(self.rt, current, cursor)
                if found:
                    await ws.send_json({"messages": [self._message(e) for e in found],
                                        "cursor": last}, dumps=guard.dumps)
                    cursor = last
                woke = asyncio.create_task(event.wait())
                done, _ = await asyncio.wait({woke, reader}, timeout=POLL_SECONDS,
                                             return_when=asyncio.FIRST_COMPLETED)
                woke.cancel()
                if reader in done:
                    asked = reader.result()
                    if asked is None:
                        break
                    cursor = min(cursor, asked)
                    reader = asyncio.create_task(self._read_cursor(ws))
        except Exception:
            log.exception("web chat socket failed")
        finally:
            reader.cancel()
            self.hub.leave(current.resident_id, event)
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    @staticmethod
    async def _read_cursor(ws: web.WebSocketResponse) -> int | None:
        """The next cursor the page sends; None when it goes away."""
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                after = json.loads(message.data).get("after")
            except (ValueError, AttributeError):
                continue
            if isinstance(after, int) and not isinstance(after, bool) and after >= 0:
                return after
        return None

    # -- the common path of what the person does --------------------------------------------------

    async def _act(self, request: web.Request, act, *, form: bool = False,
                   more: Callable[[webchat.Session], Awaitable[dict[str, Any]]] | None = None
                   ) -> web.Response:
        """Check, read, act once, store, answer. ``act(session, payload, t)`` validates the
        payload and returns what the person said (None: a press) and the action to run,
        and for a press the pressed message; ``more`` adds to the answer."""
        try:
            current = await self._session(request)
            self._check_csrf(request, current)
            payload = await (_form(request, self._config.max_upload_bytes) if form
                             else _json(request))
            t = await self._translator(request, current)
            key = payload.get("key")
            if not isinstance(key, str) or not KEY.fullmatch(key):
                raise Refusal(400, "bad_request", views.bad_request(t))
            self._rate(request, current, t)
            made = await act(current, payload, t)
        except Refusal as refusal:
            return self._refused(refusal, request)
        said, action, pressed = (*made, None) if len(made) == 2 else made
        try:
            await self._run(current, key, said, action, pressed)
        except Exception:
            log.exception("web chat: an action failed")
            return self._refused(Refusal(500, "error", t("Sorry, something went wrong. "
                                                          "Please try again.")), request)
        response = await self._entries(current, _after(request),
                                       more=await more(current) if more else None)
        await self._rotate_after(request, response, current)
        return response

    async def _run(self, current: webchat.Session, key: str, said: dict | None,
                   action: Callable[[], Awaitable[Answer]], pressed: int | None) -> None:
        """One thing the person did, acted on once and its answer stored, one at a time per
        person (as Telegram's updates of one chat)."""
        lock = self._locks.get(current.resident_id)
        if lock is None:
            lock = self._locks[current.resident_id] = asyncio.Lock()
        async with lock:
            async with webchat.turn(self.rt, current, key, said):
                try:
                    answer = await action()
                    await settle(self.rt)  # a read-only answer is recorded too
                    await self._show(current, answer, pressed)
                except DuplicateUpdate:
                    pass  # done before (a retry): the conversation has the answer
            await webchat.recovery_offer(self.rt, current)
        self.hub.wake(current.resident_id)

    async def _show(self, current: webchat.Session, answer: Answer, pressed: int | None) -> None:
        """The answer as entries, in order: the press's alert and edit, then each message
        (kept messages through the outbox sender, which stores them too)."""
        await webchat.record(self.rt, current, Answer(
            edit=answer.edit if isinstance(answer.edit, View) else None,
            unbutton=answer.unbutton, alert=answer.alert), pressed=pressed)
        if isinstance(answer.edit, Kept):
            await self.send_kept(answer.edit)
        run: list[View | Kept] = []
        for item in answer.say:
            if isinstance(item, Kept):
                if run:
                    await webchat.record(self.rt, current, Answer(run))
                    run = []
                await self.send_kept(item)
            else:
                run.append(item)
        if run:
            await webchat.record(self.rt, current, Answer(run))

    # -- checks ------------------------------------------------------------------------------

    def _check_origin(self, request: web.Request) -> None:
        if not guard.same_origin(request, guard.expected_origin(self._config.public_url,
                                                                request)):
            t = self._browser_t(request)
            raise Refusal(403, "origin", views.forbidden_origin(t))

    def _check_csrf(self, request: web.Request, current: webchat.Session) -> None:
        sent = request.headers.get(guard.CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), current.csrf.encode()):
            t = self._browser_t(request)
            raise Refusal(403, "csrf", views.session_expired(t))

    async def _session(self, request: web.Request, *, rotate: bool = True) -> webchat.Session:
        if request.method == "POST":
            self._check_origin(request)
        current = await webchat.session(self.rt, request.cookies.get(guard.COOKIE))
        if current is None:
            t = self._browser_t(request)
            raise Refusal(401, "session", views.session_expired(t))
        return current

    def _rate(self, request: web.Request, current: webchat.Session, t: Translator) -> None:
        for key, limit in ((f"msg:{current.resident_id}", self._config.messages_per_minute),
                           ("addr:" + guard.client_address(request),
                            self._config.messages_per_minute_per_address)):
            wait = self.limits.hit(key, limit, 60)
            if wait is not None:
                raise Refusal(429, "rate", views.too_many(t), wait)

    async def _rotate_after(self, request: web.Request, response: web.Response,
                            current: webchat.Session) -> None:
        """The session's first use replaces its token (see WebSession.rotated)."""
        if current.rotated:
            return
        token, _ = await webchat.rotate(self.rt, current)
        self._set_cookie(request, response, token)

    def _set_cookie(self, request: web.Request, response: web.StreamResponse,
                    token: str) -> None:
        guard.set_cookie(response, token,
                         secure=guard.is_https(self._config.public_url, request),
                         max_age=int(self._config.session_idle.total_seconds()))

    # -- rendering -------------------------------------------------------------------------------

    def _who(self, request: web.Request, current: webchat.Session):
        return webchat.who(current, rules.browser_language(request.headers.get(
            "Accept-Language")))

    def _browser_t(self, request: web.Request) -> Translator:
        return self.rt.translator(rules.page_language(request.headers.get("Accept-Language"),
                                                      self.rt.config.default_language))

    async def _translator(self, request: web.Request, current: webchat.Session) -> Translator:
        return await webchat.language_of(self.rt, current, rules.browser_language(
            request.headers.get("Accept-Language")))

    async def _entries(self, current: webchat.Session, after: int, *,
                       more: dict[str, Any] | None = None) -> web.Response:
        found, cursor = await webchat.entries(self.rt, current, after)
        return guard.json_response({"messages": [self._message(e) for e in found],
                                    "cursor": cursor, **(more or {})})

    def _message(self, entry) -> dict[str, Any]:
        shown = entry.body
        photos_ = [f"/chat/api/file/{entry.seq}/{i}" for i, _ in
                   enumerate(shown.get("photos") or [])]
        document = shown.get("document")
        if isinstance(document, dict):
            document = {"url": f"/chat/api/file/{entry.seq}/{len(photos_)}",
                        "name": document.get("name", "file")}
        buttons = [[b for b in row if b.get("url") or inputs.shown(b.get("data", ""))]
                   for row in shown.get("buttons") or []]
        return {"seq": entry.seq, "id": entry.message_id, "edit": entry.edit,
                "from": entry.sender, "html": shown.get("html", ""),
                "buttons": [row for row in buttons if row], "ask": shown.get("ask", "nothing"),
                "ask_label": shown.get("ask_label", ""), "photos": photos_,
                "document": document, "deleted": bool(shown.get("deleted")),
                "at": entry.created_at.isoformat()}

    def _refused(self, refusal: Refusal, request: web.Request | None = None) -> web.Response:
        message = refusal.message
        if not message:  # refused before the person's language was known
            t = (self._browser_t(request) if request else
                 self.rt.translator(self.rt.config.default_language))
            message = (views.photo_too_large(t, self._config.max_upload_bytes // 1_000_000)
                       if refusal.code == "too_large" else views.bad_request(t))
        response = guard.json_response({"error": refusal.code, "message": message},
                                       status=refusal.status)
        if refusal.retry_after is not None:
            response.headers["Retry-After"] = str(math.ceil(refusal.retry_after))
        return response


# -- helpers ---------------------------------------------------------------------------------------


def _after(request: web.Request) -> int:
    raw = request.query.get("after", "0")
    return int(raw) if raw.isdigit() and len(raw) < 10 else 0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


async def _json(request: web.Request) -> dict[str, Any]:
    if guard.too_large(request, 64 * 1024):
        raise Refusal(413, "too_large", "")
    payload = await guard.json_object(request)
    if payload is None:
        raise Refusal(400, "bad_request", "")
    return payload


async def _form(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """A photo upload: its key and the file's bytes (at most ``max_bytes``; the name and the
    declared type are not looked at)."""
    if guard.too_large(request, max_bytes + 64 * 1024):
        raise Refusal(413, "too_large", "")
    out: dict[str, Any] = {}
    try:
        reader = await request.multipart()
        async for part in reader:
            if part.name == "key":
                out["key"] = (await part.read(decode=True)).decode("utf-8", "replace")[:64]
            elif part.name == "file":
                data = bytearray()
                while chunk := await part.read_chunk(64 * 1024):
                    data.extend(chunk)
                    if len(data) > max_bytes:
                        raise Refusal(413, "too_large", "")
                out["file"] = bytes(data)
    except (ValueError, AssertionError) as exc:
        raise Refusal(400, "bad_request", "") from exc
    return out
