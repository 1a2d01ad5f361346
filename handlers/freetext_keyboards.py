"""Buttons under the offer for what a resident typed outside any conversation (handled in
handlers.freetext). Each carries the id of the draft that keeps the text, never the text."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import Translator
from storage.models import Ticket

PREFIX = "ft:"
REPORT = "r"        # ft:r:<draft>: report it as a problem
CONSULT = "c"       # ft:c:<draft>: ask a lawyer about it
SEND = "s"          # ft:s:<draft>:<ticket>: pass it on to the staff of a ticket
FORGET = "x"        # ft:x:<draft>


def _button(text: str, *parts: object) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=PREFIX + ":".join(map(str, parts)))


def offer(t: Translator, draft_id: int, *, describable: bool, consultations: bool,
          tickets: Sequence[Ticket]) -> InlineKeyboardMarkup:
    rows = [[_button(t("📝 Report this as a problem") if describable
                     else t("📝 Report a problem"), REPORT, draft_id)]]
    if describable and consultations:
        rows.append([_button(t("⚖️ Ask a lawyer about it"), CONSULT, draft_id)])
    for ticket in tickets:
        rows.append([_button(t("💬 Send it to the staff of No. {number}",
                               number=ticket.number), SEND, draft_id, ticket.id)])
    rows.append([_button(t("✖️ Neither"), FORGET, draft_id)])
    return InlineKeyboardMarkup(rows)


def report_instead(t: Translator, draft_id: int) -> InlineKeyboardMarkup:
    """Under "that ticket is closed": report the same words as a new problem."""
    return InlineKeyboardMarkup([[_button(t("📝 Report it as a new problem"), REPORT, draft_id)],
                                 [_button(t("✖️ Neither"), FORGET, draft_id)]])
