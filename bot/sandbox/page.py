"""The sandbox's page and the JSON/WebSocket API it (and the end-to-end tests) use.

``GET /`` the page; ``GET /static/…`` its script and style;
``GET /sandbox/state`` everything to draw: texts in the page's language, people, panes, each
chat's messages, reply keyboards and command menus, the map, violations, the bot's status, the
address of the bot's web chat (when the sandbox runs a bot that serves one);
``GET /sandbox/events`` (WebSocket) each change as it happens;
``POST /sandbox/chats/{chat_id}/messages`` a person writes (JSON: text, location or contact;
multipart: photos or a document); ``…/press`` an inline button; ``…/edit`` an own message;
``POST /sandbox/people/{user_id}/blocked`` a person blocks or unblocks the bot;
``POST /sandbox/language`` the page's (and every person's app's) language;
``POST /sandbox/bot/restart``; ``GET /sandbox/files/{file_id}``; ``GET /sandbox/violations``.
A request the page could not have made (a stranger in a chat, a button that is not there)
gets a 400 with ``{"error": …}`` in the page's language.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from bot.i18n import LANGUAGE_NAMES, LANGUAGES
from bot.sandbox.people import PeopleError
from bot.sandbox.texts import PAGE_TEXTS
from bot.sandbox.world import JSON, Upload

if TYPE_CHECKING:  # server.py builds the page: importing it here would be a cycle
    from bot.sandbox.server import Sandbox

# A Telegram app's language_code for each of gridgate's languages.
APP_LANGUAGE = {"zh_Hans": "zh-hans", "zh_Hant": "zh-hant", "en": "en"}
_MAX_BACKLOG = 5000  # events waiting for one page
_STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
                 ".svg": "image/svg+xml", ".png": "image/png"}
_MAGIC = ((b"\x89PNG", "image/png"), (b"\xff\xd8", "image/jpeg"), (b"GIF8", "image/gif"),
          (b"RIFF", "image/webp"), (b"%PDF", "application/pdf"))


def add_page(app: web.Application, sandbox: Sandbox) -> None:
    page = _Page(sandbox)
    app.middlewares.append(_same_origin)
    app.router.add_get("/", page.index)
    app.router.add_get("/static/{name}", page.static)
    app.router.add_get("/sandbox/state", page.state)
    app.router.add_get("/sandbox/events", page.events)
    app.router.add_post("/sandbox/chats/{chat_id}/messages", page.send)
    app.router.add_post("/sandbox/chats/{chat_id}/press", page.press)
    app.router.add_post("/sandbox/chats/{chat_id}/edit", page.edit)
    app.router.add_post("/sandbox/people/{user_id}/blocked", page.blocked)
    app.router.add_post("/sandbox/language", page.set_language)
    app.router.add_post("/sandbox/bot/restart", page.restart_bot)
    app.router.add_get("/sandbox/files/{file_id}", page.file)
    app.router.add_get("/sandbox/violations", page.violations)


class _Page:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    @property
    def t(self):
        return self.sandbox.catalogs[self.sandbox.language]

    # -- the page itself ------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.Response:
        return self._static_file("index.html")

    async def static(self, request: web.Request) -> web.Response:
        return self._static_file(request.match_info["name"])

    def _static_file(self, name: str) -> web.Response:
        suffix = name[name.rfind("."):] if "." in name else ""
        if "/" in name or name.startswith(".") or suffix not in _STATIC_TYPES:
            raise web.HTTPNotFound()
        found = resources.files("bot.sandbox") / "static" / name
        if not found.is_file():
            raise web.HTTPNotFound()
        return web.Response(body=found.read_bytes(), content_type=_STATIC_TYPES[suffix],
                            charset="utf-8" if suffix in (".html", ".js", ".css") else None,
                            headers={"Cache-Control": "no-cache"})

    # -- reading --------------------------------------------------------------------------------
    async def state(self, request: web.Request) -> web.Response:
        sb, world = self.sandbox, self.sandbox.world
        t = self.t
        panes = []
        for pane in sb.panes:
            chat = world.chat(pane.chat_id)
            panes.append({
                "chat_id": pane.chat_id, "type": chat["type"], "role": t(pane.role),
                "title": chat.get("title") or sb.people.persons[pane.chat_id].name,
                "speakers": list(pane.speakers), "place": pane.place,
                "blocked": chat["type"] == "private" and sb.people.has_blocked(pane.chat_id),
                "messages": [m for (cid, _), m in sorted(world.messages.items())
                             if cid == pane.chat_id],
                "keyboard": world.reply_keyboards.get(pane.chat_id),
            })
        return _json({
            "language": sb.language,
            "languages": [{"code": code, "name": LANGUAGE_NAMES[code]} for code in LANGUAGES],
            "texts": {key: t(msgid) for key, msgid in PAGE_TEXTS.items()},
            "bot": world.bot_user,
            "bot_status": sb.bot_status,
            # The bot's web chat, opened in a tab of its own (it refuses to be framed).
            "web_chat_url": sb.web_chat_url,
            "people": [{"id": p.id, "name": p.name, "phone": p.phone,
                        "role": t(p.role) if p.role else None}
                       for p in sb.people.persons.values()],
            "panes": panes,
            "commands": sb.command_menus(),
            "map": sb.map,
            "violations": world.violations,
            # What the calls are checked against (None: nothing, so no violation can show).
            "spec": world.spec.version if world.spec is not None else None,
        })

    async def events(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(heartbeat=30)
        await socket.prepare(request)
        # A page that cannot keep up is dropped rather than queued for without end; it
        # reconnects and reads the whole state again.
        queue: asyncio.Queue[JSON | None] = asyncio.Queue(maxsize=_MAX_BACKLOG)

        def deliver(event: JSON) -> None:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)

        unsubscribe = self.sandbox.subscribe(deliver)

        async def forward() -> None:
            while (event := await queue.get()) is not None:
                await socket.send_str(json.dumps(event, ensure_ascii=False))
            await socket.close(message=b"too far behind; read the state again")

        sender = asyncio.create_task(forward())
        try:
            async for message in socket:  # the page only listens; this notices it leaving
                if message.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            unsubscribe()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender
        return socket

    async def file(self, request: web.Request) -> web.Response:
        found = self.sandbox.world.files.get(request.match_info["file_id"])
        if found is None or not found[1]:
            raise web.HTTPNotFound()
        content = found[1]
        kind = next((k for magic, k in _MAGIC if content.startswith(magic)),
                    "application/octet-stream")
        return web.Response(body=content, content_type=kind,
                            headers={"Cache-Control": "max-age=86400"})

    async def violations(self, request: web.Request) -> web.Response:
        return _json({"violations": self.sandbox.world.violations})

    # -- people acting --------------------------------------------------------------------------
    async def send(self, request: web.Request) -> web.Response:
        chat_id = _int(request.match_info["chat_id"])
        people = self.sandbox.people
        was_blocked = people.has_blocked(chat_id)  # writing to the bot again unblocks it
        try:
            if request.content_type.startswith("multipart/"):
                form = await request.post()
                user_id, reply_to = _int(form.get("from")), _optional_int(form.get("reply_to"))
                caption = str(form.get("caption") or "")
                photos = [_upload(part) for part in form.getall("photo", [])]
                documents = [_upload(part) for part in form.getall("document", [])]
                if photos:
                    sent = people.send_photos(chat_id, user_id, photos, caption=caption,
                                              reply_to=reply_to)
                elif len(documents) == 1:
                    sent = [people.send_document(chat_id, user_id, documents[0],
                                                 caption=caption, reply_to=reply_to)]
                else:
                    raise PeopleError(PAGE_TEXTS["choose_file"])
            else:
                body = await _body(request)
                user_id, reply_to = _int(body.get("from")), _optional_int(body.get("reply_to"))
                if "location" in body:
                    where = body["location"] or {}
                    sent = [people.send_location(
                        chat_id, user_id, _float(where.get("latitude")),
                        _float(where.get("longitude")), reply_to=reply_to)]
                elif body.get("contact"):
                    sent = [people.share_contact(chat_id, user_id)]
                else:
                    sent = [people.say(chat_id, user_id, str(body.get("text") or ""),
                                       reply_to=reply_to)]
                # A contact or location button hides a one-time keyboard as a text one does.
                self._after_keyboard_press(chat_id, body)
        except PeopleError as exc:
            return self._refused(exc)
        if was_blocked and not people.has_blocked(chat_id):
            self.sandbox.publish({"type": "blocked", "user_id": chat_id, "blocked": False})
        return _json({"messages": sent})

    def _after_keyboard_press(self, chat_id: int, body: JSON) -> None:
        """A one-time reply keyboard hides once one of its buttons was pressed."""
        keyboard = self.sandbox.world.reply_keyboards.get(chat_id)
        if body.get("keyboard") and keyboard and keyboard.get("one_time_keyboard"):
            del self.sandbox.world.reply_keyboards[chat_id]
            self.sandbox.world.emit({"event": "keyboard", "chat_id": chat_id})

    async def press(self, request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            query_id = self.sandbox.people.press(
                _int(request.match_info["chat_id"]), _int(body.get("message_id")),
                _int(body.get("from")), str(body.get("data") or ""))
        except PeopleError as exc:
            return self._refused(exc)
        return _json({"query_id": query_id})

    async def edit(self, request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            message = self.sandbox.people.edit(
                _int(request.match_info["chat_id"]), _int(body.get("message_id")),
                _int(body.get("from")), str(body.get("text") or ""))
        except PeopleError as exc:
            return self._refused(exc)
        return _json({"message": message})

    async def blocked(self, request: web.Request) -> web.Response:
        body = await _body(request)
        people = self.sandbox.people
        user_id = _int(request.match_info["user_id"])
        try:
            people.person(user_id)
        except PeopleError as exc:
            return self._refused(exc)
        if bool(body.get("blocked")) != people.has_blocked(user_id):
            (people.block if body.get("blocked") else people.unblock)(user_id)
        self.sandbox.publish({"type": "blocked", "user_id": user_id,
                              "blocked": people.has_blocked(user_id)})
        return _json({"blocked": people.has_blocked(user_id)})

    async def set_language(self, request: web.Request) -> web.Response:
        body = await _body(request)
        language = body.get("language")
        if language not in LANGUAGES:
            return self._refused(PeopleError(PAGE_TEXTS["unknown_language"]))
        self.sandbox.language = language
        self.sandbox.people.set_language(APP_LANGUAGE[language])
        self.sandbox.publish({"type": "language", "language": language})
        return _json({"language": language})

    async def restart_bot(self, request: web.Request) -> web.Response:
        if self.sandbox.restart_bot is None:
            return self._refused(PeopleError(PAGE_TEXTS["no_restart"]))
        await self.sandbox.restart_bot()
        return _json({"restarting": True})

    def _refused(self, error: PeopleError) -> web.Response:
        return _json({"error": self.t(error.msgid, **error.values)}, status=400)


@web.middleware
async def _same_origin(request: web.Request, handler: Any) -> web.StreamResponse:
    """The page's API acts for people and shows their chats: only the page itself may use it.
    A browser names the page a request comes from (Origin) on every POST and WebSocket; another
    site's name is refused, so no web page elsewhere can write or read here. (Requests without
    an Origin come from programs, not from other sites in a browser.)"""
    origin = request.headers.get("Origin")
    if request.path.startswith("/sandbox/") and origin is not None and \
            urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text="the sandbox's API serves only its own page")
    return await handler(request)


async def _body(request: web.Request) -> JSON:
    if request.content_type != "application/json":
        # No form or text/plain: those are what another site's page could send unasked.
        raise web.HTTPUnsupportedMediaType(text="send JSON (Content-Type: application/json)")
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the request body is not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the request body must be a JSON object")
    return body


def _int(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise web.HTTPBadRequest(text=f"not a whole number: {value!r}") from None


def _optional_int(value: Any) -> int | None:
    return None if value in (None, "", "null") else _int(value)


def _float(value: Any) -> float:
    try:
        return float(str(value))
    except ValueError:
        raise web.HTTPBadRequest(text=f"not a number: {value!r}") from None


def _upload(part: Any) -> Upload:
    if not isinstance(part, web.FileField):
        raise web.HTTPBadRequest(text="expected a file")
    return Upload(part.filename, part.file.read(), part.content_type)


def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status,
                             dumps=lambda v: json.dumps(v, ensure_ascii=False))
