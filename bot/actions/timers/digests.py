"""The digest of a cadence falling due (a timer action: the ticker commits it with the task's
"done", so it never commits itself).

One task does the whole cadence in one transaction: the numbers of every node are aggregated
once, then folded into each group's subtree, and every message goes to the outbox with the
task's "done". A chart is queued as a description and drawn when it is sent
(``bot.delivery.uploads``). A group with nothing new, nothing resolved and nothing open gets
no digest for that period. Each digest arms the one after it (``bot.actions.digests``).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time

from bot.actions.digests import arm
from bot.actions.notifier import Notifier
from bot.delivery.uploads import chart_placeholder
from bot.runtime import Runtime
from bot.services import stats
from bot.services.stats import Cadence
from bot.views import stats as views
from storage.models import ScheduledTask
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)


async def send(rt: Runtime, uow: UnitOfWork, task: ScheduledTask) -> None:
    config = rt.config
    cadence = Cadence(task.payload["cadence"])
    day = date.fromisoformat(task.payload["day"])
    now = rt.clock.now()
    latest = stats.send_day(stats.last_send(cadence, now, config), config)
    if latest > day:  # down for longer than a period: the latest digest goes instead
        log.info("%s digest of %s skipped: the one of %s is due as well", cadence, day,
                 latest)
        await arm(uow, config, cadence, stats.last_send(cadence, now, config), now)
        return
    end_of_day = datetime.combine(day, time.max, tzinfo=config.timezone)
    await arm(uow, config, cadence, stats.next_send(cadence, end_of_day, config), now)
    sent = await _post(rt, uow, cadence, stats.digest_period(cadence, day, config), now)
    log.info("%s digest of %s: %d groups", cadence, day, sent)


async def _post(rt: Runtime, uow: UnitOfWork, cadence: Cadence, period: stats.Period,
                now: datetime) -> int:
    tree = await stats.load_tree(uow)
    groups = [g for g in await uow.groups.bound()
              if g.active and g.node_id in tree.nodes
              and stats.cadence_of(tree.nodes[g.node_id].level) is cadence]
    if not groups:
        return 0
    sums = await stats.node_sums(uow, period, now)
    notifier = Notifier(rt, uow)
    sent = 0
    for group in groups:
        report = stats.fold(tree, sums, group.node_id, period, now)
        if report.total.quiet:
            continue
        t = rt.translator(group.language)
        title = views.digest_title(t, cadence, report)
        notifier.say(group.chat_id, views.render_text(t, report, title))
        spec = views.chart_spec(t, report, title)
        if spec is not None:
            uow.outbox.add(chat_id=group.chat_id, method="sendPhoto", now=now, params={
                "chat_id": group.chat_id, "photo": chart_placeholder(spec),
                "caption": views.chart_caption(t, report, title), "parse_mode": "HTML"})
        sent += 1
    return sent
