"""What the lawyer desk's group is told about check-up cards, and what the enterprise hears of
the desk's doing (bot.actions.booking_desk, and the check-up timers).

Callback data: bk:<cf|as|pp|dn|ns>:<ticket> on cards, bk:ps:<ticket>:<slot> and bk:px:<ticket>
in the picker; under a proposal to the enterprise ck:pa:<booking>:<slot> (accept) and
ck:pd:<booking>:<slot> (keep my time), which bot.actions.booking takes.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from bot.config import Config
from bot.i18n import Translator
from bot.services import bookings
from bot.services.bookings import BookingRefused, Problem
from bot.services.text import user_html
from bot.views import Ask, Button, View
from bot.views.cards import BOOKING_PREFIX, role_name, slot_label
from bot.views.worker import mention
from storage.models import CheckupSlot, OrgNode, Ticket

# Enterprise buttons under a proposal (handled in bot.actions.booking).
ACCEPT, DECLINE = "ck:pa", "ck:pd"
PICKER_LIMIT = 10


def no_longer_valid(t: Translator) -> str:
    return t("This button is no longer valid.")


def not_a_member(t: Translator, unknown: bool) -> str:
    if unknown:
        return t("I could not check that you are a member of this group. Please try again "
                 "in a moment.")
    return t("Only members of this group can act on its tickets.")


def elsewhere(t: Translator, number: str) -> str:
    return t("No. {number} is handled in another group now.", number=number)


def refusal_text(t: Translator, config: Config, refused: BookingRefused) -> str:
    """Plain text (for alerts) saying why the desk's press changed nothing."""
    problem, booking, slot = refused.problem, refused.booking, refused.slot
    if problem is Problem.ALREADY and booking is not None and booking.status == "confirmed":
        return t("This check-up is already confirmed.")
    if problem is Problem.ALREADY:
        return t("You are already the lawyer of this check-up.")
    if problem is Problem.NOT_ACTIVE:
        return t("This booking is no longer active.")
    if problem is Problem.NOT_STARTED and slot is not None:
        return t("The check-up starts at {time}; mark it after it has begun.",
                 time=slot_label(config, slot.starts_at, None))
    if problem is Problem.NOT_LAWYER and booking is not None:
        return t("Only {name}, the lawyer of this check-up, can mark it. Press Assign lawyer "
                 "to take it over.", name=booking.lawyer_name or "?")
    if problem is Problem.FULL:
        return t("That slot has no free place any more. Choose another.")
    if problem is Problem.TOO_SOON:
        return t("That slot has already begun. Choose another.")
    if problem is Problem.SAME_SLOT:
        return t("That is the booking's own time. Choose another.")
    if problem is Problem.HELD:
        return t("The enterprise already has a place at that time. Choose another.")
    return t("This button is no longer valid.")


# -- what the desk's presses say -----------------------------------------------------------

def confirmed(t: Translator, name: str, number: str) -> View:
    return View(t("✅ {name} confirmed the check-up of No. {number}.",
                  name=user_html(name), number=number))


def confirmed_for_enterprise(t: Translator, when: str) -> str:
    return t("Your check-up on {time} is confirmed by the desk.", time=when)


def lawyer(t: Translator, name: str, number: str) -> View:
    return View(t("🧑‍⚖️ {name} is the lawyer of No. {number}.", name=user_html(name),
                  number=number))


def lawyer_for_enterprise(t: Translator, desk: OrgNode | None, name: str, when: str) -> str:
    return t("{role} {name} will be the lawyer of your check-up on {time}.",
             role=html.escape(role_name(t, desk)), name=user_html(name), time=when)


def no_show(t: Translator, name: str, number: str) -> View:
    return View(t("🚫 {name} marked No. {number} as a no-show; it is closed.",
                  name=user_html(name), number=number))


def no_show_for_enterprise(t: Translator, when: str) -> str:
    return t("The desk recorded that nobody came to your check-up on {time}. To book "
             "another, send /checkup.", time=when)


def nothing_to_propose(t: Translator) -> str:
    return t("There is no other free slot to propose. Add slots with /slots add.")


def picker(t: Translator, config: Config, ticket: Ticket, current: CheckupSlot,
           free: Sequence[CheckupSlot]) -> View:
    rows = [[Button(slot_label(config, s.starts_at, s.ends_at),
                    f"{BOOKING_PREFIX}ps:{ticket.id}:{s.id}")] for s in free[:PICKER_LIMIT]]
    rows.append([Button(t("Cancel"), f"{BOOKING_PREFIX}px:{ticket.id}")])
    return View(t("Which time do you propose for No. {number} (now {time})?",
                  number=ticket.number,
                  time=slot_label(config, current.starts_at, current.ends_at)),
                View.rows(*rows))


