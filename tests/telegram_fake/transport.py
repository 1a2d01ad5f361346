"""A fake Telegram Bot API server plugged into PTB as its HTTP layer.

Every outgoing call is checked against ``bot-api-10.0.json``; a violation fails the test (an
``ApiSpecViolation`` raised from the request, and kept in ``fake.violations`` in case the
application's error handler swallows it). The fake answers the way Telegram does, including
its error texts, so PTB raises its real exception types.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from telegram import Update
from telegram.error import TelegramError, TimedOut
from telegram.ext import ApplicationBuilder, ExtBot
from telegram.request import BaseRequest, RequestData

from bot.apispec import BotApiSpec, parse_html

JSON = dict[str, Any]

BOT_ID = 7000000001
BOT_USERNAME = "gridgate_test_bot"
TOKEN = f"{BOT_ID}:AAGridgateFakeTokenForTestsOnly"
BOT_USER: dict[str, Any] = {
    "id": BOT_ID,
    "is_bot": True,
    "first_name": "Gridgate",
    "username": BOT_USERNAME,
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
    "can_connect_to_business": False,
    "has_main_web_app": False,
}
SUPERGROUP_ID_BELOW = -1_000_000_000_000  # supergroup/channel ids are "-100" + the peer id
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the current message"
)
_DEFAULT_ERRORS = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot "
    "instance is running",
    502: "Bad Gateway",
}


def spec_path() -> Path:
    """``$GRIDGATE_BOT_API_SPEC`` or ``<project root>/../shared/telegram/bot-api-10.0.json``."""
    override = os.environ.get("GRIDGATE_BOT_API_SPEC")
    if override:
        return Path(override)
    root = Path(__file__).resolve().parents[2]
    return root.parent / "shared" / "telegram" / "bot-api-10.0.json"


def __getattr__(name: str) -> Path:
    """``SPEC_PATH`` is ``spec_path()`` computed when it is read, not when this module is
    imported: the environment is read then, and a monkeypatched $GRIDGATE_BOT_API_SPEC counts."""
    if name == "SPEC_PATH":
        return spec_path()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _load(path: Path) -> BotApiSpec:
    return BotApiSpec.load(path)


def load_spec(path: Path | None = None) -> BotApiSpec:
    path = path or spec_path()
    if not path.is_file():
        # Never skip: a missing spec must not silently turn every Telegram check off.
        raise FileNotFoundError(
            f"Bot API spec not found at {path}; expected ../shared/telegram/bot-api-10.0.json "
            "next to the project root, or set GRIDGATE_BOT_API_SPEC"
        )
    return _load(path.resolve())


class ApiSpecViolation(TelegramError, AssertionError):
    """A call Telegram would reject. A TelegramError so PTB re-raises it unchanged (PTB
    wraps any other exception from the HTTP layer in NetworkError, which looks retryable)."""

    def __init__(self, method: str, violations: list[str]) -> None:
        super().__init__(f"{method} violates Bot API 10.0:\n  " + "\n  ".join(violations))
        self.method = method
        self.violations = violations

    def __reduce__(self) -> tuple[type, tuple[str, list[str]]]:  # type: ignore[override]
        return self.__class__, (self.method, self.violations)


@dataclass
class Upload:
    filename: str | None
    content: bytes
    mime_type: str | None


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, Upload] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    result: Any = None
    error: dict[str, Any] | None = None  # Telegram's error body, when the call failed


@dataclass
class _Failure:
    method: str | None
    chat_id: int | str | None
    times: int | None
    body: dict[str, Any] | None
    timeout: bool
    delivered: bool

    def matches(self, method: str, params: dict[str, Any]) -> bool:
        if self.method not in (None, method):
            return False
        return self.chat_id is None or str(params.get("chat_id")) == str(self.chat_id)


class ApiError(Exception):
    def __init__(self, code: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            self.body["parameters"] = parameters


def error_body(
    error_code: int | None = None,
    description: str | None = None,
    *,
    retry_after: int | None = None,
    migrate_to_chat_id: int | None = None,
) -> dict[str, Any]:
    """Telegram's JSON error; PTB turns ``parameters`` into RetryAfter / ChatMigrated."""
    if retry_after is not None:
        code = error_code or 429
        text = description or f"Too Many Requests: retry after {retry_after}"
        return ApiError(code, text, retry_after=retry_after).body
    if migrate_to_chat_id is not None:
        text = description or "Bad Request: group chat was upgraded to a supergroup chat"
        return ApiError(error_code or 400, text, migrate_to_chat_id=migrate_to_chat_id).body
    code = error_code or 403
    return ApiError(code, description or _DEFAULT_ERRORS.get(code, "Internal Server Error")).body


