"""The resident's report flow: a step machine over one durable draft row.

Each answer is checked here, stored in the draft's data, and decides the next step; the handler
commits the draft and only then asks the next question, so a restart between any two steps loses
nothing. Everything here works on plain values (no Telegram types): the handler turns a message
into an `Answer` and renders the `Outcome`.

Steps: category → description → media → place → contact → summary (→ duplicate, when an open
ticket of the same kind lies close by). "Back" returns to the previous step; "edit" from the
summary re-asks one step and then returns to the summary.
"""

from __future__ import annotations

import enum
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import regex

from bot.clock import Clock
from bot.config import Category, Config
from bot.services import tickets
from bot.services.calendar import WorkCalendar
from bot.services.grids import GridDirectory
from bot.services.text import utf16_len
from bot.services.tickets import NewReport
from storage.models import OPEN_STATUSES, Draft, OrgNode, Ticket, is_web_user
from storage.repositories.web import resident_of
from storage.uow import UnitOfWork

FLOW = "report"
ADDRESS_MAX_CHARS = 200
NAME_MAX_CHARS = 128   # ticket.reporter_name
PHONE_MAX_CHARS = 32   # ticket.reporter_phone
# Photos and videos make the album on the card; voice and video notes answer "describe it".
MEDIA_KINDS = ("photo", "video")
SPOKEN_KINDS = ("voice", "video_note")


class Step(enum.StrEnum):
    ENTERPRISE = "enterprise"   # enterprise matters: which of the person's enterprises
    CATEGORY = "category"
    DESCRIPTION = "description"
    WAY = "way"                 # consultations: how the answer should come
    DAY = "day"                 # consultations in person: which day
    MEDIA = "media"
    PLACE = "place"
    CONTACT = "contact"
    SUMMARY = "summary"
    DUPLICATE = "duplicate"


EDITABLE = (Step.DESCRIPTION, Step.WAY, Step.MEDIA, Step.PLACE, Step.CONTACT)

# One flow serves three kinds of request (the category kinds of the config): a resident's
# report of a problem at a place, a legal consultation (to the legal-service desk, no place,
# answered in chat, by a call-back or in person), and an enterprise contact's report of an
# enterprise matter (to the enterprise desk, with the enterprise attached).
REPORT, CONSULTATION, ENTERPRISE_DISPUTE = "report", "consultation", "enterprise_dispute"
KINDS = (REPORT, CONSULTATION, ENTERPRISE_DISPUTE)
WAYS = ("chat", "call", "visit")
VISIT_DAYS_OFFERED = 10  # working days, from tomorrow
# Consultations take documents: photos of papers, and PDF files.
DOCUMENT_MIMES = ("application/pdf",)


class Problem(enum.StrEnum):
    """Why an answer was not taken; the handler explains it and asks the same question."""

    USE_BUTTONS = "use_buttons"          # a message where only buttons answer
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    NO_WORDS = "no_words"                # only emoji, symbols or punctuation
    NOT_DESCRIPTION = "not_description"  # a sticker, photo, file ... instead of words
    TOO_LARGE = "too_large"              # over Telegram's download limit for bots
    ALBUM_FULL = "album_full"            # items of an album beyond the limit were left out
    NOT_MEDIA = "not_media"
    NOT_PLACE = "not_place"
    ADDRESS_TOO_LONG = "address_too_long"
    OUTSIDE_GRIDS = "outside_grids"
    NOT_CONTACT = "not_contact"
    NOT_OWN_CONTACT = "not_own_contact"
    PHONE_NEEDED = "phone_needed"          # a call-back without a number
    NOT_DOCUMENT = "not_document"          # a consultation's files: photos or PDF only


@dataclass(frozen=True)
class Answer:
    """One incoming message, reduced to what the flow looks at."""

    kind: str  # text, voice, video_note, photo, video, location, contact, other
    text: str = ""
    file_id: str | None = None
    file_size: int | None = None
    album: str | None = None  # media_group_id
    latitude: float | None = None
    longitude: float | None = None
    contact_user_id: int | None = None
    phone: str | None = None
    mime: str | None = None  # documents


