"""The web chat's rules: who a browser is, how a person opens their conversation on another
device, and what their browser says about their language.

A browser gets a device session: a random token in an HttpOnly cookie, of which the database
keeps only the SHA-256. A person gets a recovery code after their first request, to open the
same conversation elsewhere; it is shown once and kept only as a hash as well.
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from bot.i18n import resolve_language
from bot.services import credit_code
from storage.models import WebSession
from storage.repositories.web import resident_of, user_of
from storage.uow import UnitOfWork

__all__ = ["resident_of", "user_of"]

# 12 characters of 31 that cannot be mistaken for one another (no 0/O, 1/I/L): 59 bits, more
# than anyone can guess at the recovery attempts an address is allowed.
RECOVERY_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
RECOVERY_LENGTH = 12


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_recovery_code() -> str:
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, RECOVERY_LENGTH, 4))


def recovery_hash(code: str) -> str | None:
    """The hash a typed code is looked up by (case, spaces and dashes do not matter); None
    for something that cannot be a code."""
    cleaned = re.sub(r"[\s\-_.·]", "", code or "").upper()
    if len(cleaned) != RECOVERY_LENGTH or any(c not in RECOVERY_ALPHABET for c in cleaned):
        return None
    return hashlib.sha256(cleaned.encode()).hexdigest()


def plain_text(html_text: str) -> str:
    """The words of a message in Telegram's HTML subset (for what a reply answers)."""
    return html.unescape(re.sub(r"<[^>]*>", "", html_text or ""))


def browser_language(accept_language: str | None) -> str | None:
    """The first language of the browser's Accept-Language that gridgate speaks, as a tag
    ``bot.i18n.resolve_language`` reads (zh-TW, zh-CN, en…); None: none of them."""
    weighted = []
    for index, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not re.fullmatch(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*", tag):
            continue
        quality = 1.0
        match = re.search(r"q=([0-9.]+)", params)
        if match:
            try:
                quality = float(match[1])
            except ValueError:
                continue
        if quality > 0 and tag.split("-")[0].lower() in ("zh", "en"):
            weighted.append((-quality, index, tag))
    return min(weighted)[2] if weighted else None


def page_language(accept_language: str | None, default: str) -> str:
    """The language a page answers in before it knows who is there: the browser's."""
    return resolve_language(None, browser_language(accept_language), default)


def typed_phone(text: str | None) -> str | None:
    """A phone number typed in the web chat, checked as the enterprise form checks one (a
    mainland mobile number); None when it is not one."""
    return credit_code.mobile(text)


@dataclass(frozen=True)
class Session:
    """A browser's session as the web door acts on it."""

    token_hash: str
    resident_id: int
    csrf: str
    rotated: bool
    at_code: str | None

    @property
    def user_id(self) -> int:
        return user_of(self.resident_id)


def session_of(row: WebSession) -> Session:
    return Session(row.token_hash, row.resident_id, row.csrf, row.rotated, row.at_code)


async def open_session(uow: UnitOfWork, now: datetime, *, resident_id: int | None = None,
                       at_code: str | None = None) -> tuple[str, Session]:
    """A new session (and a new person unless ``resident_id``); its token for the cookie."""
    if resident_id is None:
        resident_id = (await uow.web.new_resident(now)).id
    token = new_token()
    row = WebSession(token_hash=token_hash(token), resident_id=resident_id,
                     csrf=secrets.token_urlsafe(24), rotated=False, at_code=at_code,
                     created_at=now, last_seen_at=now)
    uow.web.add_session(row)
    return token, session_of(row)
