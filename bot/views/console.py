"""What the centre's console says about its numbers: one line per rate on how it is counted,
and the period's label, in the person's language.

The definitions themselves are in ``bot.services.stats`` (the digests' numbers) and
``bot.services.console``; these lines must say the same thing in words.
"""

from __future__ import annotations

from datetime import datetime

from bot.config import Config
from bot.i18n import Translator
from bot.services.stats import Period


def explain_response(t: Translator, config: Config) -> str:
    return t("Response rate (响应率): of the tickets reported in the period and not withdrawn, "
             "the share first claimed within the claim time of their category at their "
             "level ({limit} unless set otherwise; counted from the end of quiet hours for "
             "tickets that are not urgent), the time after which an unclaimed ticket is "
             "passed up. Tickets still within that time and unclaimed are not counted yet.",
             limit=t.duration(config.sla().claim_escalate_after))


def explain_resolution(t: Translator) -> str:
    return t("Resolution rate (办结率): of the tickets reported in the period and not "
             "withdrawn, the share resolved before the period ended; a ticket reopened since "
             "counts as not resolved. A day's figure is the share resolved the same day.")


def explain_on_time(t: Translator) -> str:
    return t("On-time rate: of the resolutions made in the period against a deadline, the "
             "share made by the deadline, each counted at the node that made it; a ticket "
             "passed up for being overdue stays late.")


def explain_satisfaction(t: Translator) -> str:
    return t("Satisfaction rate (满意率): of the follow-up answers given in the period, the "
             "share saying the problem is solved with a score of 3 (fairly satisfied) or "
             "better on the 1–5 scale, counted at the node that resolved the ticket.")


def explain(t: Translator, config: Config) -> dict[str, str]:
    """The four lines, keyed as the console's rates are."""
    return {"response": explain_response(t, config), "resolution": explain_resolution(t),
            "on_time": explain_on_time(t), "satisfaction": explain_satisfaction(t)}


def period_label(t: Translator, period: Period, now: datetime) -> str:
    """The days the period covers, and the time it reaches if it is not over."""
    first, last = period.first_day.isoformat(), period.last_day.isoformat()
    dates = first if first == last else f"{first} – {last}"
    if not period.so_far:
        return dates
    return t("{dates}, up to {time}", dates=dates,
             time=now.astimezone(period.zone).strftime("%H:%M"))