class FakeTelegram(BaseRequest):
    """``ApplicationBuilder().request(fake).get_updates_request(fake.linked())``, or simply
    ``fake.application_builder()``. Both request objects share one recorded world."""

    def __init__(
        self,
        *,
        strict: bool = True,
        spec: BotApiSpec | None = None,
        clock: Callable[[], float] = time.time,
        _server: TelegramServer | None = None,
    ) -> None:
        self.server = _server or TelegramServer(spec or load_spec(), strict=strict, clock=clock)

    # -- wiring ---------------------------------------------------------------------------
    def linked(self) -> FakeTelegram:
        """A second request object (PTB wants one for getUpdates) sharing this fake's state."""
        return FakeTelegram(_server=self.server)

    @classmethod
    def pair(cls, **kwargs: Any) -> tuple[FakeTelegram, FakeTelegram]:
        fake = cls(**kwargs)
        return fake, fake.linked()

    def bot(self, **kwargs: Any) -> ExtBot[None]:
        return ExtBot(TOKEN, request=self, get_updates_request=self.linked(), **kwargs)

    def application_builder(self) -> ApplicationBuilder:  # type: ignore[type-arg]
        return ApplicationBuilder().token(TOKEN).request(self).get_updates_request(self.linked())

    # -- BaseRequest ------------------------------------------------------------------------
    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

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
        if "/file/bot" in url:
            return HTTPStatus.OK, self.server.download(
                url.split("/file/bot", 1)[1].split("/", 1)[1]
            )
        api_method = url.rsplit("/", 1)[-1]
        params: dict[str, Any] = {}
        uploads: dict[str, Upload] = {}
        if request_data is not None:
            # JSON round trip: PTB leaves StringEnum members and tuples in the values.
            params = {k: json.loads(json.dumps(v)) for k, v in request_data.parameters.items()}
            uploads = {name: _upload(part) for name, part in request_data.multipart_data.items()}
        code, body = await self.server.call(api_method, params, uploads)
        return code, json.dumps(body).encode()

    # -- records (delegated so tests can stay with `fake.`) ----------------------------------
    @property
    def calls(self) -> list[Call]:
        return self.server.calls

    @property
    def violations(self) -> list[str]:
        return self.server.violations

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.server.calls if c.method == method]

    def last(self, method: str | None = None) -> Call:
        matching = self.calls_to(method) if method else self.server.calls
        if not matching:
            seen = sorted({c.method for c in self.server.calls})
            raise AssertionError(f"no {method or 'API'} call was made; calls so far: {seen}")
        return matching[-1]

    def clear(self) -> None:
        """Forget recorded calls and violations; chats and messages stay."""
        self.server.calls.clear()
        self.server.violations.clear()

    def assert_no_violations(self) -> None:
        if self.server.violations:
            raise AssertionError("Bot API violations:\n  " + "\n  ".join(self.server.violations))

    def sent_texts(self, chat_id: int | None = None, *, raw: bool = False) -> list[str]:
        """Texts/captions the bot sent, in order: what the user saw, or with ``raw`` what the
        bot passed (HTML markup included)."""
        out = []
        for message, params in self.server.sent:
            if chat_id is not None and message["chat"]["id"] != chat_id:
                continue
            key = "text" if "text" in message else "caption"
            if key in message:
                out.append(params.get(key, message[key]) if raw else message[key])
        return out

    def messages_in(self, chat_id: int, *, include_incoming: bool = False) -> list[dict[str, Any]]:
        """The messages currently in a chat (after edits and deletions), oldest first."""
        return [
            copy.deepcopy(m)
            for (cid, mid), m in sorted(self.server.messages.items())
            if cid == chat_id and (include_incoming or (cid, mid) not in self.server.incoming)
        ]

    # -- the world --------------------------------------------------------------------------
    def add_chat(
        self,
        chat_id: int,
        type: str | None = None,
        *,
        title: str | None = None,
        username: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        is_forum: bool = False,
    ) -> dict[str, Any]:
        base = self.server.chats.get(chat_id) or self.server.infer_chat(chat_id)
        chat: dict[str, Any] = {"id": chat_id, "type": type or base["type"]}
        if chat["type"] == "private":
            chat["first_name"] = first_name or base.get("first_name") or f"User {chat_id}"
            if last_name:
                chat["last_name"] = last_name
        else:
            chat["title"] = title or base.get("title") or f"Chat {chat_id}"
            if is_forum:
                chat["is_forum"] = True
        if username:
            chat["username"] = username
        self.server.chats[chat_id] = chat
        return copy.deepcopy(chat)

    def add_user(self, user: dict[str, Any]) -> None:
        self.server.users[user["id"]] = dict(user)

    def set_member(self, chat_id: int, user_id: int, status: str, **fields: Any) -> None:
        """getChatMember answers: creator, administrator, member, restricted, left or kicked
        (``owner`` and ``banned`` are accepted for creator and kicked)."""
        member_status(self.server.spec, status)  # a typo fails here, not in getChatMember
        self.server.members[(chat_id, user_id)] = (status, fields)

    def add_file(self, file_id: str, content: bytes = b"", *, file_path: str | None = None) -> None:
        self.server.files[file_id] = (file_path or f"documents/{file_id}", content)

    def record_incoming(self, message: dict[str, Any]) -> None:
        """Make a user's message known (replies, copies and forwards can refer to it)."""
        self.server.store(message, incoming=True)

    def next_message_id(self, chat_id: int) -> int:
        return self.server.next_message_id(chat_id)

    def queue_update(self, update: Update | dict[str, Any]) -> None:
        """Delivered by the next getUpdates (polling tests); most tests call process_update."""
        data = update.to_dict() if isinstance(update, Update) else update
        self.server.pending_updates.append(data)

    # -- failures ---------------------------------------------------------------------------
    def fail(
        self,
        method: str | None,
        *,
        error_code: int | None = None,
        description: str | None = None,
        times: int | None = 1,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        chat_id: int | str | None = None,
        timeout: bool = False,
        delivered: bool = False,
    ) -> None:
        """The next ``times`` matching calls (``None``: all; ``method=None``: any method) fail.

        Defaults: 403 "Forbidden: bot was blocked by the user"; with ``retry_after`` a 429 that
        PTB raises as RetryAfter; with ``migrate_to_chat_id`` a 400 raised as ChatMigrated.
        ``timeout`` raises TimedOut instead; with ``delivered`` the call still takes effect
        first, like a request whose answer got lost.
        """
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None for every call), got {times}")
        body = None
        if not timeout:
            body = error_body(
                error_code,
                description,
                retry_after=retry_after,
                migrate_to_chat_id=migrate_to_chat_id,
            )
        self.server.failures.append(_Failure(method, chat_id, times, body, timeout, delivered))

    def block(self, user_id: int) -> None:
        """The user blocked the bot: every later call to that chat is a 403."""
        self.fail(None, chat_id=user_id, times=None)

    def remove_bot_from(self, chat_id: int) -> None:
        kind = "supergroup" if chat_id <= SUPERGROUP_ID_BELOW else "group"
        desc = f"Forbidden: bot was kicked from the {kind} chat"
        self.fail(None, chat_id=chat_id, times=None, description=desc)

    def migrate_chat(self, old_id: int, new_id: int) -> None:
        """The group became a supergroup: calls to the old id raise ChatMigrated."""
        old = self.server.chats.get(old_id) or self.server.infer_chat(old_id)
        self.add_chat(new_id, "supergroup", title=old.get("title"))
        self.fail(None, chat_id=old_id, times=None, migrate_to_chat_id=new_id)