def nothing_proposed(t: Translator) -> View:
    return View(t("Nothing was proposed."))


def proposed(t: Translator, config: Config, name: str, number: str,
             slot: CheckupSlot) -> View:
    return View(t("🕘 {name} proposed {time} for No. {number}; the enterprise is asked to "
                  "accept or decline.", name=user_html(name), number=number,
                  time=slot_label(config, slot.starts_at, slot.ends_at)))


def proposal(t: Translator, config: Config, ticket: Ticket, booking_id: int,
             old: CheckupSlot, new: CheckupSlot) -> View:
    """To the enterprise: the desk proposes another time; accept or keep it."""
    number = t("No. {number}", number=ticket.number)
    text = f"<b>{number}</b>\n" + t(
        "The desk proposes to move your check-up from {old} to {new}. Do you accept?",
        old=slot_label(config, old.starts_at, old.ends_at),
        new=slot_label(config, new.starts_at, new.ends_at))
    return View(text, View.rows([
        Button(t("✅ Accept"), f"{ACCEPT}:{booking_id}:{new.id}"),
        Button(t("Keep my time"), f"{DECLINE}:{booking_id}:{new.id}")]))


# -- the report after the check-up -----------------------------------------------------------

def report_prompt(t: Translator, user_id: int, name: str, number: str,
                  problem: str = "") -> View:
    """The forced-reply question to the member who pressed Done (``problem``: why the last
    answer did not do, with its line break)."""
    question = t("Reply to this message with a short report for the enterprise on the check-up "
                 "of No. {number} ({min} to {max} characters). To attach a document, send it "
                 "with the report as its caption. Send /cancel to stop.", number=number,
                 min=bookings.REPORT_MIN_CHARS, max=bookings.REPORT_MAX_CHARS)
    return View(mention(user_id, name) + "\n" + problem + question, ask=Ask.REPLY,
                ask_label=t("Check-up report")[:64])


def report_not_yours(t: Translator) -> View:
    return View(t("Only the member who pressed Done can answer this question, and only its "
                  "latest version. Press Done on the card again if needed."))


def report_cancelled(t: Translator, number: str) -> View:
    return View(html.escape(t("Cancelled. No. {number} stays as it is.", number=number)))


def report_length(t: Translator) -> str:
    """Why a report does not do, before the question again."""
    return t("Please reply with a text (or a document with a caption) of {min} to "
             "{max} characters.", min=bookings.REPORT_MIN_CHARS,
             max=bookings.REPORT_MAX_CHARS) + "\n"


def report_refused(t: Translator, config: Config, refused: BookingRefused) -> View:
    return View(html.escape(refusal_text(t, config, refused)))


def report_done(t: Translator, number: str) -> View:
    return View(t("📄 The check-up of No. {number} is done; the enterprise has the report and "
                  "will be asked for its opinion.", number=number))


def report_for_enterprise(t: Translator, desk: OrgNode | None, lawyer_name: str,
                          report: str) -> str:
    return t("Your check-up is done. The report of {role} {name}:\n{report}",
             role=html.escape(role_name(t, desk)), name=user_html(lawyer_name),
             report=user_html(report))


# -- the check-up timers ----------------------------------------------------------------------

def reminder(t: Translator, number: str, enterprise: str, when: str, left: str) -> str:
    """To a contact of the enterprise before its check-up (``enterprise``: plain text)."""
    label = t("No. {number}", number=number)
    return f"<b>{label}</b>\n" + t(
        "⏰ Reminder: the legal check-up of {enterprise} is on {time} (in {left}). "
        "To write to the desk, reply to this message.",
        enterprise=user_html(enterprise), time=when, left=left)


def not_confirmed(gt: Translator, number: str, when: str) -> str:
    return gt("⏳ The check-up of No. {number} on {time} is not confirmed yet. Please "
              "confirm it or propose another time.", number=number, time=when)


def over(gt: Translator, number: str, when: str, lawyer_id: int | None,
         lawyer_name: str | None) -> str:
    """To the desk once the slot is over, naming its lawyer (if any) so they are notified."""
    who = (mention(lawyer_id, lawyer_name or str(lawyer_id)) + " " if lawyer_id else "")
    return who + gt("🗓 The check-up of No. {number} ({time}) is over. Please mark it Done, "
                    "with a short report for the enterprise, or No-show.", number=number,
                    time=when)
