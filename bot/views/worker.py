"""What grid workers read in their group about a ticket they act on: the answers to their
presses, the questions for a note or a reason, the transfer picker, and the notes on a move.

The cards' buttons carry ``tk:<action>:<ticket>``; the transfer picker's
``tk:tt:<ticket>:<node>[:<page>]``, ``tk:tc:<ticket>:<node>`` and ``tk:tx:<ticket>``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.i18n import Translator
from bot.services.relay import clean_name
from bot.services.text import user_html
from bot.services.tickets import Refusal, TicketRefused
from bot.views import Ask, Button, View
from bot.views.cards import ACTION_PREFIX, STATUS_LABELS
from bot.views.places import place_html
from storage.models import OrgNode, Ticket

CARD_ACTIONS = ("claim", "start", "resolve", "release", "transfer", "escalate", "details")
PICK_OPEN, PICK_CHOOSE, PICK_CANCEL = "tt", "tc", "tx"  # the transfer picker's buttons
PICKER_ACTIONS = (PICK_OPEN, PICK_CHOOSE, PICK_CANCEL)
# Sending a ticket elsewhere: while someone holds it, only they may (tickets.move_refusal).
MOVE_ACTIONS = ("transfer", "escalate", *PICKER_ACTIONS)
PICKER_PAGE = 20  # places per page: Telegram keyboards stay small and readable
NOTE_MIN_CHARS, NOTE_MAX_CHARS = 2, 1000
ANSWER_LIMIT = 200  # a button's answer is plain text of at most this many characters

_DATA = re.compile(r"tk:([a-z]+):(\d{1,18})(?::(\d{1,18}))?(?::(\d{1,4}))?", re.ASCII)
_ARITY = {**dict.fromkeys(CARD_ACTIONS, (1,)), PICK_OPEN: (2, 3), PICK_CHOOSE: (2,),
          PICK_CANCEL: (1,)}


@dataclass(frozen=True)
class ButtonData:
    action: str
    ticket_id: int
    node_id: int | None = None
    page: int = 0


def parse_button(data: str | None) -> ButtonData | None:
    """The data of a card's or the picker's button; None for anything else (forged, or from
    an old version)."""
    match = _DATA.fullmatch(data or "")
    if match is None:
        return None
    action, *numbers = match.groups()
    numbers = [int(n) for n in numbers if n is not None]
    if len(numbers) not in _ARITY.get(action, ()):
        return None
    return ButtonData(action, numbers[0], *numbers[1:])


def short(text: str) -> str:
    """Answers to a button are plain text of at most 200 characters."""
    return text if len(text) <= ANSWER_LIMIT else text[: ANSWER_LIMIT - 1] + "…"


def worker_name(full_name: str) -> str:
    """The worker's name for cards, notices and mentions: one line, without the control and
    bidi characters a name could use to garble or disguise the text around it."""
    return clean_name(full_name)[:128] or "?"


def mention(user_id: int, name: str) -> str:
    """A mention of a person (HTML), so that the app notifies them."""
    return f'<a href="tg://user?id={user_id}">{html.escape(name)}</a>'


def state_text(t: Translator, ticket: Ticket) -> str:
    return t("No. {number} is now: {status}.", number=ticket.number,
             status=t(STATUS_LABELS[ticket.status]))


def refusal_text(t: Translator, exc: TicketRefused, user_id: int) -> str:
    ticket, refusal = exc.ticket, exc.refusal
    if ticket is None or refusal is Refusal.NOT_FOUND:
        return t("This button is no longer valid.")
    number = ticket.number
    if refusal is Refusal.TAKEN:
        if ticket.holder_id == user_id:
            return t("You already hold No. {number}.", number=number)
        return t("No. {number} is already held by {name}.", number=number,
                 name=ticket.holder_name or "?")
    if refusal is Refusal.NOT_HOLDER:
        if ticket.holder_name:
            return t("Only {name}, who holds No. {number}, can do that.",
                     name=ticket.holder_name, number=number)
        return t("Claim No. {number} first.", number=number)
    if refusal is Refusal.TOP_REACHED:
        return t("No. {number} is already at the top, with the district centre.",
                 number=number)
    if refusal is Refusal.SAME_NODE:
        return t("No. {number} is already there.", number=number)
    return state_text(t, ticket)


# -- questions for a note or a reason (answered with a reply) --------------------------------

def prompt_view(user_id: int, name: str, question: str, placeholder: str) -> View:
    """The question, naming the worker who pressed: the reply field opens for them only."""
    return View(mention(user_id, name) + "\n" + question, ask=Ask.REPLY,
                ask_label=placeholder[:64])


def resolve_question(t: Translator, ticket: Ticket) -> tuple[str, str]:
    """The question for a resolution note, and the reply field's placeholder."""
    return (t("Reply to this message with the resolution note for No. {number}.",
              number=ticket.number), t("Resolution note"))