def _upload(part: Any) -> Upload:
    filename, content, *rest = part
    data = content.read() if hasattr(content, "read") else bytes(content)
    return Upload(filename, data, rest[0] if rest else None)


class TelegramServer:
    """The shared state behind one or more FakeTelegram request objects."""

    def __init__(self, spec: BotApiSpec, *, strict: bool, clock: Callable[[], float]) -> None:
        self.spec = spec
        self.strict = strict
        self.clock = clock
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self.failures: list[_Failure] = []
        self.chats: dict[int, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.members: dict[tuple[int, int], tuple[str, dict[str, Any]]] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.incoming: set[tuple[int, int]] = set()  # messages users sent (factories)
        # What Telegram compares besides the text in "message is not modified": the entities.
        self.formats: dict[tuple[int, int], Any] = {}
        self.sent: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (message, params)
        self.files: dict[str, tuple[str, bytes]] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.pending_updates: list[dict[str, Any]] = []
        self._message_ids: dict[int, int] = {}
        self._counter = 0

    # -- request cycle ------------------------------------------------------------------------
    async def call(
        self, method: str, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> tuple[int, dict[str, Any]]:
        record = Call(method, params, uploads)
        self.calls.append(record)
        record.violations = self.spec.validate_call(
            method, params, {name: up.content for name, up in uploads.items()}
        )
        if record.violations:
            self.violations.extend(f"{method}: {v}" for v in record.violations)
            if self.strict:
                raise ApiSpecViolation(method, record.violations)
            code = 404 if method not in self.spec.methods else 400
            text = "Not Found" if code == 404 else f"Bad Request: {record.violations[0]}"
            record.error = ApiError(code, text).body
            return code, record.error
        failure = self._take_failure(method, params)
        if failure is not None and (failure.timeout and not failure.delivered):
            record.error = {"ok": False, "description": "timed out"}
            raise TimedOut()
        if failure is not None and failure.body is not None:
            record.error = failure.body
            return failure.body["error_code"], failure.body
        try:
            record.result = await self.answer(method, params)
        except ApiError as exc:
            record.error = exc.body
            return exc.body["error_code"], exc.body
        if failure is not None:  # timed out after Telegram had done the work
            record.error = {"ok": False, "description": "timed out after delivery"}
            raise TimedOut()
        return HTTPStatus.OK, {"ok": True, "result": record.result}

    def _take_failure(self, method: str, params: dict[str, Any]) -> _Failure | None:
        for failure in self.failures:
            if failure.matches(method, params):
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self.failures.remove(failure)
                return failure
        return None

    async def answer(self, method: str, params: dict[str, Any]) -> Any:
        # A parameter the handlers need but the call lacks is Telegram's 400, never a KeyError
        # (PTB would turn that into a NetworkError, which looks retryable).
        params = _Params(params)
        handler = getattr(self, f"api_{method}", None)
        if handler is not None:
            return (
                await handler(params) if asyncio.iscoroutinefunction(handler) else handler(params)
            )
        returns = self.spec.returns[method]
        if returns == ["Boolean"]:
            return True
        edits_message = (
            method.startswith("editMessage")
            or "inline_message_id" in params
            or ("message_id" in params and not method.startswith(("send", "copy", "forward")))
        )
        if "Message" in returns and edits_message:
            return self.edit(method, params)  # editMessageText/Caption/Media/…, stopMessage…
        if returns == ["Message"] and ("chat_id" in params or method.startswith("send")):
            return self.send(method, params)
        return self.spec.sample(returns[0])

    def download(self, file_path: str) -> bytes:
        file_path = unquote(file_path)
        for path, content in self.files.values():
            if path == file_path:
                return content
        return b"fake file content"

    # -- chats and messages -------------------------------------------------------------------
    def now(self) -> int:
        return int(self.clock())

    def unique(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter:06d}"

    def next_message_id(self, chat_id: int) -> int:
        self._message_ids[chat_id] = self._message_ids.get(chat_id, 0) + 1
        return self._message_ids[chat_id]

    def infer_chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id > 0:
            first_name = self.users.get(chat_id, {}).get("first_name", f"User {chat_id}")
            return {"id": chat_id, "type": "private", "first_name": first_name}
        kind = "supergroup" if chat_id <= SUPERGROUP_ID_BELOW else "group"
        return {"id": chat_id, "type": kind, "title": f"{kind.title()} {chat_id}"}

    def chat(self, chat_id: int | str) -> dict[str, Any]:
        if isinstance(chat_id, str) and not chat_id.lstrip("-").isdigit():
            for chat in self.chats.values():
                if f"@{chat.get('username')}".lower() == chat_id.lower():
                    return chat
            raise ApiError(400, "Bad Request: chat not found")
        chat_id = int(chat_id)
        return self.chats.get(chat_id) or self.infer_chat(chat_id)

    def store(self, message: dict[str, Any], *, incoming: bool = False, fmt: Any = None) -> None:
        key = chat_id, message_id = message["chat"]["id"], message["message_id"]
        self.messages[key] = copy.deepcopy(message)
        self.formats[key] = fmt
        if incoming:
            self.incoming.add(key)
        self._message_ids[chat_id] = max(self._message_ids.get(chat_id, 0), message_id)

    def message(self, chat_id: int | str, message_id: int, missing: str) -> dict[str, Any]:
        found = self.messages.get((self.chat(chat_id)["id"], message_id))
        if found is None:
            raise ApiError(400, f"Bad Request: {missing}")
        return found

    def new_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self.chat(params["chat_id"])
        message: dict[str, Any] = {
            "message_id": self.next_message_id(chat["id"]),
            "date": self.now(),
            "chat": copy.deepcopy(chat),
        }
        if chat["type"] == "channel":
            message["sender_chat"] = copy.deepcopy(chat)
        else:
            message["from"] = dict(BOT_USER)
        if "message_thread_id" in params and chat.get("is_forum"):
            message.update(message_thread_id=params["message_thread_id"], is_topic_message=True)
        reply = params.get("reply_parameters") or {}
        replied = self.messages.get((chat["id"], reply.get("message_id", 0)))
        if replied is not None:
            message["reply_to_message"] = {
                k: v for k, v in replied.items() if k != "reply_to_message"
            }
        markup = params.get("reply_markup") or {}
        if "inline_keyboard" in markup:  # only inline keyboards come back in the Message
            message["reply_markup"] = markup
        return message

    def sent_message(
        self, message: dict[str, Any], params: dict[str, Any], fmt: Any = None
    ) -> dict[str, Any]:
        key = "text" if "text" in message else "caption"
        self.store(message, fmt=fmt if fmt is not None else _format(params, key))
        self.sent.append((copy.deepcopy(message), params))
        return message

    def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        message = self.new_message(params)
        kind = _snake(method.removeprefix("send"))
        if "text" in params:
            message["text"] = _visible(params["text"], params.get("parse_mode"))
        if params.get("caption"):
            message["caption"] = _visible(params["caption"], params.get("parse_mode"))
        if kind == "photo":
            message["photo"] = self.photo_sizes(params.get("photo"))
        elif kind in _MEDIA:
            message[kind] = self.media(kind, params.get(kind))
        elif kind in ("location", "venue"):
            location = {"latitude": params["latitude"], "longitude": params["longitude"]}
            message["location"] = location
            if kind == "venue":
                venue = {k: params[k] for k in ("title", "address") if k in params}
                message["venue"] = {"location": location, **venue}
        elif kind == "contact":
            fields = ("phone_number", "first_name", "last_name", "vcard")
            message["contact"] = {k: params[k] for k in fields if k in params}
        elif kind == "dice":
            message["dice"] = {"emoji": params.get("emoji", "🎲"), "value": 1}
        return self.sent_message(message, params)

    def file_ids(self, value: Any, prefix: str) -> dict[str, str]:
        # Re-sending by file_id keeps the id; uploads and URLs get a fresh one.
        if isinstance(value, str) and not value.startswith(("attach://", "http://", "https://")):
            return {"file_id": value, "file_unique_id": f"u-{value}"[:32]}
        file_id = self.unique(prefix)
        return {"file_id": file_id, "file_unique_id": f"u-{file_id}"}

    def photo_sizes(self, value: Any) -> list[dict[str, Any]]:
        ids = self.file_ids(value, "photo-")
        sizes = [(90, 67, 1_200), (320, 240, 15_000), (1280, 960, 120_000)]
        return [
            {
                "file_id": ids["file_id"] if w == 1280 else f"{ids['file_id']}-{w}",
                "file_unique_id": f"{ids['file_unique_id']}-{w}",
                "width": w,
                "height": h,
                "file_size": size,
            }
            for w, h, size in sizes
        ]

    def media(self, kind: str, value: Any) -> dict[str, Any]:
        return {**self.file_ids(value, f"{kind}-"), **_MEDIA.get(kind, {})}

    # -- method handlers ------------------------------------------------------------------
    def api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(BOT_USER)

    async def api_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        # Updates stay queued until a later offset confirms them, as on Telegram.
        offset = params.get("offset", 0)
        self.pending_updates = [u for u in self.pending_updates if u["update_id"] >= offset]
        ready = self.pending_updates[: params.get("limit", 100)]
        if not ready:
            # Long polling would wait; a short pause keeps a polling loop from spinning.
            await asyncio.sleep(min(float(params.get("timeout", 0)), 0.05))
        return ready

    def api_sendMediaGroup(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        group_id = self.unique("album-")
        messages = []
        for item in map(_Params, params["media"]):
            message = self.new_message(params)
            message["media_group_id"] = group_id
            kind = item["type"]
            if kind == "photo":
                message["photo"] = self.photo_sizes(item["media"])
            else:
                message[kind] = self.media(kind, item["media"])
            if item.get("caption"):
                message["caption"] = _visible(item["caption"], item.get("parse_mode"))
            messages.append(self.sent_message(message, item))
        return messages

    def api_copyMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"message_id": self.copy(params, forward=False)["message_id"]}

    def api_forwardMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.copy(params, forward=True)

    def copy(self, params: dict[str, Any], *, forward: bool) -> dict[str, Any]:
        verb = "forward" if forward else "copy"
        source = self.message(
            params["from_chat_id"], params["message_id"], f"message to {verb} not found"
        )
        message = self.new_message(params)
        for key in ("text", "caption", *_MEDIA, "photo", "location", "venue", "contact"):
            if key in source:
                message[key] = copy.deepcopy(source[key])
        fmt = self.formats.get((source["chat"]["id"], source["message_id"]))
        if not forward and "caption" in params:
            message["caption"] = _visible(params["caption"], params.get("parse_mode"))
            fmt = _format(params, "caption")
        if forward:
            origin = {"date": source["date"]}
            if "from" in source:
                origin.update(type="user", sender_user=source["from"])
            else:
                origin.update(type="channel", chat=source["chat"], message_id=source["message_id"])
            message["forward_origin"] = origin
        return self.sent_message(message, params, fmt)

    def edit(self, method: str, params: dict[str, Any]) -> Any:
        if "inline_message_id" in params:
            return True  # Telegram answers True for messages sent via inline mode
        old = self.message(params["chat_id"], params["message_id"], "message to edit not found")
        key = (old["chat"]["id"], old["message_id"])
        if key in self.incoming:
            raise ApiError(400, "Bad Request: message can't be edited")
        new, fmt = copy.deepcopy(old), self.formats.get(key)
        if method == "editMessageText":
            if "text" not in old:
                raise ApiError(400, "Bad Request: there is no text in the message to edit")
            new["text"] = _visible(params["text"], params.get("parse_mode"))
            fmt = _format(params, "text")
        elif method == "editMessageCaption":
            if "text" in old:
                raise ApiError(400, "Bad Request: there is no caption in the message to edit")
            new.pop("caption", None)
            if params.get("caption"):
                new["caption"] = _visible(params["caption"], params.get("parse_mode"))
            fmt = _format(params, "caption")
        # Editing without reply_markup removes the inline keyboard, as on Telegram.
        new.pop("reply_markup", None)
        if "inline_keyboard" in (params.get("reply_markup") or {}):
            new["reply_markup"] = params["reply_markup"]
        compared = ("editMessageText", "editMessageCaption", "editMessageReplyMarkup")
        if method in compared and _content(new, fmt) == _content(old, self.formats.get(key)):
            raise ApiError(400, NOT_MODIFIED)
        new["edit_date"] = self.now()
        self.store(new, fmt=fmt)
        return new

    def api_deleteMessage(self, params: dict[str, Any]) -> bool:
        key = (self.chat(params["chat_id"])["id"], params["message_id"])
        if self.messages.pop(key, None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    def api_deleteMessages(self, params: dict[str, Any]) -> bool:
        chat_id = self.chat(params["chat_id"])["id"]
        for message_id in params["message_ids"]:
            self.messages.pop((chat_id, message_id), None)
        return True

    def api_getChat(self, params: dict[str, Any]) -> dict[str, Any]:
        info = self.spec.sample("ChatFullInfo")
        info.update(accent_color_id=0, max_reaction_count=11, **self.chat(params["chat_id"]))
        return info

    def api_getChatMember(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, user_id = self.chat(params["chat_id"])["id"], params["user_id"]
        return self.chat_member(chat_id, user_id)

    def chat_member(self, chat_id: int, user_id: int) -> dict[str, Any]:
        status, overrides = self.members.get((chat_id, user_id), ("member", {}))
        default = {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}
        user = BOT_USER if user_id == BOT_ID else self.users.get(user_id, default)
        return chat_member(self.spec, status, user, **overrides)

    def api_getChatAdministrators(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        chat_id = self.chat(params["chat_id"])["id"]
        return [
            self.chat_member(chat_id, user_id)
            for (cid, user_id), (status, _) in self.members.items()
            if cid == chat_id and status in ("creator", "owner", "administrator")
        ]

    def api_banChatMember(self, params: dict[str, Any]) -> bool:
        self.members[(self.chat(params["chat_id"])["id"], params["user_id"])] = ("kicked", {})
        return True

    def api_unbanChatMember(self, params: dict[str, Any]) -> bool:
        self.members[(self.chat(params["chat_id"])["id"], params["user_id"])] = ("left", {})
        return True

    def api_createForumTopic(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self.chat(params["chat_id"])
        if params["chat_id"] in self.chats and not chat.get("is_forum"):
            raise ApiError(400, "Bad Request: the chat is not a forum")
        topic = {
            "message_thread_id": self.next_message_id(chat["id"]),
            "name": params["name"],
            "icon_color": params.get("icon_color", 7322096),
        }
        if "icon_custom_emoji_id" in params:
            topic["icon_custom_emoji_id"] = params["icon_custom_emoji_id"]
        return topic

    def api_getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = params["file_id"]
        path, content = self.files.setdefault(file_id, (f"documents/{file_id}", b""))
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}"[:32],
            "file_size": len(content),
            "file_path": path,
        }

    def api_setMyCommands(self, params: dict[str, Any]) -> bool:
        self.commands[_scope_key(params)] = params["commands"]
        return True

    def api_deleteMyCommands(self, params: dict[str, Any]) -> bool:
        self.commands.pop(_scope_key(params), None)
        return True

    def api_getMyCommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return copy.deepcopy(self.commands.get(_scope_key(params), []))


_MEDIA: dict[str, dict[str, Any]] = {
    "document": {"file_name": "document.pdf", "mime_type": "application/pdf", "file_size": 52_000},
    "audio": {"duration": 30, "mime_type": "audio/mpeg", "file_size": 480_000},
    "video": {"width": 640, "height": 360, "duration": 10, "file_size": 900_000},
    "animation": {"width": 320, "height": 240, "duration": 3, "file_size": 90_000},
    "voice": {"duration": 4, "mime_type": "audio/ogg", "file_size": 9_000},
    "video_note": {"length": 240, "duration": 6, "file_size": 300_000},
    "sticker": {
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": "👍",
    },
}


_STATUS_ALIASES = {"owner": "creator", "banned": "kicked"}


def member_status(spec: BotApiSpec, status: str) -> str:
    """The ChatMember subtype for ``status``; a ValueError naming the valid ones otherwise."""
    wanted = _STATUS_ALIASES.get(status, status)
    subtypes = spec.types["ChatMember"].subtypes
    found = next((s for s in subtypes if spec.types[s].fields["status"].const == wanted), None)
    if found is None:
        valid = [spec.types[s].fields["status"].const for s in subtypes]
        raise ValueError(
            f"unknown chat member status {status!r}; valid: {', '.join(map(str, valid))} "
            f"(or {', '.join(_STATUS_ALIASES)})"
        )
    return found


def chat_member(spec: BotApiSpec, status: str, user: dict[str, Any], **fields: Any) -> JSON:
    """A ChatMember* object for ``status`` with every field the spec requires."""
    status = _STATUS_ALIASES.get(status, status)
    member = spec.sample(member_status(spec, status))
    if status == "administrator":  # an admin who can do what a bot admin usually needs
        member.update({k: True for k in member if k.startswith("can_") and k != "can_be_edited"})
    if status == "restricted":
        member["is_member"] = True
    member.update(user=dict(user), **fields)
    return member


class _Params(dict[str, Any]):
    """Call parameters as the handlers see them: a missing one is a Bad Request."""

    def __missing__(self, key: str) -> Any:
        raise ApiError(400, f"Bad Request: {key} is empty")


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _visible(text: str, parse_mode: str | None) -> str:
    # MarkdownV2 is not parsed: the message keeps the raw text.
    return parse_html(text).text if (parse_mode or "").lower() == "html" else text


def _format(params: dict[str, Any], key: str) -> Any:
    """What Telegram compares besides the text: the formatting after parsing."""
    if (params.get("parse_mode") or "").lower() == "html":
        return parse_html(params[key]).entities if key in params else None
    return params.get("entities" if key == "text" else "caption_entities")


def _content(message: dict[str, Any], fmt: Any) -> tuple[Any, ...]:
    return message.get("text"), message.get("caption"), fmt or None, message.get("reply_markup")


def _scope_key(params: dict[str, Any]) -> tuple[str, str]:
    scope = params.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), params.get("language_code", "")


__all__ = [
    "BOT_ID",
    "BOT_USER",
    "BOT_USERNAME",
    "TOKEN",
    "ApiSpecViolation",
    "Call",
    "FakeTelegram",
    "TelegramServer",
    "Upload",
    "chat_member",
    "error_body",
    "load_spec",
    "member_status",
    "spec_path",
]
