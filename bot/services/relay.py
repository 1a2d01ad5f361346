"""Who may pass what between a ticket's group and its residents.

Handlers turn a Telegram message into a plain `Content` and ask here which ticket it belongs
to and whether it may go through; they then write the outbox rows. Nothing here knows Telegram.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass

from bot.clock import Clock
from bot.config import tier_of
from bot.services import tickets
from bot.services.text import DIRECTION_CONTROLS, utf16_len
from storage.models import OPEN_STATUSES, OrgNode, Ticket
from storage.uow import UnitOfWork

TEXT = "text"
# Kinds whose copy can carry a caption (the header goes there) and kinds that cannot (the header
# goes in a message of its own before the copy).
CAPTIONED = frozenset({"photo", "video", "document", "audio", "voice", "animation"})
UNCAPTIONED = frozenset({"video_note", "sticker"})
RELAYABLE = frozenset({TEXT, *CAPTIONED, *UNCAPTIONED})
# What the ticket keeps as attachments: the kinds a card can show again after a transfer.
ATTACHMENT_KINDS = frozenset({"photo", "video", "voice", "video_note", "document"})

TEXT_LIMIT = 4096     # sendMessage text, after entity parsing, in UTF-16 code units
CAPTION_LIMIT = 1024  # captions likewise

WORKER_MESSAGE = "worker_message"
RESIDENT_MESSAGE = "resident_message"


@dataclass(frozen=True)
class Content:
    """A message to pass on: its kind, its text or caption, and its file if it has one."""

    kind: str
    text: str = ""
    file_id: str | None = None
    file_size: int | None = None

    @property
    def relayable(self) -> bool:
        return self.kind in RELAYABLE

    @property
    def attachment(self) -> tuple[str, str] | None:
        if self.file_id and self.kind in ATTACHMENT_KINDS:
            return self.kind, self.file_id
        return None


class Verdict(enum.Enum):
    IGNORE = "ignore"    # not about a ticket, or a reply to a prompt another handler owns
    RELAY = "relay"
    CLOSED = "closed"    # resolved, closed or withdrawn: nothing goes through any more
    MOVED = "moved"      # the ticket is handled by another group now


@dataclass(frozen=True)
class Target:
    verdict: Verdict
    ticket: Ticket | None = None
    # For a worker's message: the one resident it goes to. The conversation is the
    # reporter's; a reply to a co-reporter's message goes back to that co-reporter alone.
    resident_id: int | None = None


# How a co-reporter's message in a group is remembered (ticket_message.purpose, 24 chars at
# most), so that a worker's reply to it reaches that co-reporter and nobody else.
_CO_REPORTER = "co:"


def co_reporter_purpose(user_id: int) -> str:
    return f"{_CO_REPORTER}{user_id}"


def co_reporter_of(purpose: str | None) -> int | None:
    if not purpose or not purpose.startswith(_CO_REPORTER):
        return None
    value = purpose.removeprefix(_CO_REPORTER)
    return int(value) if value.isascii() and value.isdigit() else None


# How the bot's direct answer that names a ticket is remembered in the person's chat ("your
# report is registered as No. X"): a reply to it is about that ticket, except while the person
# fills in a form, when it is an answer swiped onto the nearest message.
ANSWER = "answer"


def is_prompt(purpose: str | None) -> bool:
    """Messages that ask a worker or resident for an answer ("resolve_prompt", …) belong to the
    flow that sent them: a reply to one is that flow's input, not a message to pass on."""
    return bool(purpose) and purpose.endswith("_prompt")


def _verdict(ticket: Ticket, chat_id: int | None = None) -> Target:
    if chat_id is not None and ticket.group_chat_id != chat_id:
        return Target(Verdict.MOVED, ticket)
    if ticket.status not in OPEN_STATUSES:
        return Target(Verdict.CLOSED, ticket)
    return Target(Verdict.RELAY, ticket)


async def from_group(uow: UnitOfWork, *, chat_id: int, reply_to_id: int | None,
                     topic_id: int | None) -> Target:
    """A group message replying to a message of a ticket, or written in a ticket's forum
    topic. The explicit reply wins; the topic is the fallback (in a forum every message of a
    topic replies to the topic's first message, which is not a ticket message)."""
    ticket = None
    addressee = None
    if reply_to_id is not None:
        link = await uow.tickets.message(chat_id, reply_to_id)
        if link is not None:
            if is_prompt(link.purpose):
                return Target(Verdict.IGNORE)
            ticket = await uow.tickets.get(link.ticket_id)
            addressee = co_reporter_of(link.purpose)
    if ticket is None and topic_id is not None:
        ticket = await uow.tickets.by_topic(chat_id, topic_id)
    if ticket is None:
        return Target(Verdict.IGNORE)
    resident_id = ticket.reporter_id
    if (addressee is not None and addressee != ticket.reporter_id
            and await uow.tickets.is_reporter(ticket, addressee)):
        resident_id = addressee
    target = _verdict(ticket, chat_id)
    return Target(target.verdict, ticket, resident_id)


