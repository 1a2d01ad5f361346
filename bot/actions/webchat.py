"""The web chat's own use cases: a browser's session, the person's conversation as stored, the
photos they send, and the recovery code that opens their conversation on another device.

What a web resident does in the conversation (a report, a survey, my tickets…) goes to the same
actions as in Telegram. ``turn`` gives each thing they do an update id of its own (from the
page's key for it, so a retried request is the same update) and keeps their message with the
first commit: a repeated request commits nothing and says nothing twice, as a redelivered
Telegram update. ``record`` then stores the answer as entries of the conversation, before the
door shows it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bot.actions.people import Who
from bot.delivery.web import WEB_FILE, body, body_of_view
from bot.i18n import Translator, resolve_language
from bot.runtime import Runtime
from bot.services import webchat as rules
from bot.services.grids import outline
from bot.services.text import user_html
from bot.services.webchat import Session, plain_text
from bot.views import Answer, View
from bot.views import webchat as views
from storage.models import WebEntry, WebFile
from storage.uow import UnitOfWork, UpdateScope, current_update

__all__ = ["Session"]


def who(session: Session, language_code: str | None) -> Who:
    """A web resident as the actions take them: their private chat has their own id."""
    return Who(user_id=session.user_id, chat_id=session.user_id, language_code=language_code)


# -- sessions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    session: Session
    token: str | None  # a new token for the cookie, when the session is new or was rotated
    place: tuple[str, str] | None  # the poster's place: code and name
    language: str


async def open_session(rt: Runtime, token: str | None, *, at: str | None,
                       language_code: str | None) -> Opened:
    """The browser's session, or a new one (a new person) when its cookie opens none. ``at``:
    the place of the poster the page was opened from; a new poster scanned later changes it."""
    now = rt.clock.now()
    async with rt.uow() as uow:
        row = await uow.web.session(rules.token_hash(token)) if token else None
        place = await uow.nodes.by_code(at) if at else None
        if place is not None and place.level not in ("grid", "community"):
            place = None
        new_token = None
        if row is None:
            new_token, session = await rules.open_session(
                uow, now, at_code=place.code if place is not None else None)
        else:
            if place is not None and row.at_code != place.code:
                row.at_code = place.code
            row.last_seen_at = now
            session = rules.session_of(row)
            if session.at_code and place is None:
                place = await uow.nodes.by_code(session.at_code)
        user = await uow.users.get(session.user_id)
        language = _language(rt, user.language if user else None, language_code)
        await uow.commit()
    shown = (place.code, place.display_name(language)) if place is not None else None
    return Opened(session, new_token, shown, language)


def _language(rt: Runtime, stored: str | None, language_code: str | None) -> str:
    return resolve_language(stored, language_code, rt.config.default_language)


async def session(rt: Runtime, token: str | None) -> Session | None:
    if not token:
        return None
    async with rt.uow() as uow:
        row = await uow.web.session(rules.token_hash(token))
        return rules.session_of(row) if row is not None else None


async def rotate(rt: Runtime, current: Session) -> tuple[str, Session]:
    """A new token for a session used for the first time (a cookie planted in the browser
    before opens nothing the person did after)."""
    token = rules.new_token()
    async with rt.uow() as uow:
        await uow.web.rekey_session(current.token_hash, rules.token_hash(token))
        await uow.commit()
    return token, Session(rules.token_hash(token), current.resident_id, current.csrf, True,
                          current.at_code)


async def language_of(rt: Runtime, current: Session, language_code: str | None) -> Translator:
    async with rt.uow() as uow:
        user = await uow.users.get(current.user_id)
    return rt.translator(_language(rt, user.language if user else None, language_code))


# -- one thing the person does -------------------------------------------------------------------


def update_id(resident_id: int, key: str) -> int:
    """The update id of what the page did under ``key``: negative, so it never meets one of
    Telegram's, and the same for a retry of the same request."""
    digest = hashlib.sha256(f"{resident_id}:{key}".encode()).digest()
    return -(int.from_bytes(digest[:8], "big") >> 2) - 1


@asynccontextmanager
async def turn(rt: Runtime, current: Session, key: str,
               said: dict[str, Any] | None) -> AsyncIterator[UpdateScope]:
    """The scope of one thing the person did: the actions called inside record its id with
    their commit, and ``said`` (what the person sent, as the page shows it) with the first."""
    scope = UpdateScope(update_id=update_id(current.resident_id, key),
                        received_at=rt.clock.now())
    if said is not None:
        async def keep(uow: UnitOfWork) -> None:
            await uow.web.append(current.resident_id, sender="me", body=said,
                                 now=rt.clock.now())
        scope.with_first_commit = keep
    token = current_update.set(scope)
    try:
        yield scope
    finally:
        current_update.reset(token)


