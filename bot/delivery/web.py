"""The web chat's delivery: what the bot says to a resident of the web chat becomes an entry
of their conversation in the database instead of a Telegram message.

The rest of the bot does not tell the two kinds of resident apart: it writes the same Bot API
calls to the outbox for both (a web resident's private chat has the resident's user id, which
lies above any Telegram id: ``storage.models.is_web_user``). The outbox sender hands a web
chat's rows to ``WebChannel`` instead of Telegram. It understands the calls the bot makes in
private chats (send and edit a message, a photo, an album, a document, a place). It stores each
as an entry ("body": the page's view of a message), answers like Telegram would (a message
with its id, so the outbox records it for the ticket as any other), and wakes the pages that
are open. An outbox row that is sent again after a crash finds its entry and shows nothing
twice. A web chat has no rate limit to keep and cannot block the bot.

The same body is made from a view (``body_of_view``) for the web door's immediate answers, so a
message looks the same whichever way it came.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable
from typing import Any

from bot.clock import Clock
from bot.delivery import uploads
from bot.views import Ask, View
from storage.db import Database
from storage.models import WebEntry, is_web_user
from storage.repositories.web import resident_of
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# What a web resident's page is told of a file: "web:<token>" for a photo they sent (the
# web_file table), else a Telegram file id (a worker's photo, passed on by its id).
WEB_FILE = uploads.WEB_FILE

Wake = Callable[[int], None]  # called with the resident's id when their conversation grew


def body(html_text: str, *, buttons: list[list[dict]] | None = None, ask: str = Ask.NOTHING,
         ask_label: str = "", photos: list[str] | None = None,
         document: dict | None = None) -> dict[str, Any]:
    """One message as the web page shows it (see bot/webchat: the page's contract)."""
    return {"html": html_text, "buttons": buttons or [], "ask": str(ask),
            "ask_label": ask_label, "photos": photos or [], "document": document}


def body_of_view(view: View, *, files: list[str] | None = None) -> dict[str, Any]:
    """``files``: the view's attachments as the page finds them (``WEB_FILE`` tokens or file
    ids), in order; the door stores attachments with content first."""
    buttons = [[{"label": b.label, "url": b.url} if b.url else {"label": b.label, "data": b.data}
                for b in row] for row in view.buttons]
    photos, document = [], None
    captions = []
    for attachment, ref in zip(view.attachments, files or [], strict=False):
        if attachment.kind == "photo":
            photos.append(ref)
        else:
            document = {"file": ref, "name": attachment.filename or "file"}
        if attachment.caption:
            captions.append(attachment.caption)
    text = "\n\n".join([view.text, *captions]) if captions else view.text
    return body(text, buttons=buttons, ask=view.ask, ask_label=view.ask_label, photos=photos,
                document=document)


# The calls whose file the page shows (as a picture) or offers (as a download), and the
# parameter that holds it.
_SHOWN = {"sendPhoto": "photo", "sendVideo": "video", "sendAnimation": "animation"}
_FILED = {"sendDocument": "document", "sendVoice": "voice", "sendAudio": "audio",
          "sendVideoNote": "video_note"}


def body_of_call(method: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """The message a Bot API call makes, as the page shows it; None for a call that shows
    nothing in a chat (a chat action, a reaction)."""
    text = _html(params.get("text") or params.get("caption") or "", params.get("parse_mode"))
    markup = params.get("reply_markup") or {}
    buttons, ask, ask_label = _markup(markup)
    if method in ("sendMessage", "editMessageText"):
        return body(text, buttons=buttons, ask=ask, ask_label=ask_label)
    if method in _SHOWN:
        return body(text, buttons=buttons, photos=[_file(params.get(_SHOWN[method]))])
    if method == "sendMediaGroup":
        media = params.get("media") or []
        photos = [_file(item.get("media")) for item in media if isinstance(item, dict)]
        captions = [_html(item.get("caption") or "", item.get("parse_mode"))
                    for item in media if isinstance(item, dict) and item.get("caption")]
        return body("\n".join(captions), photos=photos)
    if method in _FILED:
        return body(text, buttons=buttons, document={"file": _file(params.get(_FILED[method])),
                                                     "name": method.removeprefix("send")})
    if method == "sendLocation":
        lat, lon = params.get("latitude"), params.get("longitude")
        return body(f"📍 {float(lat):.5f}, {float(lon):.5f}")
    return None


def _html(text: str, parse_mode: str | None) -> str:
    return text if parse_mode == "HTML" else html.escape(text, quote=False)


def _file(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _markup(markup: dict) -> tuple[list[list[dict]], str, str]:
    """Buttons and what the bot asks for, from a reply markup."""
    if "inline_keyboard" in markup:
        rows = [[{"label": b.get("text", ""), "url": b["url"]} if b.get("url") else
                 {"label": b.get("text", ""), "data": b.get("callback_data", "")}
                 for b in row] for row in markup["inline_keyboard"]]
        return rows, Ask.NOTHING, ""
    if markup.get("force_reply"):
        return [], Ask.REPLY, markup.get("input_field_placeholder", "")
    if markup.get("remove_keyboard"):
        return [], Ask.TEXT, ""
    for row in markup.get("keyboard", []):
        for b in row:
            if isinstance(b, dict) and b.get("request_location"):
                return [], Ask.LOCATION, b.get("text", "")
            if isinstance(b, dict) and b.get("request_contact"):
                return [], Ask.CONTACT, b.get("text", "")
    return [], Ask.NOTHING, ""


class Hub:
    """Wakes the open pages of a web resident when their conversation grew: in this process
    only (a page connected to another instance asks the database every few seconds, so
    nothing depends on this)."""

    def __init__(self) -> None:
        self._waiting: dict[int, set[asyncio.Event]] = {}

    def wake(self, resident_id: int) -> None:
        for event in self._waiting.get(resident_id, ()):
            event.set()

    def listen(self, resident_id: int) -> asyncio.Event:
        event = asyncio.Event()
        self._waiting.setdefault(resident_id, set()).add(event)
        return event

    def leave(self, resident_id: int, event: asyncio.Event) -> None:
        events = self._waiting.get(resident_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self._waiting[resident_id]


class WebChannel:
    """Delivers the outbox rows of web chats (see the module's docstring)."""

    def __init__(self, db: Database, clock: Clock, wake: Wake | None = None) -> None:
        self._db = db
        self._clock = clock
        self._wake = wake

    def on_entry(self, wake: Wake) -> None:
        """Who to wake when a conversation grew (the web door's live pages)."""
        self._wake = wake

    async def file(self, token: str) -> bytes | None:
        """A web photo's content, for its upload to Telegram."""
        async with UnitOfWork(self._db) as uow:
            found = await uow.web.file(token)
            return found.content if found is not None else None

    async def call(self, row_id: int, chat_id: int, method: str,
                   params: dict[str, Any]) -> Any:
        """Make the call for ``row_id``'s web chat; Telegram's answer to it, or True."""
        if not is_web_user(chat_id):
            raise ValueError("not a web chat")
        resident = resident_of(chat_id)
        async with UnitOfWork(self._db) as uow:
            entry = await uow.web.delivered(row_id)
            if entry is None:
                entry = await self._write(uow, resident, method, params, row_id)
                if entry is None:
                    return True
                await uow.commit()
            answer = _answer(chat_id, entry)
        if self._wake is not None:
            self._wake(resident)
        return answer

    async def _write(self, uow: UnitOfWork, resident: int, method: str, params: dict[str, Any],
                     row_id: int) -> WebEntry | None:
        now = self._clock.now()
        if method in ("editMessageText", "editMessageReplyMarkup", "editMessageCaption"):
            target = params.get("message_id")
            shown = (await uow.web.latest(resident, target)
                     if isinstance(target, int) else None)
            if shown is None:
                return None  # not in this conversation: nothing to change
            new = dict(shown.body)
            if method == "editMessageReplyMarkup":
                new["buttons"] = _markup(params.get("reply_markup") or {})[0]
            else:
                made = body_of_call("sendMessage", {**params, "text": params.get(
                    "text", params.get("caption", ""))})
                new.update(html=made["html"], buttons=made["buttons"])
            return await uow.web.append(resident, sender="bot", body=new, now=now,
                                        edit_of=target, outbox_id=row_id)
        if method == "deleteMessage":
            target = params.get("message_id")
            if not isinstance(target, int) or await uow.web.message(resident, target) is None:
                return None
            return await uow.web.append(resident, sender="bot", now=now, edit_of=target,
                                        outbox_id=row_id, body={**body(""), "deleted": True})
        made = body_of_call(method, params)
        if made is None:
            return None
        return await uow.web.append(resident, sender="bot", body=made, now=now,
                                    outbox_id=row_id)


def _answer(chat_id: int, entry: WebEntry) -> dict[str, Any]:
    """What Telegram would answer: the message (with its id), so the outbox records it."""
    return {"message_id": entry.message_id, "date": int(entry.created_at.timestamp()),
            "chat": {"id": chat_id, "type": "private"}}
