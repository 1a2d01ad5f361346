"""The relay in words: the headers that say who wrote what is passed on, what the resident
is told of their message, and the short notes a group gets when a message could not go."""

from __future__ import annotations

import enum
import html

from bot.config import Config
from bot.i18n import Translator
from bot.services import relay
from bot.services.text import user_html
from bot.views import View
from bot.views.cards import STATUS_LABELS, role_name
from storage.models import OrgNode, Ticket, is_web_user


class Outcome(enum.Enum):
    """What became of a resident's message for a ticket's staff."""

    SENT = "sent"
    SAVED = "saved"  # kept with the ticket: no group has it yet
    CLOSED = "closed"
    UNSUPPORTED = "unsupported"
    TOO_LARGE = "too_large"


def worker_header(t: Translator, ticket: Ticket, node: OrgNode | None, name: str) -> str:
    """"No. X · Grid worker Wang:" — the role from the group's place, the Telegram name."""
    label = html.escape(role_name(t, node))
    if not name:
        return t("<b>No. {number}</b> · {role}:", number=ticket.number, role=label)
    return t("<b>No. {number}</b> · {role} {name}:", number=ticket.number, role=label,
             name=user_html(name))


def resident_header(t: Translator, ticket: Ticket, user_id: int, full_name: str) -> str:
    """The header of a resident's message passed on to the group; marked when it was written
    in the web chat (no messenger account behind it: see ``_resident_header``)."""
    header = _resident_header(t, ticket, user_id, full_name)
    if not is_web_user(user_id):
        return header
    return "🌐 " + t("Web chat") + " · " + header


def _resident_header(t: Translator, ticket: Ticket, user_id: int, full_name: str) -> str:
    """"No. X · resident Zhang:" for the reporter — "anonymous resident" when they chose so —
    and "co-reporter" for anyone who joined the report: whether a co-reporter wanted to stay
    anonymous is not known, so their name never reaches the group. A request made for an
    enterprise (a check-up, an enterprise matter) comes from its contacts, not from residents
    of the grid: "enterprise contact Zhou", or without a name for a colleague of the one who
    made it (their contact name is not on the ticket). ``full_name``: the sender's name in
    the messenger, for a reporter who gave none."""
    if ticket.enterprise_id is not None:
        name = (relay.clean_name(ticket.reporter_name or full_name)
                if user_id == ticket.reporter_id else "")
        if not name:
            return t("<b>No. {number}</b> · enterprise contact:", number=ticket.number)
        return t("<b>No. {number}</b> · enterprise contact {name}:", number=ticket.number,
                 name=user_html(name))
    if user_id != ticket.reporter_id:
        return t("<b>No. {number}</b> · co-reporter:", number=ticket.number)
    if ticket.anonymous:
        return t("<b>No. {number}</b> · anonymous resident:", number=ticket.number)
    name = relay.clean_name(ticket.reporter_name or full_name)
    if not name:  # no name given, and none in a messenger (the web chat)
        return t("<b>No. {number}</b> · resident:", number=ticket.number)
    return t("<b>No. {number}</b> · resident {name}:", number=ticket.number,
             name=user_html(name))


def outcome_text(t: Translator, config: Config, ticket: Ticket, outcome: Outcome) -> str:
    if outcome is Outcome.SENT:
        return t("Sent to the staff handling No. {number}.", number=ticket.number)
    if outcome is Outcome.SAVED:
        return t("Saved with No. {number}. No staff group has taken the ticket yet; they "
                 "will see your message when it reaches one.", number=ticket.number)
    if outcome is Outcome.CLOSED:
        return t("No. {number} is no longer open ({status}), so your message was not passed "
                 "on. If the problem is still there, please make a new report from the menu.",
                 number=ticket.number, status=t(STATUS_LABELS[ticket.status]))
    if outcome is Outcome.TOO_LARGE:
        return t("This file is larger than {size} MB and cannot be passed on. Please send a "
                 "smaller file.", size=_megabytes(config.limits.max_file_bytes))
    return t("Only text, photos, videos, documents and voice messages can be passed on. "
             "Please send it in one of these forms.")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".rstrip("0").rstrip(".")


# -- notes in the group, when a worker's message could not go --------------------------------

def moved_away(t: Translator, ticket: Ticket) -> View:
    return View(t("<b>No. {number}</b> is handled by another group now; nothing was sent "
                  "to the resident.", number=ticket.number))


def no_longer_open(t: Translator, ticket: Ticket) -> View:
    return View(t("<b>No. {number}</b> is no longer open ({status}); nothing was sent to "
                  "the resident.", number=ticket.number, status=t(STATUS_LABELS[ticket.status])))


def cannot_pass_on(t: Translator) -> View:
    return View(t("This kind of message cannot be passed on to the resident. Send text, a "
                  "photo, a video, a document or a voice message."))
