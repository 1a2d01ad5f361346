"""Enterprise registration: who may act for which enterprise, and the two private
forms that make someone a contact — registering a new enterprise, or joining one with the
invitation code a colleague passed on.

Rules that matter here:
* An enterprise is its unified social credit code: a code already registered is never taken
  over. Someone else's registration is refused without saying who made it or how to reach
  them; the way in is an invitation code from a contact. The person's own is pointed out.
* Whoever registers is the owner; colleagues join as contacts with the invitation code. The
  code is shown to contacts only. An owner may leave once someone else remains, who then
  becomes the owner; the last contact cannot leave (the enterprise would have nobody).
* Wrong invitation codes are limited per person (JOIN_GUESSES per JOIN_WINDOW) against
  guessing. They are counted in a table of their own, not in the form: cancelling it, starting
  the join again or any other conversation in between leaves the count as it is.

Like bot.services.reporting, the forms are step machines over one durable draft row: each
answer is checked, stored in the draft's data, and decides the next step; the handler commits
and only then asks the next question. Nothing here knows Telegram.
"""

from __future__ import annotations

import enum
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.clock import Clock
from bot.config import Config
from bot.services import credit_code
from bot.services.credit_code import CodeCheck
from storage.models import Draft, Enterprise, EnterpriseContact, OrgNode
from storage.repositories.enterprises import PLACE_LEVELS
from storage.uow import UnitOfWork

FLOW = "enterprise"
JOIN_FLOW = "enterprise_join"
FLOWS = (FLOW, JOIN_FLOW)

NAME_MIN_CHARS, NAME_MAX_CHARS = 2, 100           # enterprise.name is 128
CONTACT_MIN_CHARS, CONTACT_MAX_CHARS = 2, 50      # enterprise_contact.name is 64

# Invitation codes: read aloud or typed from a screenshot, so no 0/O, 1/I/L or 5/S, 2/Z, U/V
# pairs to confuse; 8 of 26 characters is about 2×10^11 codes.
INVITE_ALPHABET = "346789ABCDEFGHJKMNPQRTWXY"
INVITE_LENGTH = 8
JOIN_GUESSES = 5
JOIN_WINDOW = timedelta(hours=1)


class Step(enum.StrEnum):
    NAME = "name"
    CODE = "code"
    INVITE = "invite"        # joining: the invitation code
    CONTACT = "contact"
    PHONE = "phone"
    INDUSTRY = "industry"
    PLACE = "place"
    CONSENT = "consent"
    SUMMARY = "summary"


EDITABLE = (Step.NAME, Step.CODE, Step.CONTACT, Step.PHONE, Step.INDUSTRY, Step.PLACE)
TEXT_STEPS = (Step.NAME, Step.CODE, Step.INVITE, Step.CONTACT, Step.PHONE)


class Problem(enum.StrEnum):
    """Why an answer was not taken; the handler explains and asks the same question again."""

    NOT_TEXT = "not_text"                # a sticker, photo … where words are wanted
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    BAD_CODE = "bad_code"                # see Outcome.code for what is wrong
    CODE_TAKEN = "code_taken"            # registered by someone else
    CODE_YOURS = "code_yours"            # the person already manages it (the form ends)
    BAD_PHONE = "bad_phone"
    NOT_OWN_CONTACT = "not_own_contact"  # a shared contact card of someone else
    USE_BUTTONS = "use_buttons"
    WRONG_INVITE = "wrong_invite"
    TOO_MANY_GUESSES = "too_many_guesses"
    ALREADY_CONTACT = "already_contact"  # joining an enterprise one already acts for (ends)


@dataclass(frozen=True)
class Answer:
    """One incoming message, reduced to what the forms look at."""

    kind: str  # text, contact, other
    text: str = ""
    contact_user_id: int | None = None
    phone: str | None = None


@dataclass
class Outcome:
    problem: Problem | None = None
    moved: bool = False              # the step changed: ask the new one
    finished: bool = False           # the form is over (the draft is discarded)
    code: CodeCheck | None = None    # with BAD_CODE
    enterprise: Enterprise | None = None
    values: dict[str, Any] = field(default_factory=dict)


