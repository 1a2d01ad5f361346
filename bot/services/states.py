"""The ticket state machine as one table: which action leads from which status to which.

Every change of a ticket's status goes through ``bot.services.tickets.transition``, which
reads this table, so a move the table does not list cannot happen by any path: a button in a
group, the resident's /my, a timer, a check-up booking or a data-rights request.

    open ──claim──▶ claimed ──start──▶ in_progress ──resolve──▶ resolved ──close──▶ closed
    claimed ──release──▶ open;  claimed ──resolve──▶ resolved;  resolved ──reopen──▶ open
    open | claimed | in_progress ──withdraw──▶ withdrawn  (the resident takes it back)
    open | claimed | in_progress ──move──▶ open  (transfer or escalation: it arrives
                                                   unclaimed at its new node)
    claimed | in_progress ──hand_over──▶ open  (its group changes, its holder is not a member)
    claimed | in_progress ──take_over──▶ as it was  (another lawyer takes a check-up on)
    open | claimed | in_progress ──no_show──▶ closed  (nobody came to the check-up)
"""

from __future__ import annotations

from enum import StrEnum

from storage.models import TicketStatus

OPEN, CLAIMED, IN_PROGRESS = TicketStatus.OPEN, TicketStatus.CLAIMED, TicketStatus.IN_PROGRESS
RESOLVED, CLOSED, WITHDRAWN = TicketStatus.RESOLVED, TicketStatus.CLOSED, TicketStatus.WITHDRAWN


class Action(StrEnum):
    CLAIM = "claim"
    RELEASE = "release"
    START = "start"
    RESOLVE = "resolve"
    CLOSE = "close"          # the residents are content, or did not answer in time
    REOPEN = "reopen"        # a resident says a resolved ticket is not solved
    WITHDRAW = "withdraw"
    MOVE = "move"            # transfer or escalate
    HAND_OVER = "hand_over"  # the ticket's group changes while it keeps its node
    TAKE_OVER = "take_over"  # another member holds it from now on
    NO_SHOW = "no_show"


TRANSITIONS: dict[tuple[TicketStatus, Action], TicketStatus] = {
    (OPEN, Action.CLAIM): CLAIMED,
    (CLAIMED, Action.RELEASE): OPEN,
    (CLAIMED, Action.START): IN_PROGRESS,
    (CLAIMED, Action.RESOLVE): RESOLVED,
    (IN_PROGRESS, Action.RESOLVE): RESOLVED,
    (RESOLVED, Action.CLOSE): CLOSED,
    (RESOLVED, Action.REOPEN): OPEN,
    **{(status, Action.WITHDRAW): WITHDRAWN for status in (OPEN, CLAIMED, IN_PROGRESS)},
    **{(status, Action.MOVE): OPEN for status in (OPEN, CLAIMED, IN_PROGRESS)},
    **{(status, Action.HAND_OVER): OPEN for status in (CLAIMED, IN_PROGRESS)},
    **{(status, Action.TAKE_OVER): status for status in (CLAIMED, IN_PROGRESS)},
    **{(status, Action.NO_SHOW): CLOSED for status in (OPEN, CLAIMED, IN_PROGRESS)},
}


def allows(status: str, action: Action) -> bool:
    """Whether the table lets ``action`` act on a ticket in ``status``."""
    return (TicketStatus(status), action) in TRANSITIONS


def sources(action: Action) -> tuple[TicketStatus, ...]:
    """The statuses from which ``action`` may act, in the order of TicketStatus."""
    return tuple(status for status in TicketStatus if (status, action) in TRANSITIONS)


def target(action: Action, among: tuple[TicketStatus, ...]) -> TicketStatus | None:
    """The one status ``action`` leads to from any of ``among`` (allowed sources), or None
    when it keeps each ticket's status as it is. Written as one compare-and-set, an action
    must lead all its sources to the same status or leave all of them alone."""
    targets = {TRANSITIONS[(status, action)] for status in among}
    if all(TRANSITIONS[(status, action)] == status for status in among):
        return None
    if len(targets) != 1:
        raise ValueError(f"{action} leads {among} to different statuses")
    return targets.pop()
