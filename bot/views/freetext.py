"""The offer for what a resident sends outside any conversation (bot.services.freetext): to
report it, to ask a lawyer about it, or to pass it on to the staff of one of their open
tickets. Each button carries the token of the draft that keeps the text, never the text."""

from __future__ import annotations

from collections.abc import Sequence

from bot.config import Config
from bot.i18n import Translator
from bot.services import freetext, reporting
from bot.views import Button, Row, View
from bot.views.menu import with_menu
from storage.models import Ticket

PREFIX = "ft:"
REPORT = "r"        # ft:r:<token>: report it as a problem
CONSULT = "c"       # ft:c:<token>: ask a lawyer about it
SEND = "s"          # ft:s:<token>:<ticket id>: pass it on to the staff of a ticket
FORGET = "x"        # ft:x:<token>


def _button(text: str, *parts: object) -> Button:
    return Button(text, PREFIX + ":".join(map(str, parts)))


def offer_buttons(t: Translator, token: str, *, describable: bool, consultations: bool,
                  tickets: Sequence[Ticket]) -> tuple[Row, ...]:
    rows = [[_button(t("📝 Report this as a problem") if describable
                     else t("📝 Report a problem"), REPORT, token)]]
    if describable and consultations:
        rows.append([_button(t("⚖️ Ask a lawyer about it"), CONSULT, token)])
    for ticket in tickets:
        rows.append([_button(t("💬 Send it to the staff of No. {number}",
                               number=ticket.number), SEND, token, ticket.id)])
    rows.append([_button(t("✖️ Neither"), FORGET, token)])
    return View.rows(*rows)


def report_instead(t: Translator, token: str) -> tuple[Row, ...]:
    """Under "that ticket is closed": report the same words as a new problem."""
    return View.rows([_button(t("📝 Report it as a new problem"), REPORT, token)],
                     [_button(t("✖️ Neither"), FORGET, token)])


def nothing_sent(t: Translator) -> View:
    return View(t("OK, nothing was sent."))


def busy(t: Translator) -> View:
    return View(t("You are in the middle of something: please answer the last question "
                  "above, or send /cancel to stop it."))


def too_large(t: Translator, size: int, limit: int) -> View:
    mb = 1024 * 1024
    size_mb, limit_mb = f"{size / mb:.1f}", f"{limit / mb:.0f}"
    return View(t("That file is too large ({size} MB). Bots can receive files of up to "
                  "{limit} MB; please send a smaller one.", size=size_mb, limit=limit_mb))


def answered(t: Translator) -> str:
    return t("This offer has been answered or has expired: see the answer above, or write "
             "again.")


def offer(config: Config, t: Translator, offer: freetext.Offer) -> View:
    kept = offer.kept
    if kept.files or kept.location:
        return _media_offer(config, t, offer)
    consultations = bool(config.categories_of(reporting.CONSULTATION))
    buttons = offer_buttons(t, offer.token, describable=offer.describable,
                            consultations=consultations, tickets=offer.tickets)
    if offer.describable and offer.tickets:
        text = t("What shall I do with your message? I can report it as a new problem, or "
                 "pass it on to the staff handling one of your open requests.")
    elif offer.describable:
        text = t("Shall I report this as a problem? What you wrote becomes its description; "
                 "you then choose what it is about and where it is.")
    elif offer.tickets:
        text = t("Shall I pass your message on to the staff handling one of your open "
                 "requests? To report something new, describe it in a sentence or two.")
    elif _too_long(config, offer.text):
        return with_menu(t, t("That is longer than a report can be ({max} characters at "
                              "most). Please describe the problem in fewer words, or choose "
                              "from the menu.", max=config.limits.description_max_chars))
    else:
        # A greeting, a word or two: too little to report, so the menu. The words are kept
        # all the same, and what comes next is added to them.
        return with_menu(t, t("Hello! To report a problem, describe it in a sentence or two "
                              "(at least {min} characters) and I will offer to send it, or "
                              "choose from the menu.",
                              min=config.limits.description_min_chars))
    return View(text, buttons)


def _media_offer(config: Config, t: Translator, offer: freetext.Offer) -> View:
    kept = offer.kept
    if not kept.files:
        # A place alone is no message for the staff: it can only begin a report.
        return View(t("Shall I report a problem at this place? You then choose what it is "
                      "about and describe it."),
                    offer_buttons(t, offer.token, describable=False, consultations=False,
                                  tickets=[]))
    buttons = offer_buttons(t, offer.token, describable=True, consultations=False,
                            tickets=offer.tickets)
    if offer.tickets:
        text = t("What shall I do with what you sent? I can report it as a new problem, or "
                 "pass it on to the staff handling one of your open requests.")
    elif kept.spoken is not None and not kept.media:
        text = t("Shall I report this as a problem? Your voice message becomes its "
                 "description; you then choose what it is about and where it is.")
    else:
        text = t("Shall I report this as a problem? Your photos or videos are attached to it "
                 "(and a caption of {min} characters or more becomes its description); you "
                 "then choose what it is about and where it is.",
                 min=config.limits.description_min_chars)
    return View(text, buttons)


def _too_long(config: Config, text: str) -> bool:
    problem = reporting.description_problem(config, text)
    return problem is not None and problem[0] is reporting.Problem.TOO_LONG