def clean_line(text: str | None) -> str:
    """A one-line name: control characters dropped, runs of white space made one space."""
    text = "".join(" " if ch in "\n\r\t" else ch for ch in (text or "")
                   if ch in "\n\r\t" or not _is_control(ch))
    return re.sub(r"\s+", " ", text).strip()


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf")


class Form:
    """A draft's step and data, with the rules for moving between steps."""

    def __init__(self, flow: str, step: str, data: dict[str, Any]) -> None:
        self.flow = flow
        self.step = Step(step)
        self.data = dict(data)

    @property
    def joining(self) -> bool:
        return self.flow == JOIN_FLOW

    def get(self, key: str) -> Any:
        return self.data.get(key)

    @property
    def editing(self) -> bool:
        return bool(self.data.get("editing"))

    def order(self, config: Config) -> list[Step]:
        if self.joining:
            return [Step.INVITE, Step.CONTACT, Step.PHONE, Step.CONSENT]
        steps = [Step.NAME, Step.CODE, Step.CONTACT, Step.PHONE, Step.INDUSTRY, Step.PLACE,
                 Step.CONSENT, Step.SUMMARY]
        if not config.industries:
            steps.remove(Step.INDUSTRY)
        return steps

    def first(self, config: Config) -> bool:
        return self.order(config)[0] is self.step

    def advance(self, config: Config, *, skip_phone: bool = False) -> None:
        if self.editing and not (self.step is Step.CONTACT and not skip_phone):
            # An edit returns to the summary; a new contact name asks for the number too.
            self.data.pop("editing", None)
            self.step = Step.SUMMARY
            return
        order = self.order(config)
        following = order[order.index(self.step) + 1]
        if skip_phone and following is Step.PHONE:
            following = order[order.index(Step.PHONE) + 1]
        self.step = following

    def back(self, config: Config) -> bool:
        """The previous step (during an edit: the summary); False at the first step."""
        if self.editing:
            self.data.pop("editing", None)
            self.step = Step.SUMMARY
            return True
        order = self.order(config)
        position = order.index(self.step)
        if position == 0:
            return False
        self.step = order[position - 1]
        return True

    def edit(self, step: Step) -> None:
        self.data["editing"] = True
        self.step = step

    def complete(self, config: Config) -> bool:
        needed = ["name", "credit_code", "contact_name", "phone", "node_id", "consent_at"]
        if config.industries:
            needed.append("industry")
        return all(self.data.get(key) for key in needed)


# -- drafts ---------------------------------------------------------------------------------------

async def load(uow: UnitOfWork, user_id: int) -> tuple[Draft, Form] | None:
    """The person's enterprise form, if their current conversation is one."""
    draft = await uow.drafts.any_of(user_id)
    if draft is None or draft.flow not in FLOWS:
        return None
    try:
        return draft, Form(draft.flow, draft.step, draft.data or {})
    except ValueError:  # a step this release does not know
        return None


async def start(uow: UnitOfWork, clock: Clock, config: Config, user_id: int, flow: str) -> Form:
    """A fresh form (the person's only private conversation from now on)."""
    now = clock.now()
    form = Form(flow, Step.INVITE if flow == JOIN_FLOW else Step.NAME, {})
    for old_flow in FLOWS:
        await uow.drafts.discard(user_id, old_flow)
    await uow.drafts.start(user_id, flow, form.step, form.data, now)
    return form


async def save(uow: UnitOfWork, clock: Clock, draft: Draft, form: Form) -> None:
    await uow.drafts.save(draft, step=form.step, data=form.data, now=clock.now())


# -- answers --------------------------------------------------------------------------------------

