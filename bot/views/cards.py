"""How a ticket looks in a group: the card text and its buttons (plain Bot API dicts, so the
outbox can store them). Everything from residents or files is escaped here."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date, datetime

from bot.config import Config
from bot.i18n import N_, Translator, format_names
from bot.services.phones import mask_phone
from bot.services.relay import Role, role_of
from bot.services.text import user_html
from bot.services.tickets import HELD_STATUSES
from storage.models import (
    OPEN_STATUSES,
    OrgNode,
    Ticket,
    TicketAttachment,
    TicketStatus,
    is_web_user,
)

CARD_DESCRIPTION_LIMIT = 1200
ACTION_PREFIX = "tk:"

STATUS_LABELS = {
    TicketStatus.OPEN: N_("Waiting to be claimed"),
    TicketStatus.CLAIMED: N_("Claimed"),
    TicketStatus.IN_PROGRESS: N_("In progress"),
    TicketStatus.RESOLVED: N_("Resolved"),
    TicketStatus.CLOSED: N_("Closed"),
    TicketStatus.WITHDRAWN: N_("Withdrawn by the resident"),
}

_BUTTONS = {
    "claim": N_("✋ Claim"),
    "start": N_("▶️ Start"),
    "resolve": N_("✅ Resolve"),
    "release": N_("↩️ Release"),
    "transfer": N_("↪️ Transfer"),
    "escalate": N_("⬆️ Escalate"),
    "details": N_("ℹ️ Details"),
}

_ACTIONS_BY_STATUS = {
    TicketStatus.OPEN: (("claim", "transfer"), ("escalate", "details")),
    TicketStatus.CLAIMED: (("start", "resolve"), ("release", "transfer"),
                           ("escalate", "details")),
    TicketStatus.IN_PROGRESS: (("resolve", "transfer"), ("escalate", "details")),
}


_ROLE_LABELS = {
    Role.GRID: N_("Grid worker"),
    Role.COMMUNITY: N_("Community centre"),
    Role.STREET: N_("Street centre"),
    Role.DISTRICT: N_("District centre"),
    Role.STAFF: N_("Staff"),
}


def role_name(t: Translator, node: OrgNode | None) -> str:
    """How residents see whoever acts from a group: "Grid worker", "Street centre", … or the
    desk's own name (plain text; escape it for HTML)."""
    role = role_of(node)
    if role is Role.DESK:
        return node.display_name(t.language)
    return t(_ROLE_LABELS[role])


# What a resident's ticket is to them, in the news about it: a consultation is not a report.
_REQUESTS = {
    "report": N_("your report"),
    "consultation": N_("your consultation"),
    "enterprise_dispute": N_("your enterprise matter"),
    "checkup": N_("your check-up booking"),
}


# Reasons the system gives when it moves a ticket on its own (bot.actions.timers.deadlines logs
# "overdue"): codes in the log, words for whoever reads the history.
SYSTEM_REASONS = {
    "overdue": N_("it was not resolved by its deadline"),
}


def your_request(t: Translator, ticket: Ticket) -> str:
    """"your consultation", "您的咨询": the {request} of the texts residents get about it."""
    return t(_REQUESTS.get(ticket.kind, _REQUESTS["report"]))


def category_name(config: Config, code: str, language: str) -> str:
    category = config.category(code)
    return category.names.get(language) if category else code


