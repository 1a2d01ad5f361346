"""My tickets in words: a resident's tickets page by page, one ticket with its history in
plain words, and the two one-step drafts ("Add information", "Withdraw").

Callback data: my:list (from the main menu: a new message), my:page:<n> (edits in place),
my:t:<id>, my:add:<id>, my:wd:<id>, my:cancel.

A co-reporter (someone who joined another resident's report) sees what the ticket is and how
it went — category, place, status and its changes — but not the description, the address or
anyone else's messages: those are the reporter's.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from bot.config import Config
from bot.i18n import N_, Translator
from bot.services import relay
from bot.services.text import user_html
from bot.views import Button, View
from bot.views.cards import STATUS_LABELS, SYSTEM_REASONS, category_name, local_time, trimmed
from bot.views.places import place_html
from bot.views.ratings import rating_words
from storage.models import OrgNode, Ticket, TicketEvent

MENU_MY_TICKETS = "my:list"
PREFIX = "my:"
ADD_INFO = "addinfo"
WITHDRAW = "withdraw"
MY_FLOWS = (ADD_INFO, WITHDRAW)

DESCRIPTION_LIMIT = 500
EVENT_TEXT_LIMIT = 300
DETAIL_LIMIT = 3900  # of 4096: what the markup and the note about cut history may need

_FILE_LABELS = {
    "photo": N_("[photo]"),
    "video": N_("[video]"),
    "document": N_("[document]"),
    "voice": N_("[voice message]"),
    "video_note": N_("[video message]"),
}


# -- list and detail ------------------------------------------------------------------------------

def listing(t: Translator, config: Config, tickets: Sequence[Ticket], page: int,
            pages: int) -> View:
    """Page ``page`` (from 0) of ``pages`` of the person's tickets, newest first."""
    if not tickets and page == 0:
        return View(t("You have no tickets yet. To report an issue, open the main menu with "
                      "/start."))
    lines = [t("<b>My tickets</b> · page {page} of {pages}", page=page + 1, pages=pages)]
    rows = []
    for ticket in tickets:
        number = t("No. {number}", number=ticket.number)
        status = t(STATUS_LABELS[ticket.status])
        category = category_name(config, ticket.category, t.language)
        created = local_time(config, ticket.created_at)
        lines.append(f"\n<b>{number}</b> · {html.escape(category)}\n{status} · {created}")
        rows.append([Button(f"{number} · {status}", f"{PREFIX}t:{ticket.id}")])
    nav = []
    if page > 0:
        nav.append(Button(t("‹ Newer"), f"{PREFIX}page:{page - 1}"))
    if page < pages - 1:
        nav.append(Button(t("Older ›"), f"{PREFIX}page:{page + 1}"))
    rows.append(nav)
    return View("\n".join(lines), View.rows(*rows))


def detail(t: Translator, config: Config, ticket: Ticket, path: Sequence[OrgNode],
           viewer_id: int, history: list[str], *, may_add: bool, may_withdraw: bool) -> View:
    number = t("No. {number}", number=ticket.number)
    category = html.escape(category_name(config, ticket.category, t.language))
    head = [f"<b>{number}</b> · {category}",
            t("Status: {status}", status=t(STATUS_LABELS[ticket.status]))]
    if path:
        head.append(f"📍 {place_html(path, t.language)}")
    # The address and the description are the reporter's words, not a co-reporter's.
    if ticket.reporter_id == viewer_id:
        if ticket.address:
            head.append(f"🏠 {user_html(ticket.address)}")
        if ticket.description:
            head.append(f"📝 {user_html(trimmed(ticket.description, DESCRIPTION_LIMIT))}")
    else:
        head.append(t("You joined this report; what the resident who made it wrote stays "
                      "with them and the staff."))
    actions = []
    if may_add:
        actions.append(Button(t("➕ Add information"), f"{PREFIX}add:{ticket.id}"))
    if may_withdraw:
        actions.append(Button(t("✖️ Withdraw"), f"{PREFIX}wd:{ticket.id}"))
    return View(_fitted(t, "\n".join(head), history),
                View.rows(actions, [Button(t("‹ Back to the list"), f"{PREFIX}page:0")]))


