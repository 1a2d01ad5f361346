"""The Bot API over HTTP, served as api.telegram.org serves it, from a sandbox world.

``/bot<token>/<method>`` takes GET query strings, url-encoded and multipart forms and JSON
bodies; method names are case-insensitive; a wrong token is a 401 and an unknown method a 404.
Files are downloaded from ``/file/bot<token>/<file_path>``. Form fields carry complex values
as JSON text and are decoded by the parameter's declared type, so a text "123" stays a string:
the types come from the Bot API specification when the sandbox has one, else from
python-telegram-bot's own signatures (it implements the same API version).
"""

from __future__ import annotations

import inspect
import json
import logging
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

import telegram
from aiohttp import web
from telegram import Bot
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import TimedOut

from bot.sandbox.apispec import BotApiSpec
from bot.sandbox.world import ApiError, TelegramServer, Upload

log = logging.getLogger(__name__)

JSON = dict[str, Any]


def add_bot_api(app: web.Application, world: TelegramServer, token: str) -> None:
    """Serve the Bot API for the bot with this ``token`` on ``app``."""
    api = _BotApi(world, token)
    app.router.add_route("*", "/bot{token}/{method}", api.method)
    app.router.add_get("/file/bot{token}/{path:.+}", api.file)


class _BotApi:
    def __init__(self, world: TelegramServer, token: str) -> None:
        self.world = world
        self.token = token
        methods = set(world.spec.methods) if world.spec is not None else set(_ptb_text_fields())
        self.canonical = {name.lower(): name for name in methods}

    async def method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(ApiError(401, "Unauthorized"))
        name = request.match_info["method"]
        method = self.canonical.get(name.lower(), name)
        try:
            params, uploads = await _read_params(request, self._text_fields(method))
        except ValueError as exc:
            return _error(ApiError(400, f"Bad Request: {exc}"))
        except web.HTTPRequestEntityTooLarge:
            return _error(ApiError(413, "Request Entity Too Large"))
        try:
            status, body = await self.world.call(method, params, uploads)
        except TimedOut:  # a failure a test injected: the answer never comes back
            raise web.HTTPGatewayTimeout() from None
        return web.json_response(body, status=int(status), dumps=_dumps)

    async def file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(ApiError(401, "Unauthorized"))
        content = self.world.file_at(request.match_info["path"])
        if content is None:
            return _error(ApiError(404, "Not Found"))
        return web.Response(body=content, content_type="application/octet-stream")

    def _text_fields(self, method: str) -> frozenset[str]:
        spec = self.world.spec
        if spec is None:
            return _ptb_text_fields().get(method, frozenset())
        return _spec_text_fields(spec).get(method, frozenset())


async def _read_params(request: web.Request,
                       text_fields: frozenset[str]) -> tuple[JSON, dict[str, Upload]]:
    params: JSON = {}
    uploads: dict[str, Upload] = {}
    fields: Mapping[str, Any] = request.query
    if request.method == "POST" and request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ValueError("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ValueError("the request body must be a JSON object")
        # A JSON body may still carry a markup or a list as JSON text, as a form does.
        return {k: _decode(k in text_fields, v) for k, v in {**request.query, **body}.items()
                }, uploads
    if request.method == "POST" and request.can_read_body:
        form = await request.post()
        fields = {**request.query, **form}
    for name, value in fields.items():
        if isinstance(value, web.FileField):
            uploads[name] = Upload(value.filename, value.file.read(), value.content_type)
        else:
            params[name] = _decode(name in text_fields, value)
    return params, uploads


def _decode(is_text: bool, raw: Any) -> Any:
    if is_text or not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # "@channelname", a file_id, a word


def _error(error: ApiError) -> web.Response:
    return web.json_response(error.body, status=error.body["error_code"])


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@cache
def _spec_text_fields(spec: BotApiSpec) -> dict[str, frozenset[str]]:
    return {name: frozenset(f.name for f in method.fields.values() if f.types == ("String",))
            for name, method in spec.methods.items()}


@cache
def _ptb_text_fields() -> dict[str, frozenset[str]]:
    """Per Bot API method, the parameters python-telegram-bot types as plain text."""
    found: dict[str, frozenset[str]] = {}
    for name, function in inspect.getmembers(Bot, inspect.isfunction):
        if name[0].isupper() or name == name.lower():
            continue  # the camelCase aliases are the Bot API's method names
        text = frozenset(p.name for p in inspect.signature(function).parameters.values()
                         if _is_text(p.annotation))
        found[name] = text
    return found


def _is_text(annotation: Any) -> bool:
    """Sent as plain text: str, optionally with None, PTB's DefaultValue[str], or Telegram
    objects PTB reduces to a string id (``file_id: str | Document``) — not a list of strings,
    and not a markup object PTB sends as JSON."""
    if isinstance(annotation, str):  # a forward reference such as 'str | ChatInviteLink'
        members = [part.strip() for part in annotation.split("|")]
        return "str" in members and all(
            part in ("str", "None") or _reduced_to_text(getattr(telegram, part, None))
            for part in members)
    if annotation is str:
        return True
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType, DefaultValue):
        return False
    members = [arg for arg in typing.get_args(annotation)
               if arg is not type(None) and typing.get_args(arg) != (type(None),)]
    return any(_is_text(arg) for arg in members) and all(
        _is_text(arg) or _reduced_to_text(arg) for arg in members)


def _reduced_to_text(kind: Any) -> bool:
    # Markups and input media go as JSON; a file, link, gift or sticker object goes as its id.
    return isinstance(kind, type) and issubclass(kind, telegram.TelegramObject) and not \
        issubclass(kind, _SENT_AS_JSON)


_SENT_AS_JSON = (telegram.InlineKeyboardMarkup, telegram.ReplyKeyboardMarkup,
                 telegram.ReplyKeyboardRemove, telegram.ForceReply, telegram.InputMedia)
