"""/stats: the numbers of everything a group serves, for the current period so far.

Read only: nothing is committed (the group's language and its node are read, the numbers
aggregated). The chart, when there is one, is drawn here and comes as the text's attachment.
"""

from __future__ import annotations

from bot.actions.people import Who, language
from bot.runtime import Runtime
from bot.services import charts, stats
from bot.views import Answer, Attachment, View
from bot.views import stats as views


async def show_stats(rt: Runtime, who: Who, argument: str) -> Answer:
    """``argument``: today, week or month (empty: this week)."""
    t = await language(rt, who)
    if not who.in_group:
        return Answer(say=[views.only_in_groups(t)])
    span = stats.parse_span(argument)
    if span is None:
        return Answer(say=[views.unknown_span(t, argument)])
    now = rt.clock.now()
    period = stats.current_period(span, now, rt.config)
    report = None
    async with rt.uow() as uow:
        group = await uow.groups.get(who.chat_id)
        if group is not None and group.node_id is not None:
            report = await stats.subtree_report(uow, group.node_id, period, now)
    if report is None:
        return Answer(say=[views.unbound(t)])
    title = views.title(t, report)
    attachments = ()
    spec = views.chart_spec(t, report, title)
    if spec is not None:
        attachments = (Attachment("photo", data=await charts.render(spec), filename="stats.png",
                                  caption=views.chart_caption(t, report, title)),)
    return Answer(say=[View(views.render_text(t, report, title), attachments=attachments)])
