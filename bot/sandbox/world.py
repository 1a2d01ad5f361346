"""A Bot API world: chats, people, messages, files and updates, answering as Telegram does.

The tests' fake transport (tests/telegram_fake) and the local sandbox server (bot/sandbox/api.py)
share it. Given the Bot API specification it checks every call and keeps each violation; without
one it still answers every method gridgate uses, and refuses the others with a 400.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import inspect
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from telegram import (
    ChatMemberAdministrator,
    ChatMemberBanned,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberOwner,
    ChatMemberRestricted,
)
from telegram.error import TelegramError, TimedOut

from bot.sandbox.apispec import BotApiSpec, parse_html, utf16_len
from bot.sandbox.flood import FloodControl, RateLimits, sends_messages

# What the rest of the sandbox, the tests' fake transport and the benchmarks may use; the
# underscored names are this module's own.
__all__ = [
    "BOT_ID", "BOT_USER", "BOT_USERNAME", "JSON", "MAX_DOWNLOAD_BYTES", "NOT_MODIFIED",
    "SUPERGROUP_ID_BELOW", "TOKEN", "ApiError", "ApiSpecViolation", "Call", "PlannedFailure",
    "TelegramServer", "Upload", "chat_member", "error_body", "member_status", "telegram_refusal",
]

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


def _base64(file_id: str, content: bytes) -> str:
    return base64.b64encode(content).decode()


# Telegram's own limits, with its own words: checked with or without the specification.
_TEXT_LIMIT, _CAPTION_LIMIT = 4096, 1024
# What the spec checker is stricter about than Telegram, which takes these as they are.
_TELEGRAM_TAKES = ('stray "&"', 'stray ">"', "mis-nested tags", "can't nest", "can't be nested")


def telegram_refusal(method: str, params: dict[str, Any]) -> ApiError | None:
    """Telegram's 400 for a text or caption it will not take, a button's data, a webhook's
    secret token."""
    secret = params.get("secret_token")
    if method == "setWebhook" and secret is not None and not (
            isinstance(secret, str) and _SECRET.fullmatch(secret)):
        return ApiError(400, "Bad Request: secret token contains unallowed characters")
    if method in ("sendMessage", "editMessageText"):
        found = _text_refusal(params, "text", _TEXT_LIMIT, "message is too long")
        if found is not None:
            return found
    elif method.startswith(("send", "copy", "editMessageCaption")) and "caption" in params:
        found = _text_refusal(params, "caption", _CAPTION_LIMIT, "message caption is too long")
        if found is not None:
            return found
    markup = params.get("reply_markup")
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    for row in rows if isinstance(rows, list) else ():
        for button in row if isinstance(row, list) else ():
            data = button.get("callback_data") if isinstance(button, dict) else None
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                return ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return None


def _text_refusal(params: dict[str, Any], key: str, most: int, too_long: str) -> ApiError | None:
    raw = params.get(key)
    if not isinstance(raw, str):
        return None
    visible = raw
    if str(params.get("parse_mode") or "").lower() == "html":
        parsed = parse_html(raw)
        broken = [v for v in parsed.violations if not any(t in v for t in _TELEGRAM_TAKES)]
        if broken:
            return ApiError(400, f"Bad Request: can't parse entities: {broken[0]}")
        visible = parsed.text
    if key == "text" and not visible.strip():
        return ApiError(400, "Bad Request: message text is empty")
    if utf16_len(visible) > most:
        return ApiError(400, f"Bad Request: {too_long}")
    return None


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
class PlannedFailure:
    """A failure planned for the next ``times`` calls (None: every call) of ``method`` (None:
    any) to ``chat_id`` (None: any chat): the error ``body`` Telegram would send, or a
    ``timeout``; ``delivered`` makes the call take effect first, as when only its answer is
    lost. Tests and the demo plan them in ``TelegramServer.failures``."""

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


class TelegramServer:
    """One Bot API world, shared by every request object or HTTP route that talks to it.

    ``spec`` None: no checks, and only the methods below (and in ``_RETURNS``) are answered.
    ``closed``: only what was made here exists (the sandbox). Open (the tests' fake), anyone
    is a member of any group and any callback query id is fresh.
    ``long_poll_cap`` bounds how long getUpdates waits for an update (None: its own timeout).
    ``rate_limits``: Telegram's flood control on the messages the bot sends (see
    bot/sandbox/flood.py), on ``monotonic`` time; None (the default) limits nothing. It can be
    set or cleared later too (``world.rate_limits = RateLimits()``); ``flood_refusals`` counts
    the 429s given since.
    """

    def __init__(
        self,
        spec: BotApiSpec | None,
        *,
        strict: bool,
        clock: Callable[[], float] = time.time,
        bot_user: JSON | None = None,
        closed: bool = False,
        long_poll_cap: float | None = 0.05,
        rate_limits: RateLimits | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.monotonic = monotonic
        self.flood: FloodControl | None = None
        self.rate_limits = rate_limits
        self.strict = strict
        self.clock = clock
        self.bot_user: JSON = dict(bot_user or BOT_USER)
        self.closed = closed
        self.long_poll_cap = long_poll_cap
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self.failures: list[PlannedFailure] = []
        self.chats: dict[int, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.members: dict[tuple[int, int], tuple[str, dict[str, Any]]] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.incoming: set[tuple[int, int]] = set()  # messages people sent
        self.started: set[int] = set()  # people who wrote to the bot (it may write to them)
        self.blocked_by: set[int] = set()  # people who blocked the bot
        # A long-running sandbox keeps only the newest calls; the tests' fake keeps them all.
        self.keep_calls: int | None = 1000 if closed else None
        # What Telegram compares besides the text in "message is not modified": the entities.
        self.formats: dict[tuple[int, int], Any] = {}
        self.sent: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (message, params)
        self.files: dict[str, tuple[str, bytes]] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.pending_updates: list[dict[str, Any]] = []
        self.reply_keyboards: dict[int, JSON] = {}  # the keyboard a chat shows under its input
        self.callback_queries: dict[str, JSON] = {}  # id → {"from": …, "answer": … or None}
        self.webhook: JSON | None = None  # setWebhook's parameters while one is set
        # The update types the bot asked for (getUpdates/setWebhook); None: Telegram's default.
        self.allowed_updates: list[str] | None = None
        # Called with every change people can see: {"event": "message" | "deleted" | …}.
        self.listeners: list[Callable[[JSON], None]] = []
        self._message_ids: dict[int, int] = {}
        self._counter = 0
        self._update_id = 0
        self._updates_arrived = asyncio.Event()
        self._polls = 0  # getUpdates calls so far: a newer one ends an older one's wait

    @property
    def bot_id(self) -> int:
        return int(self.bot_user["id"])

    @property
    def rate_limits(self) -> RateLimits | None:
        return self.flood.limits if self.flood is not None else None

    @rate_limits.setter
    def rate_limits(self, limits: RateLimits | None) -> None:
        self.flood = FloodControl(limits, self.monotonic) if limits is not None else None

    @property
    def flood_refusals(self) -> int:
        """How many 429s flood control gave (since rate limits were last set)."""
        return self.flood.refusals if self.flood is not None else 0

    def emit(self, event: JSON) -> None:
        for listener in list(self.listeners):
            listener(event)

    # -- request cycle ------------------------------------------------------------------------
    async def call(
        self, method: str, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> tuple[int, dict[str, Any]]:
        arrived = self.monotonic()  # flood control counts a call when it arrives
        record = Call(method, params, uploads)
        self.calls.append(record)
        if self.keep_calls is not None and len(self.calls) > self.keep_calls:
            del self.calls[: len(self.calls) - self.keep_calls]
        self.emit({"event": "call", "method": method})
        if self.spec is not None:
            record.violations = self.spec.validate_call(
                method, params, {name: up.content for name, up in uploads.items()}
            )
        if record.violations:
            self.violations.extend(f"{method}: {v}" for v in record.violations)
            self.emit({"event": "violation", "method": method, "violations": record.violations})
            if self.strict:
                raise ApiSpecViolation(method, record.violations)
            # Telegram's own words where it has them, else what the specification says.
            refusal = telegram_refusal(method, params)
            if refusal is None:
                unknown = self.spec is not None and method not in self.spec.methods
                refusal = ApiError(404, "Not Found") if unknown else ApiError(
                    400, f"Bad Request: {record.violations[0]}")
            record.error = refusal.body
            return refusal.body["error_code"], record.error
        failure = self._take_failure(method, params)
        if failure is not None and (failure.timeout and not failure.delivered):
            record.error = {"ok": False, "description": "timed out"}
            raise TimedOut()
        if failure is not None and failure.body is not None:
            record.error = failure.body
            return failure.body["error_code"], failure.body
        if self.flood is not None and sends_messages(method):
            retry_after = self.flood.admit(params.get("chat_id"), arrived)
            if retry_after is not None:
                flooded = ApiError(429, f"Too Many Requests: retry after {retry_after}",
                                   retry_after=retry_after)
                record.error = flooded.body
                return 429, flooded.body
        try:
            refusal = telegram_refusal(method, params)
            if refusal is not None:
                raise refusal
            record.result = await self.answer(method, params, uploads)
        except ApiError as exc:
            record.error = exc.body
            return exc.body["error_code"], exc.body
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
            # A parameter of the wrong shape: Telegram's 400, never a crash of the server.
            error = ApiError(400, f"Bad Request: wrong parameters ({type(exc).__name__})")
            record.error = error.body
            return 400, error.body
        if failure is not None:  # timed out after Telegram had done the work
            record.error = {"ok": False, "description": "timed out after delivery"}
            raise TimedOut()
        return HTTPStatus.OK, {"ok": True, "result": record.result}

    def _take_failure(self, method: str, params: dict[str, Any]) -> PlannedFailure | None:
        for failure in self.failures:
            if failure.matches(method, params):
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self.failures.remove(failure)
                return failure
        return None

    async def answer(
        self, method: str, params: dict[str, Any], uploads: dict[str, Upload] | None = None
    ) -> Any:
        # A parameter the handlers need but the call lacks is Telegram's 400, never a KeyError
        # (PTB would turn that into a NetworkError, which looks retryable).
        params = _Params(params)
        params.uploads = uploads or {}
        handler = getattr(self, f"api_{method}", None)
        if handler is not None:
            return (
                await handler(params) if asyncio.iscoroutinefunction(handler) else handler(params)
            )
        returns = self.spec.returns.get(method) if self.spec is not None else _RETURNS.get(method)
        if returns is None:
            raise ApiError(404, "Not Found")
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
        if self.spec is None:
            raise ApiError(404, "Not Found")
        return self.spec.sample(returns[0])

    # -- updates --------------------------------------------------------------------------------
    def push_update(self, payload: JSON) -> JSON | None:
        """Queue an update (``payload`` without ``update_id``); it gets the next id. An update
        of a type the bot did not ask for is dropped, as Telegram does (None)."""
        kind = next(iter(payload))
        wanted = kind in self.allowed_updates if self.allowed_updates else kind not in _OPT_IN
        if not wanted:
            return None
        self._update_id = max(self._update_id, *(u["update_id"] for u in self.pending_updates),
                              0) + 1
        update = {"update_id": self._update_id, **payload}
        self.pending_updates.append(update)
        self._updates_arrived.set()
        return update

    def queued(self, update: JSON) -> None:
        """An update made elsewhere (with its own ``update_id``) joins the queue."""
        self._update_id = max(self._update_id, update["update_id"])
        self.pending_updates.append(update)
        self._updates_arrived.set()

    def confirm(self, offset: int) -> None:
        """Updates below ``offset`` were received: Telegram forgets them."""
        self.pending_updates = [u for u in self.pending_updates if u["update_id"] >= offset]

    async def api_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        if "allowed_updates" in params:  # absent: the previous setting stays, as on Telegram
            self.allowed_updates = list(params["allowed_updates"] or []) or None
        self._polls += 1
        mine = self._polls
        self._updates_arrived.set()  # an older getUpdates still waiting ends with a conflict
        # Updates stay queued until a later offset confirms them, as on Telegram; a negative
        # offset keeps only that many of the newest.
        offset = int(params.get("offset") or 0)
        if offset < 0:
            self.pending_updates = self.pending_updates[offset:]
        else:
            self.confirm(offset)
        wait = float(params.get("timeout", 0))
        if self.long_poll_cap is not None:
            wait = min(wait, self.long_poll_cap)
        deadline = asyncio.get_running_loop().time() + wait
        while not self.pending_updates:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            self._updates_arrived.clear()
            try:
                await asyncio.wait_for(self._updates_arrived.wait(), left)
            except TimeoutError:
                break
            if self.webhook is not None:
                raise ApiError(409, "Conflict: terminated by setWebhook request")
            if self._polls != mine:
                raise ApiError(409, _DEFAULT_ERRORS[409])
        return self.pending_updates[: params.get("limit", 100)]

    def api_setWebhook(self, params: dict[str, Any]) -> bool:
        url = params["url"]
        if not url:
            return self.api_deleteWebhook(params)
        if not url.startswith(("https://", "http://")):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for "
                                "webhook")
        if params.get("drop_pending_updates"):
            self.pending_updates.clear()
        if "allowed_updates" in params:
            self.allowed_updates = list(params["allowed_updates"] or []) or None
        self.webhook = {"url": url, "secret_token": params.get("secret_token"),
                        "max_connections": int(params.get("max_connections") or 40),
                        "allowed_updates": params.get("allowed_updates") or [],
                        "last_error_date": None, "last_error_message": None}
        self._updates_arrived.set()
        return True

    def api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self.pending_updates.clear()
        return True

    def api_getWebhookInfo(self, params: dict[str, Any]) -> JSON:
        hook = self.webhook or {}
        info: JSON = {"url": hook.get("url", ""), "has_custom_certificate": False,
                      "pending_update_count": len(self.pending_updates)}
        if hook:
            info["max_connections"] = hook["max_connections"]
            if hook["allowed_updates"]:
                info["allowed_updates"] = hook["allowed_updates"]
            if hook["last_error_date"]:
                info.update(last_error_date=hook["last_error_date"],
                            last_error_message=hook["last_error_message"])
        return info

    async def wait_for_webhook_work(self) -> None:
        """Return once a webhook is set and an update waits for it (the webhook pusher)."""
        while self.webhook is None or not self.pending_updates:
            self._updates_arrived.clear()
            await self._updates_arrived.wait()

    def download(self, file_path: str) -> bytes:
        """A file's content by its ``file_path`` (an unknown path: placeholder bytes)."""
        found = self.file_at(file_path)
        return b"fake file content" if found is None else found

    def file_at(self, file_path: str) -> bytes | None:
        file_path = unquote(file_path)
        for path, content in self.files.values():
            if path == file_path:
                return content
        return None

    def keep_file(self, file_id: str, content: bytes, folder: str) -> None:
        self.files[file_id] = (f"{folder}/{file_id}", content)

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
        found = self.chats.get(chat_id)
        if found is None and self.closed:
            raise ApiError(400, "Bad Request: chat not found")
        return found or self.infer_chat(chat_id)

    def may_post(self, chat: JSON) -> None:
        """Telegram's refusals to post in a chat, in a closed world: a person who never wrote
        to the bot, a group the bot is not (or no longer) in."""
        if not self.closed:
            return
        if chat["type"] == "private":
            if chat["id"] in self.blocked_by:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if chat["id"] not in self.started:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
            return
        status = self.members.get((chat["id"], self.bot_id), ("left", {}))[0]
        if status == "kicked":
            raise ApiError(403, f"Forbidden: bot was kicked from the {chat['type']} chat")
        if status == "left":
            raise ApiError(403, f"Forbidden: bot is not a member of the {chat['type']} chat")

    def store(self, message: dict[str, Any], *, incoming: bool = False, fmt: Any = None) -> None:
        key = chat_id, message_id = message["chat"]["id"], message["message_id"]
        edited = key in self.messages
        if not incoming:
            # Telegram returns what a parse mode made of the text as entities, as clients see it.
            message.pop("entities", None)
            message.pop("caption_entities", None)
            if fmt:
                message["entities" if "text" in message else "caption_entities"] = [
                    self._mention(entity) for entity in fmt]
        self.messages[key] = copy.deepcopy(message)
        self.formats[key] = fmt
        if incoming:
            self.incoming.add(key)
        self._message_ids[chat_id] = max(self._message_ids.get(chat_id, 0), message_id)
        self.emit({"event": "message", "chat_id": chat_id, "message_id": message_id,
                   "edited": edited})

    def _mention(self, entity: JSON) -> JSON:
        """Telegram turns a link to tg://user?id=N into a text_mention of that user."""
        found = _USER_LINK.fullmatch(str(entity.get("url", ""))) \
            if entity.get("type") == "text_link" else None
        user = self.users.get(int(found[1])) if found else None
        if user is None:
            return entity
        return {"type": "text_mention", "offset": entity["offset"], "length": entity["length"],
                "user": copy.deepcopy(user)}

    def forget(self, chat_id: int, message_id: int) -> bool:
        if self.messages.pop((chat_id, message_id), None) is None:
            return False
        self.emit({"event": "deleted", "chat_id": chat_id, "message_id": message_id})
        return True

    def message(self, chat_id: int | str, message_id: int, missing: str) -> dict[str, Any]:
        found = self.messages.get((self.chat(chat_id)["id"], message_id))
        if found is None:
            raise ApiError(400, f"Bad Request: {missing}")
        return found

    def new_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self.chat(params["chat_id"])
        self.may_post(chat)
        message: dict[str, Any] = {
            "message_id": self.next_message_id(chat["id"]),
            "date": self.now(),
            "chat": copy.deepcopy(chat),
        }
        if chat["type"] == "channel":
            message["sender_chat"] = copy.deepcopy(chat)
        else:
            message["from"] = dict(self.bot_user)
        if "message_thread_id" in params and chat.get("is_forum"):
            message.update(message_thread_id=params["message_thread_id"], is_topic_message=True)
        reply = params.get("reply_parameters") or {}
        if "reply_to_message_id" in params:
            reply = {"message_id": params["reply_to_message_id"]}
        replied = self.messages.get((chat["id"], reply.get("message_id", 0)))
        if reply.get("message_id") and replied is None and self.closed and not (
                reply.get("allow_sending_without_reply")
                or params.get("allow_sending_without_reply")):
            raise ApiError(400, "Bad Request: message to be replied not found")
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
        if self.keep_calls is not None and len(self.sent) > self.keep_calls:
            del self.sent[: len(self.sent) - self.keep_calls]
        markup = params.get("reply_markup") or {}
        chat_id = message["chat"]["id"]
        if "force_reply" in markup:
            # A Telegram app opens its reply box on this message; with "selective", only for
            # the people it mentions and the author of the message it answers.
            targets = [e["user"]["id"] for e in message.get("entities", [])
                       if e.get("type") == "text_mention" and "user" in e]
            targets += [message.get("reply_to_message", {}).get("from", {}).get("id")]
            self.emit({"event": "force_reply", "chat_id": chat_id,
                       "message_id": message["message_id"],
                       "only_for": [t for t in targets if t] if markup.get("selective") else None,
                       "placeholder": markup.get("input_field_placeholder")})
        if "keyboard" in markup:
            self.reply_keyboards[chat_id] = markup
            self.emit({"event": "keyboard", "chat_id": chat_id})
        elif "remove_keyboard" in markup and self.reply_keyboards.pop(chat_id, None) is not None:
            self.emit({"event": "keyboard", "chat_id": chat_id})
        return message

    def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        message = self.new_message(params)
        kind = _snake(method.removeprefix("send"))
        if "text" in params:
            message["text"] = _visible(params["text"], params.get("parse_mode"))
        if params.get("caption"):
            message["caption"] = _visible(params["caption"], params.get("parse_mode"))
        upload = getattr(params, "uploads", {}).get(kind)
        if kind == "photo":
            message["photo"] = self.photo_sizes(params.get("photo"), upload)
        elif kind in _MEDIA:
            message[kind] = self.media(kind, params.get(kind), upload)
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

    def file_ids(self, value: Any, prefix: str, upload: Upload | None = None) -> dict[str, str]:
        # Re-sending by file_id keeps the id; uploads and URLs get a fresh one.
        if isinstance(value, str) and not value.startswith(("attach://", "http://", "https://")):
            return {"file_id": value, "file_unique_id": f"u-{value}"[:32]}
        file_id = self.unique(prefix)
        if upload is not None:
            self.keep_file(file_id, upload.content, prefix.rstrip("-") + "s")
        return {"file_id": file_id, "file_unique_id": f"u-{file_id}"}

    def upload_of(self, params: dict[str, Any], value: Any) -> Upload | None:
        """The multipart part an ``attach://name`` value names."""
        if isinstance(value, str) and value.startswith("attach://"):
            return getattr(params, "uploads", {}).get(value.removeprefix("attach://"))
        return None

    def photo_sizes(self, value: Any, upload: Upload | None = None) -> list[dict[str, Any]]:
        ids = self.file_ids(value, "photo-", upload)
        if ids["file_id"] in self.files:  # every size shows the same picture
            for width in (90, 320):
                self.files.setdefault(f"{ids['file_id']}-{width}", self.files[ids["file_id"]])
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

    def media(self, kind: str, value: Any, upload: Upload | None = None) -> dict[str, Any]:
        found = {**self.file_ids(value, f"{kind}-", upload), **_MEDIA.get(kind, {})}
        if upload is not None and kind == "document":
            found.update(file_name=upload.filename or "document",
                         mime_type=upload.mime_type or "application/octet-stream",
                         file_size=len(upload.content))
        return found

    # -- keeping the world across restarts ---------------------------------------------------
    def snapshot(self, keep_file: Callable[[str, bytes], str] = _base64) -> JSON:
        """Everything people can see or the bot can refer to, as JSON. ``keep_file`` turns a
        file's content into the text kept for it (by default the content in base64)."""
        return {
            "version": 1,
            "chats": list(self.chats.values()),
            "users": list(self.users.values()),
            "members": [[c, u, status, fields] for (c, u), (status, fields) in
                        self.members.items()],
            "messages": [
                {"message": m, "incoming": key in self.incoming, "format": self.formats.get(key)}
                for key, m in sorted(self.messages.items())
            ],
            "files": {fid: [path, keep_file(fid, data)]
                      for fid, (path, data) in self.files.items()},
            "commands": [[scope, lang, cmds] for (scope, lang), cmds in self.commands.items()],
            "pending_updates": self.pending_updates,
            "reply_keyboards": [[c, k] for c, k in self.reply_keyboards.items()],
            "started": sorted(self.started),
            "blocked_by": sorted(self.blocked_by),
            "callback_queries": self.callback_queries,
            "webhook": self.webhook,
            "allowed_updates": self.allowed_updates,
            "message_ids": [[c, n] for c, n in self._message_ids.items()],
            "counter": self._counter,
            "update_id": self._update_id,
        }

    def restore(self, data: JSON,
                load_file: Callable[[str], bytes] = base64.b64decode) -> None:
        """The world as ``snapshot()`` left it (its calls and violations start afresh);
        ``load_file`` reads back what ``keep_file`` kept."""
        if data.get("version") != 1:
            raise ValueError("not a sandbox snapshot of version 1")
        self.chats = {c["id"]: c for c in data["chats"]}
        self.users = {u["id"]: u for u in data["users"]}
        self.members = {(c, u): (status, fields) for c, u, status, fields in data["members"]}
        self.messages, self.formats, self.incoming = {}, {}, set()
        for entry in data["messages"]:
            key = (entry["message"]["chat"]["id"], entry["message"]["message_id"])
            self.messages[key] = entry["message"]
            self.formats[key] = entry["format"]
            if entry["incoming"]:
                self.incoming.add(key)
        self.files = {fid: (path, load_file(kept)) for fid, (path, kept) in data["files"].items()}
        self.commands = {(scope, lang): cmds for scope, lang, cmds in data["commands"]}
        self.pending_updates = list(data["pending_updates"])
        self.reply_keyboards = {c: k for c, k in data["reply_keyboards"]}
        self.started = set(data["started"])
        self.blocked_by = set(data["blocked_by"])
        self.callback_queries = data["callback_queries"]
        self.webhook = data["webhook"]
        self.allowed_updates = data["allowed_updates"]
        self._message_ids = {c: n for c, n in data["message_ids"]}
        self._counter = data["counter"]
        self._update_id = data["update_id"]
        self._updates_arrived.set()

    # -- method handlers ------------------------------------------------------------------
    def api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(self.bot_user)

    def api_sendMediaGroup(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        group_id = self.unique("album-")
        messages = []
        for item in map(_Params, params["media"]):
            message = self.new_message(params)
            message["media_group_id"] = group_id
            kind = item["type"]
            upload = self.upload_of(params, item["media"])
            if kind == "photo":
                message["photo"] = self.photo_sizes(item["media"], upload)
            else:
                message[kind] = self.media(kind, item["media"], upload)
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
        if not self.forget(self.chat(params["chat_id"])["id"], params["message_id"]):
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    def api_deleteMessages(self, params: dict[str, Any]) -> bool:
        chat_id = self.chat(params["chat_id"])["id"]
        for message_id in params["message_ids"]:
            self.forget(chat_id, message_id)
        return True

    def api_getChat(self, params: dict[str, Any]) -> dict[str, Any]:
        info = self.spec.sample("ChatFullInfo") if self.spec is not None else {
            "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False,
                                    "unique_gifts": False, "premium_subscription": False,
                                    "gifts_from_channels": False}}
        info.update(accent_color_id=0, max_reaction_count=11, **self.chat(params["chat_id"]))
        return info

    def api_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        query_id = str(params["callback_query_id"])
        if not self.closed and query_id not in self.callback_queries:
            return True
        query = self.callback_queries.get(query_id)
        if query is None or query["answer"] is not None:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or "
                                "query ID is invalid")
        query["answer"] = {k: params[k] for k in ("text", "show_alert", "url") if k in params}
        self.emit({"event": "answer", "query_id": query_id, "user_id": query["from"]["id"],
                   "chat_id": query.get("chat_id"), "message_id": query.get("message_id"),
                   **query["answer"]})
        return True

    def api_getChatMember(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, user_id = self.chat(params["chat_id"])["id"], params["user_id"]
        return self.chat_member(chat_id, user_id)

    def chat_member(self, chat_id: int, user_id: int) -> dict[str, Any]:
        status, overrides = self.membership(chat_id, user_id)
        default = {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}
        user = self.bot_user if user_id == self.bot_id else self.users.get(user_id, default)
        return chat_member(self.spec, status, user, **overrides)

    def membership(self, chat_id: int, user_id: int) -> tuple[str, dict[str, Any]]:
        """(status, fields) of someone in a chat. Nobody is anywhere unless said so in a
        closed world; in an open one everybody is a member, and the bot an administrator
        (what a bot that works in groups usually is)."""
        if self.closed:
            absent = "left"
        else:
            absent = "administrator" if user_id == self.bot_id else "member"
        return self.members.get((chat_id, user_id), (absent, {}))

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
        status, fields = self.membership(chat["id"], self.bot_id)
        if not (status in ("creator", "owner") or (
                status == "administrator" and fields.get("can_manage_topics", True))):
            raise ApiError(400, "Bad Request: not enough rights to create a topic")
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
        if self.closed and file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        if self.closed and len(self.files[file_id][1]) > MAX_DOWNLOAD_BYTES:
            raise ApiError(400, "Bad Request: file is too big")
        path, content = self.files.setdefault(file_id, (f"documents/{file_id}", b""))
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}"[:32],
            "file_size": len(content),
            "file_path": path,
        }

    def api_sendChatAction(self, params: dict[str, Any]) -> bool:
        chat = self.chat(params["chat_id"])
        self.emit({"event": "action", "chat_id": chat["id"], "action": params["action"]})
        return True

    def api_setMyCommands(self, params: dict[str, Any]) -> bool:
        self.commands[_scope_key(params)] = params["commands"]
        self.emit({"event": "commands"})
        return True

    def api_deleteMyCommands(self, params: dict[str, Any]) -> bool:
        self.commands.pop(_scope_key(params), None)
        self.emit({"event": "commands"})
        return True

    def api_getMyCommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return copy.deepcopy(self.commands.get(_scope_key(params), []))

    def command_menu(self, chat_id: int, user_id: int, language_code: str | None) -> list[JSON]:
        """The commands a Telegram client shows a person in a chat: the narrowest scope with a
        list wins, in the person's language before the default list of that scope."""
        chat = self.chat(chat_id)
        if chat["type"] == "private":
            scopes = [{"type": "chat", "chat_id": chat_id}, {"type": "all_private_chats"}]
        else:
            scopes = [{"type": "chat_member", "chat_id": chat_id, "user_id": user_id},
                      {"type": "chat_administrators", "chat_id": chat_id},
                      {"type": "chat", "chat_id": chat_id},
                      {"type": "all_chat_administrators"}, {"type": "all_group_chats"}]
            status = self.members.get((chat_id, user_id), ("member", {}))[0]
            if status not in ("administrator", "creator", "owner"):
                scopes = [s for s in scopes if "administrators" not in s["type"]]
        language = (language_code or "").split("-")[0].lower()
        for scope in [*scopes, {"type": "default"}]:
            for code in (language, ""):
                found = self.commands.get(_scope_key({"scope": scope, "language_code": code}))
                if found:
                    return copy.deepcopy(found)
        return []


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


MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # what getFile serves on the public Bot API
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_USER_LINK = re.compile(r"tg://user\?id=(\d+)")
# Update types a bot only gets when it lists them in allowed_updates.
_OPT_IN = {"chat_member", "message_reaction", "message_reaction_count"}

_STATUS_ALIASES = {"owner": "creator", "banned": "kicked"}


def member_status(spec: BotApiSpec | None, status: str) -> str:
    """The ChatMember subtype for ``status``; a ValueError naming the valid ones otherwise."""
    wanted = _STATUS_ALIASES.get(status, status)
    if spec is None:
        if wanted not in _MEMBER_CLASSES:
            raise ValueError(f"unknown chat member status {status!r}; valid: "
                             f"{', '.join(_MEMBER_CLASSES)} (or {', '.join(_STATUS_ALIASES)})")
        return _MEMBER_CLASSES[wanted].__name__
    subtypes = spec.types["ChatMember"].subtypes
    found = next((s for s in subtypes if spec.types[s].fields["status"].const == wanted), None)
    if found is None:
        valid = [spec.types[s].fields["status"].const for s in subtypes]
        raise ValueError(
            f"unknown chat member status {status!r}; valid: {', '.join(map(str, valid))} "
            f"(or {', '.join(_STATUS_ALIASES)})"
        )
    return found


