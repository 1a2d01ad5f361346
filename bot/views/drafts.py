"""What the idle-draft timer says to a resident who stopped in the middle of a conversation:
a reminder with buttons to continue or discard it, and the notice that it expired."""

from __future__ import annotations

from bot.config import Config
from bot.i18n import Translator
from bot.services import reporting
from bot.views import Button, View
from bot.views import report as report_views


def until(t: Translator, time: str) -> str:
    return t("Without an answer it will be discarded after {time}.", time=time)


def report_reminder(config: Config, t: Translator, report: reporting.Report, time: str) -> View:
    return View(f"⏰ {report_views.unfinished_text(config, t, report)}\n{until(t, time)}",
                report_views.unfinished_buttons(t))


def ticket_reminder(t: Translator, number: str, *, adding: bool, again: str, cancel: str,
                    time: str) -> View:
    """The reminder of adding information to a ticket (``adding``) or withdrawing it; its
    "Continue" (``again``) asks the question again, which is all a one-step draft needs."""
    if adding:
        text = t("⏰ You started adding information to No. {number} but have not sent it yet.",
                 number=number)
    else:
        text = t("⏰ You started withdrawing No. {number} but have not given the reason yet.",
                 number=number)
    return View(f"{text}\n{until(t, time)}", View.rows(
        [Button(t("▶️ Continue"), again), Button(t("Cancel"), cancel)]))


def report_expired(t: Translator) -> View:
    return View(t("Your unfinished report was discarded because it was not continued; "
                  "nothing was sent. Send /report to start again."))


def nothing_added(t: Translator, number: str) -> View:
    return View(t("Nothing was added to No. {number}: the request was not continued and has "
                  "been dropped. Use /mytickets to add information.", number=number))


def not_withdrawn(t: Translator, number: str) -> View:
    return View(t("No. {number} was not withdrawn: no reason was given, so the request has "
                  "been dropped. Use /mytickets if you still want to withdraw it.",
                  number=number))


def form_expired(t: Translator) -> View:
    return View(t("Your unfinished form was discarded because it was not continued."))
