"""What the timers say in a ticket's group: reminders of unclaimed tickets and deadlines, and
the notes on a ticket passed up because nobody claimed or resolved it in time."""

from __future__ import annotations

from bot.i18n import Translator
from bot.views.worker import mention
from storage.models import OrgNode, Ticket


def unclaimed(t: Translator, node: OrgNode | None, number: str, waited: str) -> str:
    """The reminder, with the way out that fits the group: a grid's workers send on what is not
    their grid's; a desk what is not its kind of work; a centre what a grid or desk below
    should handle."""
    if node is not None and node.level == "grid":
        return t("⏰ <b>No. {number}</b> has waited {waited} and nobody has claimed it yet. "
                 "Please claim it, or transfer it if it is not for this grid.",
                 number=number, waited=waited)
    if node is not None and node.level == "desk":
        return t("⏰ <b>No. {number}</b> has waited {waited} and nobody has claimed it yet. "
                 "Please claim it, or transfer it if it is not for this desk.",
                 number=number, waited=waited)
    return t("⏰ <b>No. {number}</b> has waited {waited} and nobody has claimed it yet. Please "
             "claim it, or transfer it to the grid or desk that should handle it.",
             number=number, waited=waited)


def holder(ticket: Ticket) -> str:
    """A mention of the holder, so that Telegram notifies them in the group."""
    if ticket.holder_id is None:
        return ""
    return mention(ticket.holder_id, ticket.holder_name or str(ticket.holder_id)) + " "


def due_soon(t: Translator, ticket: Ticket, when: str, *, top: bool) -> str:
    """The reminder before the deadline; ``top``: nobody above to ask for help."""
    if ticket.holder_id is None:
        return t("⏳ <b>No. {number}</b> is due by {time} and nobody holds it yet.",
                 number=ticket.number, time=when)
    if top:
        return holder(ticket) + t(
            "⏳ <b>No. {number}</b> is due by {time}. Please resolve it in time.",
            number=ticket.number, time=when)
    return holder(ticket) + t(
        "⏳ <b>No. {number}</b> is due by {time}. Please resolve it in time, or "
        "escalate it if it needs help from above.", number=ticket.number, time=when)


def overdue(t: Translator, ticket: Ticket, when: str, grace: str | None) -> str:
    """At the deadline; ``grace`` None: passing up is not promised (it will not happen)."""
    if grace is None:
        return holder(ticket) + t(
            "⚠️ <b>No. {number}</b> is overdue: it was due by {time}. Please resolve it "
            "as soon as possible.", number=ticket.number, time=when)
    return holder(ticket) + t(
        "⚠️ <b>No. {number}</b> is overdue: it was due by {time}. Unless it is "
        "resolved within {grace}, it will be passed up one level.",
        number=ticket.number, time=when, grace=grace)
