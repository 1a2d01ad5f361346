"""How a report reads: the text and the chart shared by /stats and the digests.

The numbers and their definitions are in ``bot.services.stats``; this module only renders them
in a group's language. Node names come from imported files and the config, so they are escaped
before they go into HTML (a chart's text is drawn, not parsed: it takes them as they are).
"""

from __future__ import annotations

import html
from datetime import timedelta

from bot.i18n import Translator
from bot.services import charts
from bot.services.stats import Cadence, Line, Report, Tally
from bot.services.text import user_html
from bot.views import View

# Telegram takes 4096 characters per message and 1024 per caption; the breakdown stops short
# of that and says how many lines it left out (the chart shows up to charts.MAX_LABELS).
TEXT_BUDGET = 3800
NAME_LIMIT = 64


def _rate(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.1f}".rstrip("0").rstrip(".") + "%"


def _duration(t: Translator, value: timedelta | None) -> str:
    return "—" if value is None else t.duration(value, approximate=True)


def _name(t: Translator, line: Line) -> str:
    if line.node is None:
        return t("this centre itself")
    return line.node.display_name(t.language)[:NAME_LIMIT]


def period_label(t: Translator, report: Report) -> str:
    period = report.period
    first, last = period.first_day.isoformat(), period.last_day.isoformat()
    dates = first if first == last else f"{first} – {last}"
    if not period.so_far:
        return dates
    return t("{dates}, up to {time}", dates=dates,
             time=report.now.astimezone(period.zone).strftime("%H:%M"))


def _counts(t: Translator, tally: Tally) -> str:
    return t("new {new} · resolved {resolved} · open {open} · overdue {overdue}",
             new=tally.new, resolved=tally.resolved, open=tally.open, overdue=tally.overdue)


def render_text(t: Translator, report: Report, title: str) -> str:
    """The report as an HTML message: the totals, the headline rates, then a line per child
    node (as many as fit)."""
    total = report.total
    head = [
        f"📊 <b>{html.escape(title)}</b>",
        html.escape(period_label(t, report)),
        "",
        t("Tickets: {counts}", counts=_counts(t, total)),
        t("Resolution rate {resolution} · on-time rate {on_time} · satisfaction rate "
          "{satisfaction}", resolution=_rate(total.resolution_rate),
          on_time=_rate(total.on_time_rate), satisfaction=_rate(total.satisfaction_rate)),
        t("Average time to claim {claim} · to resolve {resolve}",
          claim=_duration(t, total.average_claim),
          resolve=_duration(t, total.average_resolve)),
    ]
    if not report.lines:
        return "\n".join(head)
    body = ["", t("<b>By area:</b>")]
    size = sum(len(part) + 1 for part in head + body)
    for index, line in enumerate(report.lines):
        tally = line.tally
        text = t("• <b>{place}</b>: {counts}; resolution rate {resolution}, on time {on_time}, "
                 "satisfaction {satisfaction}", place=html.escape(_name(t, line)),
                 counts=_counts(t, tally), resolution=_rate(tally.resolution_rate),
                 on_time=_rate(tally.on_time_rate), satisfaction=_rate(tally.satisfaction_rate))
        if size + len(text) + 1 > TEXT_BUDGET:
            body.append(t("… and {count} more", count=len(report.lines) - index))
            break
        body.append(text)
        size += len(text) + 1
    return "\n".join(head + body)


def chart_spec(t: Translator, report: Report, title: str) -> dict | None:
    """A chart of the breakdown, when there is one to compare (two lines or more) and
    anything to show; None otherwise."""
    lines = list(report.lines)[:charts.MAX_LABELS]
    if len(lines) < 2 or report.total.quiet:
        return None

    def series(name: str, values: list) -> dict:
        return {"name": name, "values": values}

    tallies = [line.tally for line in lines]
    return {
        "title": f"{title}  {period_label(t, report)}",
        "labels": [_name(t, line) for line in lines],
        "panels": [
            {"title": t("Tickets"), "series": [
                series(t("New"), [x.new for x in tallies]),
                series(t("Resolved"), [x.resolved for x in tallies]),
                series(t("Open"), [x.open for x in tallies]),
                series(t("Overdue"), [x.overdue for x in tallies])]},
            {"title": t("Rates"), "percent": True, "series": [
                series(t("Resolution rate"), [x.resolution_rate for x in tallies]),
                series(t("On-time rate"), [x.on_time_rate for x in tallies]),
                series(t("Satisfaction rate"), [x.satisfaction_rate for x in tallies])]},
        ],
    }


def chart_caption(t: Translator, report: Report, title: str) -> str:
    return f"📈 <b>{html.escape(title)}</b>\n{html.escape(period_label(t, report))}"


def title(t: Translator, report: Report) -> str:
    """The title of /stats."""
    return t("Statistics: {place}", place=report.node.display_name(t.language)[:NAME_LIMIT])


def digest_title(t: Translator, cadence: Cadence, report: Report) -> str:
    place = report.node.display_name(t.language)[:NAME_LIMIT]
    if cadence is Cadence.DAILY:
        return t("Daily digest: {place}", place=place)
    if cadence is Cadence.WEEKLY:
        return t("Weekly digest: {place}", place=place)
    return t("Monthly digest: {place}", place=place)


def only_in_groups(t: Translator) -> View:
    return View(t(
        "Send /stats in a group that serves a grid, centre or desk: it shows the numbers "
        "of everything that group serves."))


def unknown_span(t: Translator, given: str) -> View:
    return View(t(
        "<code>{given}</code> is not a period I know. Send <code>/stats today</code>, "
        "<code>/stats week</code> or <code>/stats month</code> (without a period: this "
        "week).", given=user_html(given[:32])))


def unbound(t: Translator) -> View:
    return View(t(
        "This group does not serve a grid, centre or desk yet, so there are no numbers "
        "to show. An administrator binds it with <code>/bind CODE</code>."))