def chat_member(
    spec: BotApiSpec | None, status: str, user: dict[str, Any], **fields: Any
) -> JSON:
    """A ChatMember* object for ``status`` with every field the spec requires (without a spec:
    every field python-telegram-bot requires, which implements the same API version)."""
    status = _STATUS_ALIASES.get(status, status)
    if spec is not None:
        member = spec.sample(member_status(spec, status))
    else:
        member_status(None, status)
        required = [
            name for name, p in inspect.signature(_MEMBER_CLASSES[status]).parameters.items()
            if p.default is p.empty and p.kind is not p.VAR_KEYWORD and name != "user"
        ]
        member = {"status": status, **{n: 0 if n == "until_date" else False for n in required}}
    if status == "administrator":  # an admin who can do what a bot admin usually needs
        member.update({k: True for k in member if k.startswith("can_") and k != "can_be_edited"})
        # Optional in the spec (supergroups only), so no sample has it: a forum's admin may.
        member["can_manage_topics"] = True
    if status == "restricted":
        member["is_member"] = True
    member.update(user=dict(user), **fields)
    return member


_MEMBER_CLASSES: dict[str, type] = {
    "creator": ChatMemberOwner,
    "administrator": ChatMemberAdministrator,
    "member": ChatMemberMember,
    "restricted": ChatMemberRestricted,
    "left": ChatMemberLeft,
    "kicked": ChatMemberBanned,
}

# What each method gridgate may call returns, for a world without the spec (the ones with an
# api_ handler below answer for themselves).
_RETURNS: dict[str, list[str]] = {
    **{m: ["Message"] for m in (
        "sendMessage", "sendPhoto", "sendDocument", "sendVideo", "sendVoice", "sendVideoNote",
        "sendAudio", "sendAnimation", "sendSticker", "sendLocation", "sendVenue", "sendContact",
        "sendDice")},
    **{m: ["Message", "Boolean"] for m in (
        "editMessageText", "editMessageCaption", "editMessageReplyMarkup", "editMessageMedia")},
    **{m: ["Boolean"] for m in (
        "sendChatAction", "leaveChat", "closeForumTopic", "reopenForumTopic", "editForumTopic",
        "deleteForumTopic", "pinChatMessage", "unpinChatMessage", "setMessageReaction",
        "setMyDescription", "setMyShortDescription", "setChatMenuButton", "logOut", "close")},
}


class _Params(dict[str, Any]):
    """Call parameters as the handlers see them: a missing one is a Bad Request. ``uploads``:
    the call's multipart parts by name."""

    uploads: dict[str, Upload]

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


