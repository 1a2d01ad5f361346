"""Periodic digests, at the programme's own cadence: daily to grid, community and desk groups,
weekly to street groups, monthly to the district's, at ``digests.send_at`` local time.

Each occurrence is one scheduled task keyed by cadence and send day (``digest:daily:2026-11-24``)
and inserted only if its key is new, so however many processes start, and however often, each
digest exists once and runs once. Start-up makes sure the next occurrence of each cadence
exists; each occurrence, when it runs, adds the one after it. A digest that fell due while the
bot was down runs when it is back; if the bot was down so long that a later one is due too,
only the latest is sent (yesterday's numbers, not those of a week ago).

One task does the whole cadence in one transaction: the numbers of every node are aggregated
once, then folded into each group's subtree, and every message goes to the outbox with the
task's "done". A chart is queued as a description and drawn when it is sent
(``bot.delivery.uploads``). A group with nothing new, nothing resolved and nothing open gets
no digest for that period.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time

from bot.actions.notifier import Notifier
from bot.config import Config
from bot.delivery.uploads import chart_placeholder
from bot.i18n import Translator
from bot.runtime import Runtime
from bot.services import stats
from bot.services.stats import Cadence
from handlers.stats import NAME_LIMIT, chart_caption, chart_spec, render_text
from scheduler.ticker import TaskHandler
from storage.models import ScheduledTask
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

KIND = "digest"


def task_key(cadence: Cadence, day: date) -> str:
    return f"{KIND}:{cadence.value}:{day.isoformat()}"


async def arm(uow: UnitOfWork, config: Config, cadence: Cadence, due: datetime,
              now: datetime) -> None:
    """The digest of this cadence sent at ``due``, unless it exists already."""
    day = stats.send_day(due, config)
    await uow.tasks.schedule(KIND, due, now, key=task_key(cadence, day), once=True,
                             payload={"cadence": cadence.value, "day": day.isoformat()})


async def schedule_upcoming(rt: Runtime) -> None:
    """At start-up: the next digest of every cadence is scheduled (a no-op if it is)."""
    now = rt.clock.now()
    async with rt.uow() as uow:
        for cadence in Cadence:
            await arm(uow, rt.config, cadence, stats.next_send(cadence, now, rt.config), now)
        await uow.commit()


def _title(t: Translator, cadence: Cadence, place: str) -> str:
    if cadence is Cadence.DAILY:
        return t("Daily digest: {place}", place=place)
    if cadence is Cadence.WEEKLY:
        return t("Weekly digest: {place}", place=place)
    return t("Monthly digest: {place}", place=place)


def digest_handlers(rt: Runtime) -> dict[str, TaskHandler]:
    config = rt.config

    async def send(uow: UnitOfWork, task: ScheduledTask) -> None:
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
        sent = await _post(uow, cadence, stats.digest_period(cadence, day, config), now)
        log.info("%s digest of %s: %d groups", cadence, day, sent)

    async def _post(uow: UnitOfWork, cadence: Cadence, period: stats.Period,
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
            title = _title(t, cadence, report.node.display_name(t.language)[:NAME_LIMIT])
            notifier.say(group.chat_id, render_text(t, report, title))
            spec = chart_spec(t, report, title)
            if spec is not None:
                uow.outbox.add(chat_id=group.chat_id, method="sendPhoto", now=now, params={
                    "chat_id": group.chat_id, "photo": chart_placeholder(spec),
                    "caption": chart_caption(t, report, title), "parse_mode": "HTML"})
            sent += 1
        return sent

    return {KIND: send}
