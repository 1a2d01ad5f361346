"""Data rights in words: the summary of a resident's copy of their data, the erasure's plan
and its confirmation, what was erased, and what the groups and co-reporters are told when an
erasure ends a ticket.

Callback data: dd:y:<unix time>:<mac> (erase), dd:n (keep).
"""

from __future__ import annotations

from bot.config import Config
from bot.i18n import N_, Translator
from bot.services import privacy
from bot.services.privacy import ErasurePlan, TicketErasure, UserErasure
from bot.views import Button, View
from bot.views.cards import slot_label
from storage.models import Ticket

PREFIX = "dd:"
KEEP = f"{PREFIX}n"


def summary(t: Translator, data: dict) -> str:
    """The caption of the copy of the data (``data``: bot.services.privacy.collect)."""
    answered = sum(1 for a in data["survey_answers"] if a["status"] == "answered")
    return t("<b>Your data in Gridgate</b>\n"
             "Tickets you reported: {reported}\n"
             "Tickets you joined: {joined}\n"
             "Follow-up answers: {answers}\n"
             "Enterprises you act for: {enterprises}\n"
             "Check-up bookings you made: {bookings}\n"
             "Unfinished forms: {forms}\n\n"
             "The file holds everything the bot keeps about you. To have it erased, send "
             "/deletemydata.",
             reported=len(data["reported_tickets"]), joined=len(data["joined_tickets"]),
             answers=answered, enterprises=len(data["enterprises"]),
             bookings=len(data["checkup_bookings"]), forms=len(data["unfinished_forms"]))


def erase(issued: int, mac: str) -> str:
    """The data of the confirmation button."""
    return f"{PREFIX}y:{issued}:{mac}"


def plan(t: Translator, plan: ErasurePlan, confirm: str) -> View:
    """What erasing would do, with the buttons to erase (``confirm``: its data) or keep."""
    lines = [t("<b>Erase your personal data?</b>"),
             t("This erases what Gridgate keeps about you: your settings, what you wrote in "
               "your reports, messages and follow-up comments, the places, phone numbers "
               "and files you gave, your unfinished forms and your enterprise contact "
               "details.")]
    if plan.to_withdraw:
        lines.append(t("• Your {count} open ticket(s) will be withdrawn; the staff handling "
                       "them are told.", count=plan.to_withdraw))
    if plan.to_cancel:
        lines.append(t("• Your {count} check-up booking(s) still to come will be cancelled, "
                       "and their places freed.", count=plan.to_cancel))
    if plan.to_close:
        lines.append(t("• Your {count} resolved ticket(s) waiting for your follow-up answer "
                       "will be closed.", count=plan.to_close))
    if plan.last_contact:
        lines.append(t("• {count} enterprise(s) will have no contact left; they can be "
                       "registered again.", count=plan.last_contact))
    lines.append(t("Your tickets stay only as anonymous figures for statistics (category, "
                   "place, dates, status, ratings). This cannot be undone; to keep a copy, "
                   "send /mydata first."))
    return View("\n\n".join(lines), View.rows([Button(t("🗑 Yes, erase my data"), confirm)],
                                              [Button(t("Keep my data"), KEEP)]))


def nothing_erased(t: Translator) -> View:
    return View(t("Nothing was erased."))


def expired(t: Translator) -> str:
    return t("This confirmation has expired. Send /deletemydata again if you still want your "
             "data erased.")


_ENDED = ((privacy.WITHDRAWN, N_("{count} open ticket(s) were withdrawn.")),
          (privacy.CANCELLED, N_("{count} check-up booking(s) were cancelled.")),
          (privacy.CLOSED, N_("{count} resolved ticket(s) were closed.")))


def done(t: Translator, result: UserErasure) -> View:
    lines = [t("Your personal data has been erased.")]
    anonymous = result.count(privacy.SCOPE_TICKET)
    if anonymous:
        lines.append(t("{count} ticket(s) you reported are anonymous figures now.",
                       count=anonymous))
    for ended, msgid in _ENDED:
        count = result.count(privacy.SCOPE_TICKET, ended)
        if count:
            lines.append(t(msgid, count=count))
    lines.append(t("If you write to the bot again, it starts afresh."))
    return View("\n".join(lines))


# -- what the groups and co-reporters are told -----------------------------------------------

def ending_for_group(t: Translator, config: Config, erasure: TicketErasure) -> str:
    ticket = erasure.ticket
    if erasure.ended == privacy.CANCELLED and erasure.booking is not None:
        slot = erasure.booking.slot
        return t("✖️ The check-up of No. {number} on {time} is cancelled: the contact "
                 "who booked it had their personal data erased. The place is free "
                 "again.", number=ticket.number,
                 time=slot_label(config, slot.starts_at, slot.ends_at))
    if erasure.ended == privacy.CLOSED:
        return t("<b>No. {number}</b> is closed: the resident had their personal data "
                 "erased.", number=ticket.number)
    return t("<b>No. {number}</b> was withdrawn: the resident had their personal "
             "data erased.", number=ticket.number)


def ending_for_resident(t: Translator, ticket: Ticket, ended: str) -> str:
    if ended == privacy.CLOSED:
        return t("<b>No. {number}</b> is closed; its follow-up questions are withdrawn.",
                 number=ticket.number)
    return t("<b>No. {number}</b> was withdrawn by the resident who reported it; it "
             "is closed now.", number=ticket.number)
