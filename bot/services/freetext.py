"""What a resident types outside any conversation: never just "not understood".

The text is kept in a draft of its own (the person's conversation until they choose what to do
with it), so the buttons that offer to report it or to pass it on carry only the draft's token
(random: SQLite gives a deleted draft's id to the next one), and pressing one after a restart
still finds the words. Several messages in a row are one thought ("你好" and then the problem):
they are joined, as long as they fit a description.

Residents as often begin with a photo of the problem, a voice message or the place: those are
kept the same way (only Telegram's file ids, nothing is downloaded), and become the report's
photos, its spoken description or its place when the person chooses to report.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from bot.clock import Clock
from bot.config import Config
from bot.services.reporting import (
    MEDIA_KINDS,
    SPOKEN_KINDS,
    characters,
    clean_text,
    description_problem,
)
from storage.models import OPEN_STATUSES, Ticket
from storage.uow import UnitOfWork

FLOW = "freetext"
STEP = "offer"
# Open tickets offered as places to send the text to, newest first; more would be a wall of
# buttons, and older ones are under My tickets.
TICKETS_OFFERED = 3
_TICKETS_LOOKED_AT = 20


@dataclass(frozen=True)
class Kept:
    """What the person sent before choosing what to do with it."""

    text: str = ""
    media: tuple[tuple[str, str], ...] = ()   # photos and videos: (kind, file id)
    spoken: tuple[str, str] | None = None     # a voice message or video note
    location: tuple[float, float] | None = None

    @classmethod
    def of(cls, data: dict) -> Kept:
        spoken, location = data.get("spoken"), data.get("location")
        return cls(text=data.get("text") or "",
                   media=tuple((kind, file_id) for kind, file_id in data.get("media", [])),
                   spoken=(spoken[0], spoken[1]) if spoken else None,
                   location=(location[0], location[1]) if location else None)

    @property
    def files(self) -> tuple[tuple[str, str], ...]:
        return self.media + ((self.spoken,) if self.spoken else ())


@dataclass(frozen=True)
class Offer:
    token: str
    text: str
    describable: bool       # good as a report's description as it is (words or a voice)
    tickets: list[Ticket]   # the person's open tickets, newest first
    kept: Kept = Kept()
    # A later photo of an album whose first one was offered already: nothing more to say.
    quiet: bool = False


def describable(config: Config, text: str) -> bool:
    return description_problem(config, text) is None


async def keep(uow: UnitOfWork, clock: Clock, config: Config, user_id: int,
               text: str) -> Offer | None:
    """Keep `text` (after what was kept before, if it still fits) as the person's
    conversation. None while the person is in another conversation: that is not ours to
    drop."""
    return await keep_item(uow, clock, config, user_id, text=text)


async def keep_item(uow: UnitOfWork, clock: Clock, config: Config, user_id: int, *,
                    text: str = "", kind: str | None = None, file_id: str | None = None,
                    album: str | None = None,
                    location: tuple[float, float] | None = None) -> Offer | None:
    """Keep a message (words, a caption, a photo or video, a voice message or video note, a
    place) with what was kept before, as the person's conversation. None while the person is
    in another conversation."""
    text = clean_text(text)
    current = await uow.drafts.any_of(user_id)
    if current is not None and current.flow != FLOW:
        return None
    data = dict(current.data or {}) if current is not None else {}
    token = data.get("token") or secrets.token_hex(4)
    # Telegram delivers an album as one message per photo: the first is offered, the others
    # join it without another offer.
    albums = list(data.get("albums", []))
    quiet = album is not None and album in albums
    if album is not None and not quiet:
        albums.append(album)
    if text:
        earlier = data.get("text") or ""
        joined = f"{earlier}\n{text}" if earlier else text
        data["text"] = joined if characters(joined) <= config.limits.description_max_chars \
            else text
    if kind in MEDIA_KINDS and file_id:
        # As many as a report takes; the rest would be dropped at the report anyway.
        media = list(data.get("media", []))
        # The same photo sent twice (forwarded again, say) is one photo of the problem.
        if [kind, file_id] not in media and len(media) < config.limits.max_photos:
            data["media"] = [*media, [kind, file_id]]
    elif kind in SPOKEN_KINDS and file_id:
        data["spoken"] = [kind, file_id]  # one spoken description; a later one is the newer
    if location is not None:
        data["location"] = list(location)
    data.update(token=token, albums=albums[-5:])
    if current is not None:
        await uow.drafts.save(current, step=STEP, data=data, now=clock.now())
    else:
        await uow.drafts.start(user_id, FLOW, STEP, data, clock.now())
    kept_now = Kept.of(data)
    return Offer(token, kept_now.text,
                 describable(config, kept_now.text) or kept_now.spoken is not None,
                 await open_tickets(uow, user_id), kept_now, quiet)


async def kept(uow: UnitOfWork, user_id: int, token: str) -> Kept | None:
    """What is behind an offer's button, if that offer is still the person's conversation."""
    draft = await uow.drafts.get(user_id, FLOW)
    if draft is None or (draft.data or {}).get("token") != token:
        return None
    found = Kept.of(draft.data)
    return found if found.text or found.files or found.location else None


async def forget(uow: UnitOfWork, user_id: int) -> None:
    await uow.drafts.discard(user_id, FLOW)


async def open_tickets(uow: UnitOfWork, user_id: int) -> list[Ticket]:
    mine = await uow.tickets.of_resident(user_id, offset=0, limit=_TICKETS_LOOKED_AT)
    return [ticket for ticket in mine if ticket.status in OPEN_STATUSES][:TICKETS_OFFERED]