def _fitted(t: Translator, head: str, history: list[str]) -> str:
    """The head and as much of the history as fits, dropping the oldest entries first."""
    title = t("<b>History</b>")
    kept = list(history)
    while True:
        lines = [head, "", title]
        if len(kept) < len(history):
            lines.append(t("… earlier entries are not shown."))
        text = "\n".join(lines + kept)
        if relay.utf16_len(text) <= DETAIL_LIMIT or not kept:
            return text
        kept.pop(0)


def history(t: Translator, config: Config, events: Sequence[TicketEvent], ticket: Ticket,
            viewer_id: int, places: Mapping[str, OrgNode]) -> list[str]:
    """The ticket's events as ``viewer_id`` may read them; ``places``: the nodes they name,
    by code."""
    lines = []
    reporter = ticket.reporter_id == viewer_id
    for event in events:
        said = sentence(t, event, ticket, viewer_id, places, reporter=reporter)
        if said is not None:
            lines.append(f"<i>{local_time(config, event.at)}</i> · {said}")
    return lines


def sentence(t: Translator, event: TicketEvent, ticket: Ticket, viewer_id: int,
             places: Mapping[str, OrgNode], *, reporter: bool) -> str | None:
    """One event in plain words. Workers appear by what they did, never by name or account.
    Each resident sees their own messages only; the workers' messages are the reporter's
    conversation, and a co-reporter (`reporter` False) sees the status changes alone."""
    data = event.data or {}
    kind = event.kind

    def text(key: str) -> str:
        value = relay.clean_text(str(data.get(key) or ""))
        return user_html(trimmed(value, EVENT_TEXT_LIMIT))

    def place(key: str) -> str:
        node = places.get(data[key]) if data.get(key) else None
        return html.escape(node.display_name(t.language)) if node else "—"

    if kind == "created":
        return t("Reported.")
    if kind == "co_reporter":
        if event.actor_id == viewer_id:
            return t("You joined this report.")
        return t("Another resident joined this report.") if reporter else None
    if kind == "claimed":
        return t("Claimed by a worker.")
    if kind == "released":
        return t("The worker handed it back; it waits for another worker.")
    if kind == "started":
        return t("Work started.")
    if kind in ("transfer", "transferred", "escalate", "escalated"):
        to = place("to_node")
        reason = text("reason")
        if event.actor_role == "system" and data.get("reason") in SYSTEM_REASONS:
            reason = t(SYSTEM_REASONS[data["reason"]])
        if kind.startswith("transfer"):
            if reason:
                return t("Transferred to {place}. Reason: {reason}", place=to, reason=reason)
            return t("Transferred to {place}.", place=to)
        if reason:
            return t("Escalated to {place}. Reason: {reason}", place=to, reason=reason)
        return t("Escalated to {place}.", place=to)
    if kind == "rerouted" and data.get("to_node"):
        return t("Passed on to {place}.", place=place("to_node"))
    if kind == "resolved":
        return t("Resolved: {note}", note=text("note"))
    if kind == "reopened":
        if data.get("to_node") == data.get("from_node"):  # at the top it stays where it was
            return t("Reopened at {place}.", place=place("to_node"))
        return t("Reopened and passed to {place}.", place=place("to_node"))
    if kind == "rated":
        if event.actor_id != viewer_id:
            return None
        return t("You rated it: {answer}",
                 answer=rating_words(t, bool(data.get("solved")), int(data.get("score") or 0),
                                    ticket.kind))
    if kind == "closed":
        return t("Closed.")
    if kind == "withdrawn":
        if not reporter:
            return t("Withdrawn by the resident who reported it.")
        return t("Withdrawn. Reason: {reason}", reason=text("reason"))
    if kind in (relay.RESIDENT_MESSAGE, relay.WORKER_MESSAGE):
        mine = kind == relay.RESIDENT_MESSAGE and event.actor_id == viewer_id
        if not mine and not (reporter and kind == relay.WORKER_MESSAGE):
            return None
        label = _FILE_LABELS.get(data.get("file") or "")
        message = " ".join(part for part in (t(label) if label else "", text("text")) if part)
        message = message or t("[media]")
        if mine:
            return t("You: {message}", message=message)
        return t("Worker: {message}", message=message)
    return None  # internal events (reminders, reroutes without a place) stay internal


# -- the two drafts -------------------------------------------------------------------------------