async def answer_message(uow: UnitOfWork, clock: Clock, config: Config, form: Form,
                         answer: Answer, *, user_id: int) -> Outcome:
    """Apply a message to the form's current step."""
    step = form.step
    if step not in TEXT_STEPS:
        return Outcome(Problem.USE_BUTTONS)
    if step is Step.PHONE and answer.kind == "contact":
        if answer.contact_user_id != user_id:
            return Outcome(Problem.NOT_OWN_CONTACT)
        return _take_phone(config, form, answer.phone)
    if answer.kind != "text":
        return Outcome(Problem.NOT_TEXT)
    if step is Step.NAME:
        return _take_name(config, form, "name", answer.text, NAME_MIN_CHARS, NAME_MAX_CHARS)
    if step is Step.CONTACT:
        return _take_name(config, form, "contact_name", answer.text, CONTACT_MIN_CHARS,
                          CONTACT_MAX_CHARS)
    if step is Step.PHONE:
        return _take_phone(config, form, answer.text)
    if step is Step.CODE:
        return await _take_code(uow, config, form, answer.text, user_id)
    return await _take_invite(uow, clock, config, form, answer.text, user_id)


def _take_name(config: Config, form: Form, key: str, text: str, least: int,
               most: int) -> Outcome:
    name = clean_line(text)
    if len(name) < least:
        return Outcome(Problem.TOO_SHORT, values={"min": least, "count": len(name)})
    if len(name) > most:
        return Outcome(Problem.TOO_LONG, values={"max": most, "count": len(name)})
    form.data[key] = name
    form.advance(config)
    return Outcome(moved=True)


def _take_phone(config: Config, form: Form, text: str | None) -> Outcome:
    phone = credit_code.mobile(text)
    if phone is None:
        return Outcome(Problem.BAD_PHONE)
    form.data["phone"] = phone
    form.advance(config)
    return Outcome(moved=True)


async def _take_code(uow: UnitOfWork, config: Config, form: Form, text: str,
                     user_id: int) -> Outcome:
    checked = credit_code.check(text)
    if not checked.ok:
        return Outcome(Problem.BAD_CODE, code=checked)
    existing = await uow.enterprises.by_credit_code(checked.code)
    if existing is not None and await _orphaned(uow, existing):
        existing = None  # its last contact had their data erased: anyone may take it on
    if existing is not None:
        if await uow.enterprises.contact(existing.id, user_id) is not None:
            return Outcome(Problem.CODE_YOURS, finished=True, enterprise=existing)
        return Outcome(Problem.CODE_TAKEN, code=checked)
    form.data["credit_code"] = checked.code
    form.advance(config)
    return Outcome(moved=True)


async def _take_invite(uow: UnitOfWork, clock: Clock, config: Config, form: Form, text: str,
                       user_id: int) -> Outcome:
    now = clock.now()
    until = await locked_until(uow, clock, user_id)
    if until is not None:
        return Outcome(Problem.TOO_MANY_GUESSES, values={"until": until})
    code = credit_code.normalise(text)
    enterprise = await uow.enterprises.by_invite_code(code) if code else None
    if enterprise is None:
        await uow.enterprises.record_guess(user_id, now, forget_before=now - JOIN_WINDOW)
        left = JOIN_GUESSES - len(await uow.enterprises.guesses_since(user_id,
                                                                      now - JOIN_WINDOW))
        return Outcome(Problem.WRONG_INVITE, values={"left": left})
    if await uow.enterprises.contact(enterprise.id, user_id) is not None:
        return Outcome(Problem.ALREADY_CONTACT, finished=True, enterprise=enterprise)
    form.data["enterprise_id"] = enterprise.id
    form.advance(config)
    return Outcome(moved=True, enterprise=enterprise)


async def locked_until(uow: UnitOfWork, clock: Clock, user_id: int) -> datetime | None:
    """Until when the person may not try another invitation code (too many wrong ones within
    the window), or None."""
    guesses = await uow.enterprises.guesses_since(user_id, clock.now() - JOIN_WINDOW)
    if len(guesses) < JOIN_GUESSES:
        return None
    return guesses[-JOIN_GUESSES] + JOIN_WINDOW


def choose_industry(config: Config, form: Form, code: str) -> Outcome | None:
    """None: not a choice this form can take now (an old or forged button)."""
    if form.step is not Step.INDUSTRY or config.industry(code) is None:
        return None
    form.data["industry"] = code
    form.advance(config)
    return Outcome(moved=True)