def local_time(config: Config, moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(config.timezone).strftime("%m-%d %H:%M")


WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


def day_label(t: Translator, day: date | str) -> str:
    """A day as people are shown it, on buttons and in text alike, so the day a resident picks
    reads the same on the workers' card: "12-01 (Tue)", short, and the weekday helps people
    choose. `day` may be the ISO form kept in a draft or a ticket's details."""
    value = date.fromisoformat(day) if isinstance(day, str) else day
    weekday = t(WEEKDAYS[value.weekday()])
    return f"{value:%m-%d} ({weekday})"


def trimmed(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reporter_line(t: Translator, ticket: Ticket) -> str:
    # Reported from the web chat: no messenger account stands behind the person, and the
    # phone number is only what they typed.
    web = is_web_user(ticket.reporter_id)
    via = "🌐 " + t("Web chat") + " · " if web else ""
    if ticket.anonymous:
        return via + t("Anonymous report")
    name = user_html(ticket.reporter_name or t("Resident"))
    # The whole number only when the resident asked to be called back (a consultation).
    phone = (user_html(ticket.reporter_phone or "") if wants_call_back(ticket)
             else mask_phone(ticket.reporter_phone))
    if phone and web:
        phone = t("{phone} (not verified)", phone=phone)
    return via + (f"{name} · {phone}" if phone else name)


# How a consultation is to be answered (ticket.details["way"]).
WAY_CHAT, WAY_CALL, WAY_VISIT = "chat", "call", "visit"
WAY_LABELS = {
    WAY_CHAT: N_("💬 Answer in this chat"),
    WAY_CALL: N_("📞 Call me back"),
    WAY_VISIT: N_("🏢 In person at the service point"),
}


def wants_call_back(ticket: Ticket) -> bool:
    details = ticket.details or {}
    return details.get("way") == WAY_CALL and bool(details.get("call_consent"))


def details_lines(t: Translator, ticket: Ticket) -> list[str]:
    """The enterprise a request is made for; what a consultation asked for (how to answer,
    the day of a visit)."""
    details = ticket.details or {}
    lines = []
    if details.get("enterprise") and not _has_booking(ticket):  # checkup_lines names it
        lines.append(f"🏭 {user_html(str(details['enterprise']))}")
    way = details.get("way")
    if way in WAY_LABELS:
        line = t("Answer: {way}", way=t(WAY_LABELS[way]))
        if way == WAY_VISIT and details.get("visit_day"):
            line += " · " + day_label(t, str(details["visit_day"]))
        lines.append(line)
    return lines


def card_text(t: Translator, config: Config, ticket: Ticket, path: Sequence[OrgNode],
              attachments: Sequence[TicketAttachment], *, note: str | None = None) -> str:
    lines = []
    if note:
        lines.append(f"<i>{note}</i>")
    number = t("No. {number}", number=ticket.number)
    category = html.escape(category_name(config, ticket.category, t.language))
    urgent = " · " + t("🚨 URGENT") if ticket.urgent else ""
    lines.append(f"<b>{number}</b> · {category}{urgent}")
    if not _has_booking(ticket) or (booking_status(ticket) is None
                                    and ticket.status in OPEN_STATUSES):
        # A check-up's booking line says where it stands (its ticket's "waiting to be
        # claimed" beside "confirmed" would only confuse); a ticket reopened after its
        # check-up is handled as any other and shows its status again.
        status = t(STATUS_LABELS[ticket.status])
        if ticket.holder_name and ticket.status in HELD_STATUSES:
            status += " · " + t("held by {name}", name=user_html(ticket.holder_name))
        lines.append(t("Status: {status}", status=status))
    if path:
        place = " / ".join(html.escape(n.display_name(t.language)) for n in path)
        lines.append(f"📍 {place}")
    if ticket.erased_at is not None:  # what is left is statistics (bot.services.privacy)
        lines.append(t("🔒 The resident's personal data has been erased."))
    if ticket.address:
        lines.append(f"🏠 {user_html(ticket.address)}")
    if ticket.description:
        lines.append(f"📝 {user_html(trimmed(ticket.description, CARD_DESCRIPTION_LIMIT))}")
    if attachments:
        lines.append(t("📎 {count} attachment(s)", count=len(attachments)))
    lines.extend(details_lines(t, ticket))
    lines.extend(checkup_lines(t, config, ticket))
    if ticket.erased_at is None:
        lines.append(f"👤 {reporter_line(t, ticket)}")
    if ticket.kind != "checkup":
        lines.append(t("⏰ Due by {time}", time=local_time(config, ticket.deadline_at)))
    if ticket.resolution and ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        lines.append(t("Resolution: {note}", note=user_html(trimmed(ticket.resolution, 600))))
    return "\n".join(lines)


def card_keyboard(t: Translator, ticket: Ticket) -> dict:
    if ticket.kind == "checkup" and booking_status(ticket) is not None:
        return checkup_keyboard(t, ticket)
    rows = _ACTIONS_BY_STATUS.get(ticket.status, (("details",),))
    return {"inline_keyboard": [
        [{"text": t(_BUTTONS[action]), "callback_data": f"{ACTION_PREFIX}{action}:{ticket.id}"}
         for action in row] for row in rows]}


# -- check-ups: the booking's card lines and buttons ----------------------------------------------
# A check-up's ticket carries its booking in ``details`` (bot.services.bookings keeps them in
# step): topics, the slot, the booking's status, a time proposed to the enterprise, and whether
# the slot is over. Its buttons are handled by handlers.booking_desk ("bk:" callbacks); once
# the booking is over (done, no-show, cancelled) a reopened ticket gets the ordinary buttons.

BOOKING_PREFIX = "bk:"
BOOKING_LABELS = {
    "booked": N_("Waiting for the desk to confirm"),
    "confirmed": N_("Confirmed"),
    "cancelled": N_("Cancelled by the enterprise"),
    "done": N_("Done"),
    "no_show": N_("No-show"),
}
_BOOKING_BUTTONS = {
    "cf": N_("✅ Confirm"),
    "as": N_("🧑‍⚖️ Assign lawyer (me)"),
    "pp": N_("🕘 Propose another time"),
    "dn": N_("📄 Done"),
    "ns": N_("🚫 No-show"),
}


def _has_booking(ticket: Ticket) -> bool:
    return ticket.kind == "checkup" and "booking" in (ticket.details or {})


def booking_status(ticket: Ticket) -> str | None:
    """The booking's status while it is active (booked or confirmed), else None."""
    status = (ticket.details or {}).get("booking")
    return status if status in ("booked", "confirmed") else None


def _moment(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def slot_label(config: Config, starts_at: datetime | None, ends_at: datetime | None) -> str:
    """2026-12-01 09:00–10:00, in local time."""
    if starts_at is None:
        return "—"
    start = starts_at.astimezone(config.timezone)
    text = start.strftime("%Y-%m-%d %H:%M")
    if ends_at is not None:
        text += "–" + ends_at.astimezone(config.timezone).strftime("%H:%M")
    return text


def topic_names(config: Config, codes: Sequence[str], language: str) -> str:
    names = {topic.code: topic.names.get(language) for topic in config.checkup_topics}
    return format_names([html.escape(names.get(code) or code) for code in codes], language)


def checkup_lines(t: Translator, config: Config, ticket: Ticket) -> list[str]:
    """The booking on a check-up's card: enterprise, topics, time, status, lawyer, proposal."""
    details = ticket.details or {}
    if not _has_booking(ticket):
        return []
    lines = []
    if details.get("enterprise"):
        lines.append(f"🏢 {user_html(str(details['enterprise']))}")
    if details.get("topics"):
        lines.append(t("Topics: {topics}", topics=topic_names(config, details["topics"],
                                                               t.language)))
    when = slot_label(config, _moment(details.get("starts_at")), _moment(details.get("ends_at")))
    lines.append(t("🗓 Check-up: {time}", time=when))
    status = BOOKING_LABELS.get(details["booking"])
    if status:
        lines.append(t("Booking: {status}", status=t(status)))
    if ticket.holder_name and ticket.status in HELD_STATUSES:
        lines.append(t("Lawyer: {name}", name=user_html(ticket.holder_name)))
    proposal = details.get("proposal")
    if proposal:
        lines.append(t("Proposed to the enterprise: {time}", time=slot_label(
            config, _moment(proposal.get("starts_at")), _moment(proposal.get("ends_at")))))
    return lines


def checkup_keyboard(t: Translator, ticket: Ticket) -> dict:
    status = booking_status(ticket)
    if (ticket.details or {}).get("ended"):
        rows = [("dn", "ns"), ("as", "details")]
    elif status == "booked":
        rows = [("cf", "as"), ("pp", "details")]
    else:
        rows = [("as", "pp"), ("details",)]

    def button(action: str) -> dict:
        if action == "details":  # the history, as on every card (bot.views.history)
            label = _BUTTONS[action]
            return {"text": t(label),
                    "callback_data": f"{ACTION_PREFIX}details:{ticket.id}"}
        return {"text": t(_BOOKING_BUTTONS[action]),
                "callback_data": f"{BOOKING_PREFIX}{action}:{ticket.id}"}

    return {"inline_keyboard": [[button(action) for action in row] for row in rows]}