def prompt(t: Translator, flow: str, ticket: Ticket) -> str:
    if flow == ADD_INFO:
        return t("Send what you want to add to No. {number}: a text, a photo, a video, a "
                 "document or a voice message. Send /cancel to stop.", number=ticket.number)
    return t("Why do you want to withdraw No. {number}? Please write the reason in a few "
             "words ({min} to {max} characters). Send /cancel to keep the ticket open.",
             number=ticket.number, min=relay.REASON_MIN_CHARS, max=relay.REASON_MAX_CHARS)


def asking(t: Translator, flow: str, ticket: Ticket, *, before: str = "") -> View:
    """The draft's question (after ``before``: why it is asked again), with Cancel."""
    text = prompt(t, flow, ticket)
    if before:
        text = before + "\n\n" + text
    return View(text, View.rows([Button(t("Cancel"), f"{PREFIX}cancel")]))


def report_dropped(t: Translator) -> str:
    return t("Your unfinished report was discarded.")


def not_open(t: Translator, ticket: Ticket) -> str:
    return t("No. {number} is no longer open ({status}).", number=ticket.number,
             status=t(STATUS_LABELS[ticket.status]))


def cancelled(t: Translator, withdrawn: Ticket | None) -> View:
    """``withdrawn``: the ticket a withdrawal was cancelled for."""
    if withdrawn is not None:
        return View(t("Cancelled. No. {number} stays as it is.", number=withdrawn.number))
    return View(t("Cancelled. Nothing was added."))


def gone(t: Translator) -> View:
    return View(t("This ticket is no longer available."))


def added(t: Translator, ticket: Ticket, *, sent: bool) -> View:
    if sent:
        return View(t("Added to No. {number} and sent to the staff handling it.",
                      number=ticket.number))
    return View(t("Added to No. {number}. No staff group has taken the ticket yet; they will "
                  "see it when it reaches one.", number=ticket.number))


def reason_needed(t: Translator) -> str:
    return t("Please write the reason as text, {min} to {max} characters.",
             min=relay.REASON_MIN_CHARS, max=relay.REASON_MAX_CHARS)


def cannot_withdraw(t: Translator, ticket: Ticket) -> View:
    return View(t("No. {number} can no longer be withdrawn: it is {status}.",
                  number=ticket.number, status=t(STATUS_LABELS[ticket.status])))


def withdrawn(t: Translator, ticket: Ticket) -> View:
    return View(t("No. {number} is withdrawn. Thank you for letting us know.",
                  number=ticket.number))


def withdrawn_for_group(t: Translator, ticket: Ticket, reason: str) -> str:
    return t("<b>No. {number}</b> was withdrawn by the resident. Reason: {reason}",
             number=ticket.number, reason=user_html(reason))


def withdrawn_for_co_reporter(t: Translator, ticket: Ticket) -> str:
    return t("<b>No. {number}</b> was withdrawn by the resident who reported it; it is "
             "closed now.", number=ticket.number)


# -- the drafts' timer (reminded when idle, dropped when it expires) ------------------------------

def draft_reminder(t: Translator, flow: str, ticket: Ticket, until: str) -> View:
    """The reminder of an idle draft of ours, with "Continue" (which asks the question again,
    all a one-step draft needs) and "Cancel"; ``until``: when it will be discarded."""
    if flow == ADD_INFO:
        text = t("⏰ You started adding information to No. {number} but have not sent it yet.",
                 number=ticket.number)
        again = f"{PREFIX}add:{ticket.id}"
    else:
        text = t("⏰ You started withdrawing No. {number} but have not given the reason yet.",
                 number=ticket.number)
        again = f"{PREFIX}wd:{ticket.id}"
    return View(f"{text}\n{until}", View.rows([Button(t("▶️ Continue"), again),
                                               Button(t("Cancel"), f"{PREFIX}cancel")]))


def draft_expired(t: Translator, flow: str, ticket: Ticket) -> str:
    """What a draft of ours that expired leaves the resident to know."""
    if flow == ADD_INFO:
        return t("Nothing was added to No. {number}: the request was not continued and has "
                 "been dropped. Use /mytickets to add information.", number=ticket.number)
    return t("No. {number} was not withdrawn: no reason was given, so the request has "
             "been dropped. Use /mytickets if you still want to withdraw it.",
             number=ticket.number)