async def choose_place(uow: UnitOfWork, config: Config, form: Form,
                       node_id: int) -> Outcome | None:
    if form.step is not Step.PLACE:
        return None
    node = await uow.nodes.get(node_id)
    if node is None or node.level not in PLACE_LEVELS:
        return None
    form.data["node_id"] = node.id
    form.advance(config)
    return Outcome(moved=True)


def give_consent(clock: Clock, config: Config, form: Form) -> Outcome | None:
    if form.step is not Step.CONSENT:
        return None
    form.data["consent_at"] = clock.now().isoformat()
    if not form.joining:
        form.advance(config)
    return Outcome(moved=True)


async def use_previous_contact(uow: UnitOfWork, config: Config, form: Form,
                               user_id: int) -> Outcome | None:
    """At the contact step: the name and number the person gave for another enterprise."""
    previous = await uow.enterprises.latest_contact(user_id)
    if form.step is not Step.CONTACT or previous is None:
        return None
    form.data["contact_name"], form.data["phone"] = previous.name, previous.phone
    form.advance(config, skip_phone=True)
    return Outcome(moved=True)


# -- registering, joining, leaving ----------------------------------------------------------------

class Registered(enum.StrEnum):
    DONE = "done"
    ALREADY_YOURS = "already_yours"
    TAKEN = "taken"


@dataclass(frozen=True)
class Registration:
    result: Registered
    enterprise: Enterprise | None = None


async def register(uow: UnitOfWork, clock: Clock, config: Config, form: Form, *,
                   user_id: int) -> Registration:
    """The enterprise and its owner, all or nothing. The code is checked again: someone may
    have registered it while this form was being filled in."""
    data = form.data
    code = credit_code.check(data["credit_code"]).code
    for _ in range(3):
        existing = await uow.enterprises.by_credit_code(code)
        if existing is not None and await _orphaned(uow, existing):
            return await _take_on(uow, clock, existing, data, user_id=user_id)
        if existing is not None:
            mine = await uow.enterprises.contact(existing.id, user_id) is not None
            return Registration(Registered.ALREADY_YOURS if mine else Registered.TAKEN,
                                existing)
        now = clock.now()
        enterprise = Enterprise(
            name=data["name"], credit_code=code, industry=data.get("industry") or "",
            node_id=data["node_id"], invite_code=await _new_invite_code(uow),
            created_by=user_id, consent_at=datetime.fromisoformat(data["consent_at"]),
            created_at=now, updated_at=now)
        try:
            # A savepoint: losing a race on the credit code (or, rarely, the invitation code)
            # leaves the rest of the transaction usable for the answer.
            async with uow.session.begin_nested():
                uow.enterprises.add(enterprise)
                await uow.enterprises.flush()
                uow.enterprises.add_contact(EnterpriseContact(
                    enterprise_id=enterprise.id, user_id=user_id, name=data["contact_name"],
                    phone=data["phone"], role="owner", added_at=now))
                await uow.enterprises.flush()
        except IntegrityError:
            continue  # look again: taken meanwhile, or an invitation code drawn twice
        return Registration(Registered.DONE, enterprise)
    raise RuntimeError("could not register the enterprise")  # pragma: no cover


async def _orphaned(uow: UnitOfWork, enterprise: Enterprise) -> bool:
    """An enterprise without contacts: its last one had their personal data erased
    (bot.services.privacy). It stays for its tickets' sake, and whoever registers its code
    again takes it on."""
    return not await uow.enterprises.contact_counts([enterprise.id])