async def from_resident(uow: UnitOfWork, *, user_id: int, reply_to_id: int,
                        in_form: bool = False) -> Target:
    """A resident's reply, in private, to a message the bot sent them about a ticket.
    `in_form`: the person is answering a form's questions (see ANSWER)."""
    link = await uow.tickets.message(user_id, reply_to_id)
    if link is None or is_prompt(link.purpose) or (in_form and link.purpose == ANSWER):
        return Target(Verdict.IGNORE)
    return await for_resident(uow, ticket_id=link.ticket_id, user_id=user_id)


async def for_resident(uow: UnitOfWork, *, ticket_id: int, user_id: int) -> Target:
    """A ticket as one of its residents may see it; anyone else's is IGNORE."""
    ticket = await uow.tickets.get(ticket_id)
    if ticket is None or not await uow.tickets.is_reporter(ticket, user_id):
        return Target(Verdict.IGNORE)
    return _verdict(ticket)


# Ticket numbers as the bot writes them: "1122-0042" (the day, then the day's sequence).
_NUMBER = re.compile(r"(?<![\d-])\d{4}-\d{4,6}(?![\d-])")
# Numbers repeat after a year: the newest of the person's tickets with the number counts.
_TICKETS_LOOKED_AT = 200


async def named_in(uow: UnitOfWork, *, user_id: int, text: str) -> Target:
    """A resident's reply to a message of the bot that is not remembered with a ticket (a
    direct answer, such as "registered as No. X"): the first ticket it names that is the
    person's own, else IGNORE."""
    numbers = _NUMBER.findall(text)
    if not numbers:
        return Target(Verdict.IGNORE)
    mine = await uow.tickets.of_resident(user_id, offset=0, limit=_TICKETS_LOOKED_AT)
    for number in numbers:
        ticket = next((t for t in mine if t.number == number), None)
        if ticket is not None:
            return _verdict(ticket)
    return Target(Verdict.IGNORE)


def may_withdraw(ticket: Ticket, user_id: int) -> bool:
    """Only the one who reported it, and only before it is resolved."""
    return ticket.reporter_id == user_id and ticket.status in OPEN_STATUSES


def may_add(ticket: Ticket) -> bool:
    return ticket.status in OPEN_STATUSES


REASON_MIN_CHARS = 2
REASON_MAX_CHARS = 300


def reason_ok(reason: str) -> bool:
    """A withdrawal reason: a few words, not an essay (it is shown in the group)."""
    return REASON_MIN_CHARS <= len(reason) <= REASON_MAX_CHARS


def too_large(content: Content, max_bytes: int) -> bool:
    return content.file_size is not None and content.file_size > max_bytes


class Role(enum.Enum):
    GRID = "grid"
    COMMUNITY = "community"
    STREET = "street"
    DISTRICT = "district"
    DESK = "desk"
    STAFF = "staff"  # a group that serves nothing any more


def role_of(node: OrgNode | None) -> Role:
    """How residents see whoever writes from a group: by the level of the node it serves."""
    if node is None:
        return Role.STAFF
    if node.level == "desk":
        return Role.DESK
    try:
        return Role(tier_of(node.level))
    except ValueError:
        return Role.STAFF


async def record(uow: UnitOfWork, clock: Clock, ticket: Ticket, *, actor_id: int, role: str,
                 content: Content, name: str | None = None) -> None:
    """The message in the ticket's log, and its file among the attachments. ``name``: the
    worker's, for the history (any member of the group may write, not only the holder)."""
    kind = WORKER_MESSAGE if role == "worker" else RESIDENT_MESSAGE
    await tickets.note_message(uow, clock, ticket, actor_id=actor_id, role=role, kind=kind,
                               text=content.text or None, file=content.attachment, name=name)


def clean_name(name: str) -> str:
    """A display name on one line: control characters (line breaks, escapes) and bidi
    overrides removed."""
    return "".join(ch for ch in name if unicodedata.category(ch) != "Cc"
                   and ch not in DIRECTION_CONTROLS).strip()


def clean_text(text: str) -> str:
    """A message text without control characters other than line breaks and tabs."""
    return "".join(ch for ch in text
                   if ch in "\n\t" or unicodedata.category(ch) != "Cc").strip()


def fit(text: str, limit: int) -> str:
    """The text cut to `limit` UTF-16 code units (how Telegram counts), with "…" when cut."""
    if utf16_len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    out, used = [], 0
    for ch in text:
        size = utf16_len(ch)
        if used + size > limit - 1:
            break
        out.append(ch)
        used += size
    return "".join(out) + "…"