def transfer_question(t: Translator, ticket: Ticket, place: str) -> tuple[str, str]:
    """The question for a transfer's reason (`place` is HTML), and the placeholder. The reason
    reaches the residents word for word: the worker is told so before writing it."""
    question = t("Reply to this message with the reason for transferring No. {number} to "
                 "{place}.", number=ticket.number, place=place)
    return (question + "\n" + t("The resident will see this reason as you write it."),
            t("Reason for the transfer"))


def note_problem(t: Translator) -> str:
    return t("Please reply with a text of {min} to {max} characters.", min=NOTE_MIN_CHARS,
             max=NOTE_MAX_CHARS)


# -- the transfer picker ---------------------------------------------------------------------

def picker(t: Translator, ticket: Ticket, current: OrgNode | None, path: Sequence[OrgNode],
           children: Sequence[OrgNode], page: int) -> View:
    """One level of the tree (``path`` ends at the place looked at): the places under it
    (open one to go down), choose the place itself, go up, or cancel. Desks hang under the
    district, so they are listed there."""
    node = path[-1]
    here = current.display_name(t.language) if current else "?"
    text = t("↪️ Where should No. {number} go? Open a place to see what lies under it, then "
             "choose it.\nIt is now with: <b>{current}</b>\nLooking at: <b>{place}</b>",
             number=ticket.number, current=html.escape(here),
             place=place_html(path, t.language))
    pages = max(1, -(-len(children) // PICKER_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = children[page * PICKER_PAGE:(page + 1) * PICKER_PAGE]

    def button(label: str, *parts: int | None, action: str = PICK_OPEN) -> Button:
        data = ":".join([f"{ACTION_PREFIX}{action}", str(ticket.id), *map(str, parts)])
        return Button(label, data)

    rows = [[button(child.display_name(t.language), child.id) for child in shown[i:i + 2]]
            for i in range(0, len(shown), 2)]
    if pages > 1:
        turn = [button("‹", node.id, page - 1)] if page > 0 else []
        if page + 1 < pages:
            turn.append(button("›", node.id, page + 1))
        rows.append(turn)
    if node.id != ticket.node_id:
        rows.append([button(t("✅ Choose {place}", place=node.display_name(t.language)),
                            node.id, action=PICK_CHOOSE)])
    last = [button(t("⬆️ Up"), node.parent_id)] if node.parent_id else []
    last.append(button(t("✖️ Cancel"), action=PICK_CANCEL))
    rows.append(last)
    return View(text, View.rows(*rows))


def chosen(t: Translator, ticket: Ticket, place: str) -> View:
    return View(t("↪️ No. {number} will go to <b>{place}</b> once the reason is given.",
                  number=ticket.number, place=place))


def transfer_cancelled(t: Translator, ticket: Ticket) -> View:
    return View(html.escape(t("Transfer of No. {number} cancelled.", number=ticket.number)))


# -- a move, as the group that made it, the group that gets it and the residents read it ----

def moved_note(t: Translator, kind: str, *, name: str, place: str, reason: str,
               number: str) -> str:
    if kind == "escalated":
        return t("⬆️ {name} escalated No. {number} to <b>{place}</b>.",
                 name=user_html(name), number=number, place=place)
    return t("↪️ {name} transferred No. {number} to <b>{place}</b>. Reason: {reason}",
             name=user_html(name), number=number, place=place, reason=user_html(reason))


def arrived_note(t: Translator, kind: str, *, name: str, place: str, reason: str) -> str:
    if kind == "escalated":
        return t("⬆️ Escalated from {place} by {name}.", place=place, name=user_html(name))
    return t("↪️ Transferred from {place} by {name}. Reason: {reason}", place=place,
             name=user_html(name), reason=user_html(reason))


def resident_note(t: Translator, kind: str, *, place: str, reason: str, request: str) -> str:
    if kind == "escalated":
        return t("We have passed {request} up to {place}.", request=request, place=place)
    return t("We have passed {request} on to {place}.\nReason: {reason}", request=request,
             place=place,
             reason=user_html(reason))