async def _take_on(uow: UnitOfWork, clock: Clock, enterprise: Enterprise, data: dict, *,
                   user_id: int) -> Registration:
    enterprise = await uow.enterprises.get(enterprise.id, lock=True)
    if not await _orphaned(uow, enterprise):  # someone else took it on meanwhile
        mine = await uow.enterprises.contact(enterprise.id, user_id) is not None
        return Registration(Registered.ALREADY_YOURS if mine else Registered.TAKEN, enterprise)
    now = clock.now()
    enterprise.name, enterprise.industry = data["name"], data.get("industry") or ""
    enterprise.node_id, enterprise.created_by = data["node_id"], user_id
    enterprise.consent_at = datetime.fromisoformat(data["consent_at"])
    enterprise.invite_code = await _new_invite_code(uow)  # the old one may be known
    enterprise.updated_at = now
    uow.enterprises.add_contact(EnterpriseContact(
        enterprise_id=enterprise.id, user_id=user_id, name=data["contact_name"],
        phone=data["phone"], role="owner", added_at=now))
    await uow.enterprises.flush()
    return Registration(Registered.DONE, enterprise)


async def _new_invite_code(uow: UnitOfWork) -> str:
    while True:
        code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_LENGTH))
        if await uow.enterprises.by_invite_code(code) is None:
            return code


async def join(uow: UnitOfWork, clock: Clock, form: Form, *,
               user_id: int) -> tuple[bool, Enterprise | None]:
    """Make the person a contact of the enterprise their invitation code named. (False, e)
    when they already are; (False, None) when the enterprise has gone meanwhile."""
    enterprise = await uow.enterprises.get(int(form.data.get("enterprise_id") or 0))
    if enterprise is None:
        return False, None
    if await uow.enterprises.contact(enterprise.id, user_id) is not None:
        return False, enterprise
    try:
        async with uow.session.begin_nested():
            uow.enterprises.add_contact(EnterpriseContact(
                enterprise_id=enterprise.id, user_id=user_id, name=form.data["contact_name"],
                phone=form.data["phone"], role="contact", added_at=clock.now()))
            await uow.enterprises.flush()
    except IntegrityError:  # the same person's second device joined at the same moment
        return False, enterprise
    return True, enterprise


class Left(enum.StrEnum):
    LEFT = "left"
    NOT_CONTACT = "not_contact"    # not theirs: an old or forged button
    LAST_CONTACT = "last_contact"  # nobody would remain


async def leave(uow: UnitOfWork, user_id: int, enterprise_id: int) -> tuple[Left,
                                                                           Enterprise | None]:
    """Stop acting for an enterprise. An owner's role passes to the longest-standing contact;
    the last contact cannot leave."""
    enterprise = await uow.enterprises.get(enterprise_id, lock=True)
    if enterprise is None or await uow.enterprises.contact(enterprise_id, user_id) is None:
        return Left.NOT_CONTACT, None
    contacts = await uow.enterprises.contacts(enterprise_id)
    others = [c for c in contacts if c.user_id != user_id]
    if not others:
        return Left.LAST_CONTACT, enterprise
    mine = next(c for c in contacts if c.user_id == user_id)
    if mine.role == "owner" and not any(c.role == "owner" for c in others):
        others[0].role = "owner"
    await uow.enterprises.remove_contact(enterprise_id, user_id)
    return Left.LEFT, enterprise


async def may_act_for(uow: UnitOfWork, user_id: int, enterprise_id: int) -> bool:
    """Whether this person is a contact of this enterprise (for bookings, disputes …)."""
    return await uow.enterprises.contact(enterprise_id, user_id) is not None


# -- what the person sees -------------------------------------------------------------------------

@dataclass(frozen=True)
class Managed:
    """One of the person's enterprises, with what the overview shows."""

    enterprise: Enterprise
    role: str
    contacts: int
    place: Sequence[OrgNode]   # path from the district down to its park or street


async def managed_by(uow: UnitOfWork, user_id: int) -> list[Managed]:
    enterprises = await uow.enterprises.of_user(user_id)
    counts = await uow.enterprises.contact_counts(e.id for e in enterprises)
    out = []
    for enterprise in enterprises:
        contact = await uow.enterprises.contact(enterprise.id, user_id)
        node = await uow.nodes.get(enterprise.node_id) if enterprise.node_id else None
        out.append(Managed(enterprise, contact.role if contact else "contact",
                           counts.get(enterprise.id, 0),
                           await uow.nodes.path(node) if node else []))
    return out