@dataclass
class Outcome:
    problem: Problem | None = None
    moved: bool = False          # the step changed: ask the new one
    silent: bool = False         # nothing to say (a later item of an album already answered)
    reask: bool = True           # with a problem: ask the current question again
    newly_urgent: bool = False   # show the 110/119/120 guidance now
    show_places: bool = False    # offer the street → community → grid menus
    values: dict[str, Any] = field(default_factory=dict)  # for the explanation


def clean_text(text: str | None) -> str:
    """User text without control characters (newlines and tabs stay), trimmed."""
    if not text:
        return ""
    return "".join(ch for ch in text
                   if ch in "\n\t" or unicodedata.category(ch) != "Cc").strip()


# One character as a reader counts it: a grapheme cluster (an emoji with its skin tone or a
# family joined by zero-width joiners is one, however many code points it takes).
_GRAPHEME = regex.compile(r"\X")
_WORD = regex.compile(r"[\p{L}\p{N}]")


def characters(text: str) -> int:
    """How many characters a person would count in `text`."""
    return len(_GRAPHEME.findall(text))


def has_words(text: str) -> bool:
    """Whether `text` has a letter or a digit: emoji and punctuation alone describe nothing."""
    return _WORD.search(text) is not None


def description_problem(config: Config, text: str) -> tuple[Problem, dict[str, Any]] | None:
    """Why `text` (cleaned) will not do as a description, with the explanation's values."""
    limits = config.limits
    if not has_words(text):
        return Problem.NO_WORDS, {}
    count = characters(text)
    if count < limits.description_min_chars:
        return Problem.TOO_SHORT, {"min": limits.description_min_chars, "count": count}
    # Long: by characters, and by the room it takes in a message (the summary and the card
    # must stay within Telegram's 4096 UTF-16 units, and a family emoji takes 11).
    size = max(count, utf16_len(text) // 2)
    if size > limits.description_max_chars:
        return Problem.TOO_LONG, {"max": limits.description_max_chars, "count": size}
    return None


def display_name(first_name: str | None, last_name: str | None) -> str:
    return clean_text(" ".join(p for p in (first_name, last_name) if p))[:NAME_MAX_CHARS]


class Report:
    """The draft's step and data, with the rules for moving between steps."""

    def __init__(self, step: str, data: dict[str, Any], draft_id: int | None = None) -> None:
        self.step = Step(step)
        self.data = dict(data)
        self.draft_id = draft_id

    @property
    def token(self) -> str | None:
        """Which draft this is: a summary's buttons name it, so that those of a report sent
        or cancelled since cannot act on the next one. Random, for ids come back (SQLite
        gives a deleted row's id to the next one); a draft from before tokens has its id."""
        token = self.data.get("token")
        if token:
            return str(token)
        return str(self.draft_id) if self.draft_id is not None else None

    # -- what has been collected -----------------------------------------------------------
    @property
    def kind(self) -> str:
        kind = self.data.get("kind")
        return kind if kind in KINDS else REPORT

    @property
    def category_code(self) -> str | None:
        return self.data.get("category")

    def category(self, config: Config) -> Category | None:
        code = self.category_code
        category = config.category(code) if code else None
        return category if category is not None and category.kind == self.kind else None

    @property
    def way(self) -> str | None:
        return self.data.get("way")

    @property
    def visit_day(self) -> str | None:
        return self.data.get("visit_day")

    @property
    def enterprise_id(self) -> int | None:
        return self.data.get("enterprise_id")

    def media_kinds(self) -> tuple[str, ...]:
        return ("photo", "document") if self.kind == CONSULTATION else MEDIA_KINDS

    @property
    def description(self) -> str:
        return self.data.get("description") or ""

    @property
    def spoken(self) -> tuple[str, str] | None:
        """The voice message or video note that answered "describe it", if any."""
        value = self.data.get("spoken")
        return (value[0], value[1]) if value else None

    @property
    def media(self) -> list[tuple[str, str]]:
        return [(kind, file_id) for kind, file_id in self.data.get("media", [])]

    @property
    def grid_id(self) -> int | None:
        return self.data.get("grid_id")

    @property
    def last_grid_id(self) -> int | None:
        return self.data.get("last_grid_id")

    @property
    def address(self) -> str | None:
        return self.data.get("address")

    @property
    def location(self) -> tuple[float, float] | None:
        lat, lon = self.data.get("latitude"), self.data.get("longitude")
        return (lat, lon) if lat is not None and lon is not None else None

    @property
    def phone(self) -> str | None:
        return self.data.get("phone")

    @property
    def anonymous(self) -> bool:
        return bool(self.data.get("anonymous"))

    @property
    def urgent(self) -> bool:
        return bool(self.data.get("urgent"))

    @property
    def editing(self) -> bool:
        return bool(self.data.get("editing"))

    @property
    def duplicate_of(self) -> int | None:
        return self.data.get("duplicate_of")

    # -- moving between steps --------------------------------------------------------------
    def order(self, config: Config) -> list[Step]:
        """The steps of this kind of request. A choice with one option is not asked (the
        only enterprise, the only category of a kind): `begin` takes it."""
        if self.kind == CONSULTATION:
            steps = [Step.CATEGORY, Step.DESCRIPTION, Step.WAY]
            if self.way == "visit":
                steps.append(Step.DAY)
            steps += [Step.MEDIA, Step.CONTACT, Step.SUMMARY]
        elif self.kind == ENTERPRISE_DISPUTE:
            steps = [Step.ENTERPRISE, Step.CATEGORY, Step.DESCRIPTION, Step.MEDIA,
                     Step.CONTACT, Step.SUMMARY]
            if len(self.data.get("enterprise_choices", [])) <= 1:
                steps.remove(Step.ENTERPRISE)
        else:
            steps = [Step.CATEGORY, Step.DESCRIPTION, Step.MEDIA, Step.PLACE, Step.CONTACT,
                     Step.SUMMARY]
        if self.kind != REPORT and len(config.categories_of(self.kind)) == 1:
            steps.remove(Step.CATEGORY)
        if config.limits.max_photos == 0:
            steps.remove(Step.MEDIA)
        return steps

    def position(self, config: Config) -> tuple[int, int] | None:
        """The current question as "step n of m": None when it has no number. Only what the
        person is asked counts, and the count stays the same all the way: the summary and
        the duplicate offer are no questions, a description written before the report began
        was not asked for, and the day of a visit is part of the question of how to be
        answered (numbered, it would change the count when the visit is chosen)."""
        skipped = {Step.SUMMARY, Step.DAY, *self._given_before()}
        if self.data.get("described_before"):
            skipped.add(Step.DESCRIPTION)
        questions = [step for step in self.order(config) if step not in skipped]
        if self.step not in questions:
            return None
        return questions.index(self.step) + 1, len(questions)

    def _advance(self, config: Config) -> None:
        """On to the next step; an edit started from the summary returns there."""
        if self.editing or self.data.pop("then_summary", False):
            self.data.pop("editing", None)
            self.step = Step.SUMMARY
            return
        order = self.order(config)
        self.step = order[order.index(self.step) + 1]
        # Photos or the place sent before the report began are not asked for again (the
        # summary can still change them).
        while self.step in self._given_before() and self.step is not Step.SUMMARY:
            self.step = order[order.index(self.step) + 1]

    def _given_before(self) -> set[Step]:
        given = set()
        if "media" in self.data.get("given_before", []) and self.media:
            given.add(Step.MEDIA)
        if "place" in self.data.get("given_before", []) and self.grid_id is not None:
            given.add(Step.PLACE)
        return given

    def back(self, config: Config) -> None:
        """The previous step; "back" during an edit means "never mind" (the summary)."""
        if self.step is Step.DUPLICATE or self.editing:
            self.data.pop("editing", None)
            self.data.pop("duplicate_of", None)
            self.step = Step.SUMMARY
            return
        order = self.order(config)
        position = order.index(self.step)
        if position > 0:
            self.step = order[position - 1]

    def edit(self, config: Config, step: str) -> bool:
        if step not in EDITABLE or Step(step) not in self.order(config):
            return False
        self.step = Step(step)
        self.data["editing"] = True
        return True

    def _mark_urgency(self, config: Config) -> bool:
        """Recompute urgency from the category and the words; True when the guidance should be
        shown now (the first time this draft turns urgent)."""
        category = self.category(config)
        urgent = category is not None and tickets.is_emergency(config, category,
                                                               self.description)
        self.data["urgent"] = urgent
        if urgent and not self.data.get("warned"):
            self.data["warned"] = True
            return True
        return False

    # -- answers by button -----------------------------------------------------------------
    def choose_category(self, config: Config, code: str) -> Outcome | None:
        category = config.category(code)
        if category is None or category.kind != self.kind:
            return None
        self.data["category"] = category.code
        if not category.anonymous_allowed:
            self.data.pop("anonymous", None)
        urgent_now = self._mark_urgency(config)
        self._advance(config)
        if self.step is Step.DESCRIPTION and self.data.pop("prefilled", False):
            self._advance(config)  # what the person wrote before the report began
        return Outcome(moved=True, newly_urgent=urgent_now)

    def prefill(self, config: Config, text: str, *, warned: bool = False) -> Outcome:
        """Take words the person wrote before the report began (see bot.services.freetext)
        as the description: asked no more, shown on the summary, editable there. `warned`:
        the person was shown the 110/119/120 guidance for these words already (the urgency
        still comes, with the category)."""
        self.data["description"] = text
        self.data["described_before"] = True
        self.data.pop("spoken", None)
        if warned:
            self.data["warned"] = True
        if self.step is Step.DESCRIPTION:
            urgent_now = self._mark_urgency(config)
            self._advance(config)
            return Outcome(moved=True, newly_urgent=urgent_now)
        self.data["prefilled"] = True
        return Outcome()

    def prefill_spoken(self, config: Config, kind: str, file_id: str) -> Outcome:
        """Like `prefill`, with a voice message or video note sent before the report began
        (after `prefill`, when there were words too: both go)."""
        self.data["spoken"] = [kind, file_id]
        if self.description:
            return Outcome()
        self.data["description"] = ""
        self.data["described_before"] = True
        if self.step is Step.DESCRIPTION:
            self._advance(config)
            return Outcome(moved=True)
        self.data["prefilled"] = True
        return Outcome()

    def prefill_media(self, config: Config, media: Sequence[tuple[str, str]]) -> None:
        """Photos or videos sent before the report began: the media step is not asked."""
        kept = [[kind, file_id] for kind, file_id in media
                if kind in self.media_kinds()][:config.limits.max_photos]
        if kept:
            self.data["media"] = kept
            self._give("media")

    def prefill_place(self, latitude: float, longitude: float, grid: OrgNode | None) -> None:
        """A location shared before the report began: where it is, when a grid has it (else
        the place step still asks, with the location kept)."""
        self.data["latitude"], self.data["longitude"] = latitude, longitude
        if grid is not None and self.kind == REPORT:
            self.data["grid_id"] = grid.id
            self._give("place")

    def _give(self, step: str) -> None:
        self.data["given_before"] = [*self.data.get("given_before", []), step]

    def choose_way(self, config: Config, way: str) -> Outcome | None:
        """How a consultation is answered. Choosing a call-back is the resident's consent to
        let the lawyer see the whole number (the button says so)."""
        if way not in WAYS:
            return None
        self.data["way"] = way
        if way != "visit":
            self.data.pop("visit_day", None)
        if way == "call":
            self.data["call_consent"] = True
        else:
            self.data.pop("call_consent", None)
        if way == "visit" and self.editing:
            self.data.pop("editing", None)  # the day comes next, then the summary
            self.data["then_summary"] = True
            self.step = Step.DAY
            return Outcome(moved=True)
        if way == "call" and not self.phone and self.editing:
            self.data.pop("editing", None)  # a call-back needs the number
            self.data["then_summary"] = True
            self.step = Step.CONTACT
            return Outcome(moved=True)
        self._advance(config)
        return Outcome(moved=True)

    def choose_day(self, config: Config, day: str, offered: Sequence[str]) -> Outcome | None:
        if day not in offered:
            return None
        self.data["visit_day"] = day
        self._advance(config)
        return Outcome(moved=True)

    def choose_enterprise(self, config: Config, enterprise_id: int) -> Outcome | None:
        if enterprise_id not in self.data.get("enterprise_choices", []):
            return None
        self.data["enterprise_id"] = enterprise_id
        self._advance(config)
        return Outcome(moved=True)

    def skip(self, config: Config) -> Outcome:
        """Media: go on with what was sent (nothing, or the photos already added).
        Contact: no phone number, not anonymous (a call-back needs the number)."""
        if self.step is Step.CONTACT and self.way == "call":
            return Outcome(problem=Problem.PHONE_NEEDED)
        if self.step is Step.CONTACT:
            self.data.pop("phone", None)
            self.data.pop("anonymous", None)
        self._advance(config)
        return Outcome(moved=True)

    def drop_media(self, config: Config) -> Outcome:
        self.data.pop("media", None)
        self.data.pop("album", None)
        self._advance(config)
        return Outcome(moved=True)

    def go_anonymous(self, config: Config) -> Outcome | None:
        category = self.category(config)
        if category is None or not category.anonymous_allowed:
            return None
        self.data.pop("phone", None)
        self.data["anonymous"] = True
        self._advance(config)
        return Outcome(moved=True)

    def choose_grid(self, config: Config, grid: OrgNode) -> Outcome:
        self.data["grid_id"] = grid.id
        self._advance(config)
        return Outcome(moved=True)

    # -- answers by message ----------------------------------------------------------------
    def answer_album_item(self, config: Config, answer: Answer) -> Outcome | None:
        """A later photo or video of an album that already answered the media step (Telegram
        delivers an album as one update per item). None: not such an item."""
        if answer.album is None:
            return None
        if answer.album == self.data.get("ignored_album"):
            # The first item of this album was explained already; one explanation is enough.
            return Outcome(silent=True)
        if answer.album != self.data.get("album") or answer.kind not in self.media_kinds():
            return None
        if not self._document_ok(answer):
            return Outcome(problem=Problem.NOT_DOCUMENT, reask=False)
        if _too_large(config, answer):
            return Outcome(problem=Problem.TOO_LARGE, reask=False,
                           values=_size_values(config, answer))
        media = self.data.get("media", [])
        if len(media) >= config.limits.max_photos:
            if self.data.get("album_full_told") == answer.album:
                return Outcome(silent=True)
            self.data["album_full_told"] = answer.album
            return Outcome(problem=Problem.ALBUM_FULL, reask=False,
                           values={"max": config.limits.max_photos})
        self.data["media"] = [*media, [answer.kind, answer.file_id]]
        return Outcome(silent=True)

    def answer_description(self, config: Config, answer: Answer) -> Outcome:
        if answer.kind == "text":
            text = clean_text(answer.text)
            problem = description_problem(config, text)
            if problem is not None:
                return Outcome(problem=problem[0], values=problem[1])
            self.data["description"] = text
            self.data.pop("spoken", None)
        elif answer.kind in SPOKEN_KINDS:
            if _too_large(config, answer):
                return Outcome(problem=Problem.TOO_LARGE, values=_size_values(config, answer))
            self.data["description"] = ""
            self.data["spoken"] = [answer.kind, answer.file_id]
        else:
            self._ignore_album(answer)
            return Outcome(problem=Problem.NOT_DESCRIPTION)
        urgent_now = self._mark_urgency(config)
        self._advance(config)
        return Outcome(moved=True, newly_urgent=urgent_now)

    def _document_ok(self, answer: Answer) -> bool:
        return answer.kind != "document" or answer.mime in DOCUMENT_MIMES

    def answer_media(self, config: Config, answer: Answer) -> Outcome:
        if answer.kind not in self.media_kinds() or not self._document_ok(answer):
            self._ignore_album(answer)
            problem = Problem.NOT_DOCUMENT if self.kind == CONSULTATION else Problem.NOT_MEDIA
            return Outcome(problem=problem, values={"max": config.limits.max_photos})
        if _too_large(config, answer):
            return Outcome(problem=Problem.TOO_LARGE, values=_size_values(config, answer))
        # A new answer replaces what an earlier visit to this step collected.
        self.data["media"] = [[answer.kind, answer.file_id]]
        self.data["album"] = answer.album
        self._advance(config)
        return Outcome(moved=True, values={"album": answer.album is not None})

    def answer_address(self, answer: Answer) -> Outcome:
        address = clean_text(answer.text)
        if not address:
            return Outcome(problem=Problem.NOT_PLACE)
        if len(address) > ADDRESS_MAX_CHARS:
            return Outcome(problem=Problem.ADDRESS_TOO_LONG,
                           values={"max": ADDRESS_MAX_CHARS, "count": len(address)})
        self.data["address"] = address
        # The grid still has to be picked: the step stays, the menus are offered.
        return Outcome(show_places=True)

    def answer_location(self, config: Config, answer: Answer,
                        grid: OrgNode | None) -> Outcome:
        self.data["latitude"], self.data["longitude"] = answer.latitude, answer.longitude
        if grid is None:
            # Kept all the same: our boundaries may be rougher than the resident's map.
            return Outcome(problem=Problem.OUTSIDE_GRIDS, reask=False, show_places=True)
        return self.choose_grid(config, grid)

    def answer_contact(self, config: Config, answer: Answer, user_id: int) -> Outcome:
        if answer.kind != "contact":
            return Outcome(problem=Problem.NOT_CONTACT)
        if answer.contact_user_id != user_id:
            return Outcome(problem=Problem.NOT_OWN_CONTACT)
        phone = clean_text(answer.phone)[:PHONE_MAX_CHARS]
        if not phone:
            return Outcome(problem=Problem.NOT_CONTACT)
        self.data["phone"] = phone
        self.data.pop("anonymous", None)
        self._advance(config)
        return Outcome(moved=True)

    def _ignore_album(self, answer: Answer) -> None:
        if answer.album is not None:
            self.data["ignored_album"] = answer.album

    # -- the ticket ------------------------------------------------------------------------
    def missing(self, config: Config) -> Step | None:
        """The first step still to be answered before submitting, if any."""
        if self.category(config) is None:
            return Step.CATEGORY
        if self.kind == ENTERPRISE_DISPUTE and self.enterprise_id is None:
            return Step.ENTERPRISE
        if not self.description and self.spoken is None:
            return Step.DESCRIPTION
        if self.kind == REPORT and self.grid_id is None:
            return Step.PLACE
        if self.kind == CONSULTATION:
            if self.way not in WAYS:
                return Step.WAY
            if self.way == "visit" and not self.visit_day:
                return Step.DAY
            if self.way == "call" and not self.phone:
                return Step.CONTACT
        return None

    def complete(self, config: Config) -> bool:
        return self.missing(config) is None

    def new_report(self, config: Config, *, reporter_id: int, name: str,
                   language: str, enterprise_name: str | None = None) -> NewReport:
        category = self.category(config)
        location = self.location
        files: list[tuple[str, str]] = self.media
        if self.spoken is not None:
            files.append(self.spoken)
        details: dict[str, Any] = {}
        if self.kind == CONSULTATION:
            details["way"] = self.way
            if self.way == "visit":
                details["visit_day"] = self.visit_day
            if self.way == "call":
                details["call_consent"] = bool(self.data.get("call_consent"))
        if enterprise_name:
            details["enterprise"] = enterprise_name
        return NewReport(
            category=category, description=self.description, reporter_id=reporter_id,
            language=language, grid_id=self.grid_id if self.kind == REPORT else None,
            address=self.address if self.kind == REPORT else None,
            latitude=location[0] if location else None,
            longitude=location[1] if location else None,
            anonymous=self.anonymous and category.anonymous_allowed,
            reporter_name=name or None, reporter_phone=self.phone, attachments=tuple(files),
            details=details,
            enterprise_id=self.enterprise_id if self.kind == ENTERPRISE_DISPUTE else None)


def _too_large(config: Config, answer: Answer) -> bool:
    return answer.file_size is not None and answer.file_size > config.limits.max_file_bytes


def _size_values(config: Config, answer: Answer) -> dict[str, Any]:
    mb = 1024 * 1024
    return {"size": f"{(answer.file_size or 0) / mb:.1f}",
            "limit": f"{config.limits.max_file_bytes / mb:.0f}"}


# -- the draft row ---------------------------------------------------------------------------


async def load(uow: UnitOfWork, user_id: int) -> tuple[Draft, Report] | None:
    row = await uow.drafts.get(user_id, FLOW)
    if row is None:
        return None
    try:
        return row, Report(row.step, row.data or {}, row.id)
    except ValueError:
        # A step this version does not know (an older or newer release): start that step over.
        return row, Report(Step.CATEGORY, row.data or {}, row.id)


async def begin(uow: UnitOfWork, clock: Clock, user_id: int, *, config: Config,
                kind: str = REPORT) -> tuple[Draft, Report] | None:
    """A fresh draft (replacing any unfinished one) of a request of this kind, remembering
    the resident's last grid. None for an enterprise matter from someone who acts for no
    enterprise (they register first)."""
    data: dict[str, Any] = {"kind": kind, "token": secrets.token_hex(4)}
    if kind == REPORT:
        for grid_id in await uow.tickets.recent_grids_of_resident(user_id, limit=5):
            if grid_id is not None:
                data["last_grid_id"] = grid_id
                break
        await _poster_place(uow, user_id, data)
    if kind == ENTERPRISE_DISPUTE:
        choices = [e.id for e in await uow.enterprises.of_user(user_id)]
        if not choices:
            return None
        data["enterprise_choices"] = choices
        if len(choices) == 1:
            data["enterprise_id"] = choices[0]
    if kind != REPORT:
        only = config.categories_of(kind)
        if len(only) == 1:
            data["category"] = only[0].code
    report = Report(Step.CATEGORY, data)
    report.step = report.order(config)[0]
    row = await uow.drafts.start(user_id, FLOW, report.step.value, data, clock.now())
    return row, Report(row.step, row.data, row.id)


async def _poster_place(uow: UnitOfWork, user_id: int, data: dict[str, Any]) -> None:
    """A web resident who opened the chat from a grid's poster reports about that grid
    unless they change it (the summary can): the place step is not asked. From a community's
    poster, the list of places opens at that community."""
    if not is_web_user(user_id):
        return
    code = await uow.web.place_of(resident_of(user_id))
    node = await uow.nodes.by_code(code) if code else None
    if node is None:
        return
    if node.level == "grid":
        data["grid_id"] = node.id
        data["given_before"] = [*data.get("given_before", []), "place"]
    else:
        data["near_node_id"] = node.id


def visit_days(config: Config, now: datetime) -> list[str]:
    """The days a consultation may be held at the service point: the next working days,
    from tomorrow (ISO dates, local time)."""
    calendar = WorkCalendar.from_config(config)
    day = now.astimezone(config.timezone).date()
    days: list[str] = []
    while len(days) < VISIT_DAYS_OFFERED:
        day += timedelta(days=1)
        if calendar.is_working_day(day):
            days.append(day.isoformat())
    return days


async def save(uow: UnitOfWork, clock: Clock, row: Draft, report: Report) -> None:
    await uow.drafts.save(row, step=report.step.value, data=report.data, now=clock.now())


async def resume(uow: UnitOfWork, clock: Clock, row: Draft, report: Report) -> None:
    """"Continue my report": the report is the person's conversation again, and their only
    one (a draft left over from before that rule is dropped)."""
    await uow.drafts.discard_other_private(row.user_id, FLOW)
    await save(uow, clock, row, report)


async def discard(uow: UnitOfWork, user_id: int) -> None:
    await uow.drafts.discard(user_id, FLOW)


# -- answers that need the database ----------------------------------------------------------


async def answer_message(uow: UnitOfWork, config: Config, grids: GridDirectory, report: Report,
                         answer: Answer, *, user_id: int) -> Outcome:
    """Apply one message to the draft (the caller saves and commits)."""
    album = report.answer_album_item(config, answer)
    if album is not None:
        return album
    step = report.step
    if step is Step.DESCRIPTION:
        return report.answer_description(config, answer)
    if step is Step.MEDIA:
        return report.answer_media(config, answer)
    if step is Step.PLACE:
        if answer.kind == "text":
            return report.answer_address(answer)
        if answer.kind == "location":
            grid = await grids.locate(uow, lat=answer.latitude, lon=answer.longitude)
            return report.answer_location(config, answer, grid)
        return Outcome(problem=Problem.NOT_PLACE)
    if step is Step.CONTACT:
        return report.answer_contact(config, answer, user_id)
    # Category, summary, duplicate: buttons only.
    return Outcome(problem=Problem.USE_BUTTONS)


async def pickable(uow: UnitOfWork, node_id: int) -> OrgNode | None:
    """A place in the tree a resident may pick in the menus (not a desk)."""
    node = await uow.nodes.get(node_id)
    return node if node is not None and node.level != "desk" else None


async def places_under(uow: UnitOfWork, node: OrgNode | None) -> Sequence[OrgNode]:
    """The choices below a node (the streets under the district when None)."""
    if node is None:
        node = await uow.nodes.root()
        if node is None:
            return []
    return [child for child in await uow.nodes.children(node.id) if child.level != "desk"]


async def last_grid(uow: UnitOfWork, report: Report) -> OrgNode | None:
    grid_id = report.last_grid_id
    node = await uow.nodes.get(grid_id) if grid_id else None
    return node if node is not None and node.level == "grid" else None


# -- submitting ------------------------------------------------------------------------------


class Submitted(enum.Enum):
    OVER_LIMIT = "over_limit"   # the draft is kept
    NOT_CONTACT = "not_contact"  # no longer acts for the enterprise; the draft is kept
    DUPLICATE = "duplicate"     # an open ticket nearby is offered; the draft waits
    CREATED = "created"
    JOINED = "joined"


@dataclass
class Submission:
    result: Submitted
    ticket: Ticket | None = None
    already_reporter: bool = False


async def submit(uow: UnitOfWork, clock: Clock, config: Config, report: Report, *,
                 user_id: int, name: str, language: str,
                 offer_duplicates: bool = True) -> Submission:
    if await tickets.over_hourly_limit(uow, clock, config, user_id):
        return Submission(Submitted.OVER_LIMIT)
    enterprise_name = None
    if report.kind == ENTERPRISE_DISPUTE:
        # Still a contact of it? (They may have left it since the draft began.)
        if await uow.enterprises.contact(report.enterprise_id or 0, user_id) is None:
            return Submission(Submitted.NOT_CONTACT)
        enterprise_name = (await uow.enterprises.get(report.enterprise_id)).name
    location = report.location
    if offer_duplicates and location is not None and report.kind == REPORT:
        nearby = await tickets.nearby_open(uow, config, report.category_code, *location)
        if nearby is not None:
            report.step = Step.DUPLICATE
            report.data["duplicate_of"] = nearby.id
            return Submission(Submitted.DUPLICATE, nearby)
    ticket = await tickets.create(uow, clock, config, report.new_report(
        config, reporter_id=user_id, name=name, language=language,
        enterprise_name=enterprise_name))
    await discard(uow, user_id)
    return Submission(Submitted.CREATED, ticket)


@dataclass(frozen=True)
class Nearby:
    """What a resident may learn about someone else's open report near theirs."""

    distance_m: int


def nearby_summary(report: Report, ticket: Ticket) -> Nearby:
    location = report.location
    if location is None or ticket.latitude is None or ticket.longitude is None:
        return Nearby(0)
    meters = tickets.distance_m(*location, ticket.latitude, ticket.longitude)
    # Rounded to 10 m: near enough to judge, not a way to pinpoint someone's door.
    return Nearby(max(10, round(meters / 10) * 10))


async def join(uow: UnitOfWork, clock: Clock, report: Report, *, user_id: int,
               ticket_id: int) -> Submission | None:
    """Become a co-reporter of the offered ticket. None: it is no longer open."""
    ticket = await uow.tickets.get(ticket_id)
    if ticket is None or ticket.status not in OPEN_STATUSES:
        return None
    already = await uow.tickets.is_reporter(ticket, user_id)
    await tickets.add_co_reporter(uow, clock, ticket, user_id)
    await discard(uow, user_id)
    return Submission(Submitted.JOINED, ticket, already_reporter=already)