def said_text(text: str) -> dict[str, Any]:
    return body(user_html(text))


def said_photo(token: str) -> dict[str, Any]:
    return body("", photos=[WEB_FILE + token])


def said_location(t: Translator, latitude: float, longitude: float) -> dict[str, Any]:
    return body(views.location_sent(t, latitude, longitude))


def said_phone(phone: str) -> dict[str, Any]:
    return body("📞 " + user_html(phone))


async def record(rt: Runtime, current: Session, answer: Answer, *,
                 pressed: int | None = None) -> None:
    """Store what the answer shows as entries of the conversation (kept messages excepted:
    the door has the outbox send them, which stores them as well). ``pressed``: the message
    whose button was pressed, which ``answer.edit`` changes."""
    resident = current.resident_id
    views_to_say = [item for item in answer.say if isinstance(item, View)]
    edit = answer.edit if isinstance(answer.edit, View) else None
    if not (views_to_say or edit or answer.unbutton or answer.alert):
        return
    now = rt.clock.now()
    async with rt.uow() as uow:
        if answer.alert:
            await uow.web.append(resident, sender="bot", body=body(user_html(answer.alert)),
                                 now=now)
        shown = (await uow.web.latest(resident, pressed)
                 if pressed is not None and (edit or answer.unbutton) else None)
        if edit is not None:
            made = await _body(uow, resident, edit, now)
            if shown is not None and not shown.body.get("deleted"):
                # An edited message keeps only its buttons; what it asks is for new ones.
                made["ask"], made["ask_label"] = "nothing", ""
                await uow.web.append(resident, sender="bot", body=made, now=now,
                                     edit_of=pressed)
            else:
                await uow.web.append(resident, sender="bot", body=made, now=now)
        elif answer.unbutton and shown is not None and shown.body.get("buttons"):
            await uow.web.append(resident, sender="bot", body={**shown.body, "buttons": []},
                                 now=now, edit_of=pressed)
        for view in views_to_say:
            await uow.web.append(resident, sender="bot", body=await _body(uow, resident, view,
                                                                           now), now=now)
        await uow.commit()


async def _body(uow: UnitOfWork, resident: int, view: View, now) -> dict[str, Any]:
    """A view as an entry's body; attachments with content are kept as files of the person."""
    refs = []
    for attachment in view.attachments:
        if attachment.data:
            token = secrets.token_urlsafe(18)
            uow.web.add_file(WebFile(token=token, resident_id=resident,
                                     content_type=_content_type(attachment.kind,
                                                                attachment.filename),
                                     content=attachment.data, created_at=now))
            refs.append(WEB_FILE + token)
        else:
            refs.append(attachment.file_id)
    return body_of_view(view, files=refs)


def _content_type(kind: str, filename: str) -> str:
    if kind == "photo":
        return "image/png" if filename.endswith(".png") else "image/jpeg"
    if filename.endswith(".json"):
        return "application/json"
    if filename.endswith(".csv"):
        return "text/csv"
    return "application/octet-stream"


async def keep_photo(rt: Runtime, current: Session, jpeg: bytes) -> str:
    """A photo the person sent (already re-encoded by the door): its token."""
    token = secrets.token_urlsafe(18)
    async with rt.uow() as uow:
        uow.web.add_file(WebFile(token=token, resident_id=current.resident_id,
                                 content_type="image/jpeg", content=jpeg,
                                 created_at=rt.clock.now()))
        await uow.commit()
    return token


async def offers(rt: Runtime, current: Session, message_id: int, data: str) -> bool:
    """Whether the person's message ``message_id`` shows a button with ``data`` now."""
    async with rt.uow() as uow:
        shown = await uow.web.latest(current.resident_id, message_id)
    return shown is not None and shown.sender == "bot" and any(
        isinstance(button, dict) and button.get("data") == data
        for row in shown.body.get("buttons") or [] for button in row)


async def replied(rt: Runtime, current: Session, message_id: int) -> str | None:
    """The text of the bot's message ``message_id`` the person answers; None when their
    conversation has no such message of the bot."""
    async with rt.uow() as uow:
        shown = await uow.web.latest(current.resident_id, message_id)
    if shown is None or shown.sender != "bot":
        return None
    return plain_text(shown.body.get("html", ""))


