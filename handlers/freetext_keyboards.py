"""Buttons under the offer for what a resident typed outside any conversation (handled in
handlers.freetext). Each carries the token of the draft that keeps the text, never the
text."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import Translator
from storage.models import Ticket

PREFIX = "ft:"
REPORT = "r"        # ft:r:<token>: report it as a problem
CONSULT = "c"       # ft:c:<token>: ask a lawyer about it
SEND = "s"          # ft:s:<token>:<ticket id>: pass it on to the staff of a ticket
FORGET = "x"        # ft:x:<token>


def _button(text: str, *parts: object) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=PREFIX + ":".join(map(str, parts)))


def offer(t: Translator, token: str, *, describable: bool, consultations: bool,
          tickets: Sequence[Ticket]) -> InlineKeyboardMarkup:
    rows = [[_button(t("📝 Report this as a problem") if describable
                     else t("📝 Report a problem"), REPORT, token)]]
    if describable and consultations:
        rows.append([_button(t("⚖️ Ask a lawyer about it"), CONSULT, token)])
    for ticket in tickets:
        rows.append([_button(t("💬 Send it to the staff of No. {number}",
                               number=ticket.number), SEND, token, ticket.id)])
    rows.append([_button(t("✖️ Neither"), FORGET, token)])
    return InlineKeyboardMarkup(rows)


def report_instead(t: Translator, token: str) -> InlineKeyboardMarkup:
    """Under "that ticket is closed": report the same words as a new problem."""
    return InlineKeyboardMarkup([[_button(t("📝 Report it as a new problem"), REPORT, token)],
                                 [_button(t("✖️ Neither"), FORGET, token)]])
