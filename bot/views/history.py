"""A ticket's history in plain words, as Details shows it in the group."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from bot.config import Config
from bot.i18n import N_, Translator
from bot.services.text import user_html, utf16_len
from bot.views.cards import STATUS_LABELS, SYSTEM_REASONS, local_time, trimmed
from bot.views.ratings import rating_words
from storage.models import OrgNode, Ticket, TicketEvent

HISTORY_TEXT_LIMIT = 200  # characters of a relayed message shown in Details
# What Telegram takes in one message (telegram.constants.MAX_TEXT_LENGTH).
MAX_TEXT_LENGTH = 4096
# -- the history, in plain words -------------------------------------------------------------

# Check-up bookings (bot.services.bookings) log these; {time} is the slot concerned.
_BOOKING_WORDS = {
    "booking_confirmed": N_("Check-up confirmed by {name}"),
    "booking_proposed": N_("{name} proposed another time: {time}"),
    "booking_moved": N_("The enterprise moved the check-up to {time}"),
    "proposal_accepted": N_("The enterprise accepted the new time: {time}"),
    "proposal_declined": N_("The enterprise kept its time"),
}

def places_named(events: Sequence[TicketEvent]) -> set[str]:
    """The codes of the places the history names (for the action to look up)."""
    return {code for e in events for code in ((e.data or {}).get("from_node"),
                                              (e.data or {}).get("to_node")) if code}


def history_text(t: Translator, config: Config, ticket: Ticket, events: Sequence[TicketEvent],
                 nodes: Mapping[str, OrgNode]) -> str:
    """The ticket's history, one line per event, newest kept when it is long. ``nodes``: the
    places the events name, by code (``places_named``); one no longer known shows its code."""
    lines = [f"{local_time(config, at)} · {words}"
             for at, words in event_lines(t, config, ticket, events, nodes)]
    head = [t("<b>No. {number}</b> · history", number=ticket.number),
            t("Status: {status}", status=t(STATUS_LABELS[ticket.status]))]
    return _fit(head, lines)


def event_lines(t: Translator, config: Config, ticket: Ticket, events: Sequence[TicketEvent],
                nodes: Mapping[str, OrgNode]) -> list[tuple[datetime, str]]:
    """Each event in words (HTML), with its time: the history, for any page that shows it."""
    names = {e.actor_id: e.data.get("name") for e in events
             if e.kind == "claimed" and e.data.get("name")}

    def place(code: str | None) -> str:
        if not code:
            return "?"
        node = nodes.get(code)
        return html.escape(node.display_name(t.language) if node else code)

    return [(event.at, _event_words(t, ticket, event, names, place, config))
            for event in events]


# A request made for an enterprise (an enterprise matter, a check-up) comes from the
# enterprise's contacts, not from residents of the grid: the history says so.
_CONTACT_WORDS = {
    "created": N_("Reported by the enterprise contact"),
    "co_reporter": N_("Another contact of the enterprise joined the request"),
    "resident_unreachable": N_("The enterprise contact blocked the bot and can no longer be "
                               "reached"),
    "unanswered": N_("Closed: the enterprise contact did not answer the follow-up"),
    "erased": N_("The enterprise contact had their personal data erased"),
}
_RESIDENT_WORDS = {
    "created": N_("Reported by the resident"),
    "co_reporter": N_("Another resident joined the request"),
    "resident_unreachable": N_("The resident blocked the bot and can no longer be reached"),
    "unanswered": N_("Closed: the resident did not answer the follow-up"),
    "erased": N_("The resident had their personal data erased"),
}


def _event_words(t: Translator, ticket: Ticket, event: TicketEvent, names: dict,
                 place: Callable[[str | None], str], rt_config: Config) -> str:
    data = event.data or {}
    contact = ticket.enterprise_id is not None
    who = _CONTACT_WORDS if contact else _RESIDENT_WORDS
    name = user_html(names.get(event.actor_id) or data.get("name") or t("a worker"))
    if event.actor_role == "system":
        name = t("the system")
    kind = event.kind
    if kind == "created" and ticket.kind == "checkup":
        return t("Check-up booked by the enterprise contact")
    if kind in ("created", "co_reporter", "resident_unreachable"):
        return t(who[kind])
    if kind == "claimed":
        return t("Claimed by {name}", name=name)
    if kind == "released":
        return t("Released by {name}", name=name)
    if kind == "started":
        return t("Work started by {name}", name=name)
    if kind == "resolved":
        return t("Resolved by {name}: {note}", name=name,
                 note=user_html(data.get("note") or ""))
    if kind in ("transferred", "escalated"):
        source, target = place(data.get("from_node")), place(data.get("to_node"))
        if kind == "escalated":
            text = t("Escalated from {source} to {target} by {name}", source=source,
                     target=target, name=name)
        else:
            text = t("Transferred from {source} to {target} by {name}", source=source,
                     target=target, name=name)
        reason = data.get("reason")
        if event.actor_role == "system" and reason in SYSTEM_REASONS:
            return text + ": " + t(SYSTEM_REASONS[reason])
        return text + (": " + user_html(reason) if reason else "")
    if kind == "withdrawn":
        if contact:
            return t("Withdrawn by the enterprise contact: {reason}",
                     reason=user_html(data.get("reason") or ""))
        return t("Withdrawn by the resident: {reason}",
                 reason=user_html(data.get("reason") or ""))
    if kind == "rerouted":
        if data.get("holder"):
            return t("Passed on to {target}: the group that had it can no longer be reached; "
                     "{name}, who held it there, no longer does",
                     target=place(data.get("to_node")),
                     name=user_html(data["holder"]))
        return t("Passed on to {target}: the group that had it can no longer be reached",
                 target=place(data.get("to_node")))
    if kind == "card_failed":  # bot.delivery.facts
        return t("Its card could not be delivered to the group; the district centre was told")
    if kind == "card_arrived":  # bot.delivery.facts
        return t("Its card reached the group after all")
    if kind == "reopened":
        source, target = place(data.get("from_node")), place(data.get("to_node"))
        # At the top a reopened ticket stays where it was: no "passed from X to X".
        if data.get("from_node") == data.get("to_node"):
            if contact:
                return t("Reopened by the enterprise contact at {place}", place=target)
            return t("Reopened by the resident at {place}", place=target)
        if contact:
            return t("Reopened by the enterprise contact and passed from {source} to "
                     "{target}", source=source, target=target)
        return t("Reopened by the resident and passed from {source} to {target}",
                 source=source, target=target)
    if kind in _BOOKING_WORDS:
        when = data.get("starts_at")
        moment = local_time(rt_config, datetime.fromisoformat(when)) if when else "—"
        return t(_BOOKING_WORDS[kind], name=name, time=moment)
    if kind == "rated":
        answer = rating_words(t, bool(data.get("solved")), int(data.get("score") or 0),
                              ticket.kind)
        if contact:
            return t("Rated by an enterprise contact: {answer}", answer=answer)
        return t("Rated by a resident: {answer}", answer=answer)
    if kind == "closed":
        if data.get("reason") == "unanswered":
            return t(who["unanswered"])
        if data.get("reason") == "erased":
            return t("Closed: the resident had their personal data erased")
        return t("Closed")
    if kind == "erased":  # bot.services.privacy
        if data.get("by") == "retention":
            return t("Personal data erased: the retention period is over")
        if data.get("scope") == "co_reporter":
            return t("A co-reporter had their personal data erased")
        return t(who["erased"])
    # Relayed messages and added information (their kinds belong to the relay).
    message = user_html(trimmed(str(data.get("text") or ""), HISTORY_TEXT_LIMIT))
    if data.get("file"):
        message = (message + " " if message else "") + "📎"
    if event.actor_role == "resident" and contact:
        return t("The enterprise contact: {message}", message=message or "…")
    if event.actor_role == "resident":
        return t("The resident: {message}", message=message or "…")
    if event.actor_role == "worker":
        return t("{name}: {message}", name=name, message=message or "…")
    return t("Other update")


def _fit(head: Sequence[str], lines: Sequence[str]) -> str:
    """Whole lines only (no cut tags); the newest lines win when the history is long."""
    # Counted on the HTML source in UTF-16 units: never less than what Telegram counts.
    budget = MAX_TEXT_LENGTH - sum(utf16_len(h) + 1 for h in head) - 2
    kept: list[str] = []
    for line in reversed(lines):
        size = utf16_len(line) + 1
        if size > budget:
            kept.append("…")
            break
        kept.append(line)
        budget -= size
    return "\n".join([*head, *reversed(kept)])