# -- what the page reads -------------------------------------------------------------------------


async def entries(rt: Runtime, current: Session, after: int = 0) -> tuple[list[WebEntry], int]:
    """The conversation's entries after ``after``, and the number of the last."""
    async with rt.uow() as uow:
        found = list(await uow.web.entries_after(current.resident_id, max(after, 0)))
        last = found[-1].seq if found else await uow.web.last_seq(current.resident_id)
    return found, max(last, after if found else last)


@dataclass(frozen=True)
class File:
    content: bytes | None      # the content kept in the database, or
    telegram_file_id: str | None  # a file Telegram keeps (a worker's photo)
    content_type: str
    name: str


async def file(rt: Runtime, current: Session, seq: int, index: int) -> File | None:
    """The ``index``-th file of the entry ``seq`` of the person's own conversation (the
    document after the photos); None for anything else."""
    async with rt.uow() as uow:
        found = await uow.web.entries_after(current.resident_id, seq - 1, limit=1)
        if not found or found[0].seq != seq:
            return None
        shown = found[0].body
        photos = list(shown.get("photos") or [])
        document = shown.get("document")
        files = [(ref, "photo.jpg") for ref in photos]
        if isinstance(document, dict):
            files.append((document.get("file", ""), document.get("name") or "file"))
        if not 0 <= index < len(files):
            return None
        ref, name = files[index]
        if not isinstance(ref, str) or not ref:
            return None
        if ref.startswith(WEB_FILE):
            kept = await uow.web.file(ref.removeprefix(WEB_FILE))
            if kept is None or kept.resident_id != current.resident_id:
                return None
            return File(kept.content, None, kept.content_type, name)
        return File(None, ref, "application/octet-stream", name)


async def grid_map(rt: Runtime) -> dict[str, Any]:
    """The grids' boundaries for the page's map: outer rings, slightly simplified."""
    async with rt.uow() as uow:
        grids = await uow.nodes.grids_with_geometry()
    out, bounds = [], [180.0, 90.0, -180.0, -90.0]
    for grid in grids:
        drawn = outline(grid.geometry) if grid.geometry else None
        if drawn is None:
            continue
        rings = [[list(point) for point in ring] for ring in drawn[0]]
        minx, miny, maxx, maxy = drawn[1]
        bounds = [min(bounds[0], minx), min(bounds[1], miny), max(bounds[2], maxx),
                  max(bounds[3], maxy)]
        out.append({"code": grid.code, "name": grid.name, "names": {
            "zh_Hans": grid.name, "zh_Hant": grid.display_name("zh_Hant"),
            "en": grid.display_name("en")}, "rings": rings})
    return {"grids": out, "bbox": bounds if out else None}


# -- the recovery code ---------------------------------------------------------------------------


async def recovery_offer(rt: Runtime, current: Session) -> None:
    """After the person's first request: a recovery code, shown once in the conversation, that
    opens it on another device. Nothing when they have one already or no request yet."""
    async with rt.uow() as uow:
        resident = await uow.web.resident(current.resident_id)
        if resident is None or resident.recovery_hash is not None:
            return
        if not await uow.tickets.count_of_resident(current.user_id):
            return
        for _ in range(5):
            code = rules.new_recovery_code()
            if await uow.web.set_recovery(resident, rules.recovery_hash(code)):
                break
        else:
            return
        user = await uow.users.get(current.user_id)
        t = rt.translator(_language(rt, user.language if user else None, None))
        await uow.web.append(current.resident_id, sender="bot",
                             body=body(views.recovery_code(t, code)), now=rt.clock.now())
        await uow.commit()


async def recover(rt: Runtime, current: Session, code: str) -> Session | None:
    """This browser opens the conversation of the person whose recovery code ``code`` is;
    None when it is no one's."""
    wanted = rules.recovery_hash(code)
    if wanted is None:
        return None
    async with rt.uow() as uow:
        resident = await uow.web.resident_by_recovery(wanted)
        if resident is None:
            return None
        row = await uow.web.session(current.token_hash)
        if row is None:
            return None
        row.resident_id = resident.id
        await uow.commit()
    return Session(current.token_hash, resident.id, current.csrf, current.rotated,
                   current.at_code)


def opened_elsewhere(t: Translator) -> View:
    return View(views.recovered(t))


def page_strings(t: Translator) -> dict[str, str]:
    return views.page_strings(t)

