"""A fake Telegram Bot API server plugged into PTB as its HTTP layer.

Every outgoing call is checked against ``bot-api-10.0.json``; a violation fails the test (an
``ApiSpecViolation`` raised from the request, and kept in ``fake.violations`` in case the
application's error handler swallows it). The fake answers the way Telegram does, including
its error texts, so PTB raises its real exception types.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.ext import ApplicationBuilder, ExtBot
from telegram.request import BaseRequest, RequestData

from bot.sandbox.apispec import BUNDLED_SPEC, BotApiSpec
from bot.sandbox.world import (
    BOT_ID,
    BOT_USER,
    BOT_USERNAME,
    SUPERGROUP_ID_BELOW,
    TOKEN,
    ApiError,
    ApiSpecViolation,
    Call,
    PlannedFailure,
    TelegramServer,
    Upload,
    chat_member,
    error_body,
    member_status,
)

JSON = dict[str, Any]


def spec_path() -> Path:
    """``$GRIDGATE_BOT_API_SPEC`` or the copy the repository keeps
    (``bot/sandbox/apispec/spec``)."""
    override = os.environ.get("GRIDGATE_BOT_API_SPEC")
    if override:
        return Path(override)
    return BUNDLED_SPEC


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
            f"Bot API spec not found at {path}; the repository keeps it as "
            "bot/sandbox/apispec/spec/bot-api-10.0.json, or set GRIDGATE_BOT_API_SPEC"
        )
    return _load(path.resolve())


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
        self.server.queued(data)

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
        self.server.failures.append(
            PlannedFailure(method, chat_id, times, body, timeout, delivered))

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


__all__ = [
    "BOT_ID",
    "BOT_USER",
    "BOT_USERNAME",
    "TOKEN",
    "ApiError",
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
