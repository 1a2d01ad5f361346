"""Idle drafts: a resident who stops in the middle of a conversation is reminded once, and
the draft expires.

Each draft has one idle check (armed and cancelled by storage.repositories.drafts). When it
runs it looks at the draft as it is now, and sets itself again:

* gone: nothing to do;
* idle for `expire_after`: the draft is discarded, and the resident is told how to start again;
* idle for `remind_after` and not reminded since the last answer: a reminder with buttons to
  continue or discard (one per idle spell: an answer clears `reminded_at`);
* otherwise: look again when the next of those moments comes.

Answers do not move the check (no task write per step), so until the resident is reminded it
is set for the exact moment, and after that it looks again every `remind_after`: a resident who
answers and then goes quiet again is still reminded `remind_after` after that answer.

Residents are not disturbed in quiet hours: a reminder due then waits for their end if the draft
is still alive by then (otherwise it is skipped), and a draft due to expire then lives on until
their end, so it is discarded when the resident can be told. Group questions (a resolution
note, a transfer reason) get no reminder and expire silently: a late reply to the question is
answered by the group handlers ("press the button on the card again"). Residents who blocked
the bot get nothing; their drafts expire on time.

Like every timer action, the check runs in the ticker's unit of work and never commits: the
ticker commits its effects with the task's "done".
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.delivery.render import message_params
from bot.i18n import Translator, resolve_language
from bot.runtime import Runtime
from bot.services import freetext, reporting
from bot.views import View
from bot.views import drafts as views
from bot.views.cards import local_time

# The flows of "My tickets" (adding information, withdrawing) and their buttons' data.
from bot.views.my_tickets import ADD_INFO, MY_FLOWS, PREFIX, WITHDRAW
from storage.models import OPEN_STATUSES, Draft, ScheduledTask, Ticket
from storage.repositories.drafts import CHECK_KIND, is_private
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

TaskAction = Callable[[UnitOfWork, ScheduledTask], Awaitable[None]]


def draft_handlers(rt: Runtime) -> dict[str, TaskAction]:
    config = rt.config
    timings, quiet = config.timings.drafts, config.quiet_hours

    async def check(uow: UnitOfWork, task: ScheduledTask) -> None:
        draft = await uow.drafts.by_id(int(task.payload["draft_id"]), lock=True)
        if draft is None:
            return
        flow = draft.flow
        now = rt.clock.now()
        idle_since = draft.updated_at
        expire_at = idle_since + timings.expire_after
        user = await uow.users.get(draft.user_id) if is_private(flow) else None
        t = None
        if user is not None and not user.unreachable:
            t = rt.translator(resolve_language(user.language, user.telegram_language_code,
                                               config.default_language))

        if now >= expire_at:
            allowed = quiet.next_allowed(now, config.timezone)
            if t is not None and allowed > now:
                await uow.drafts.check_again(task, allowed, now)
                return
            await uow.drafts.discard(draft.user_id, flow)
            notice = await _expiry_notice(uow, t, draft) if t is not None else None
            if notice is not None:
                _send(uow, draft.user_id, notice, now)
            log.info("an idle %s draft expired", flow)
            return

        if not is_private(flow):
            await uow.drafts.check_again(task, expire_at, now)
            return
        remind_at = idle_since + timings.remind_after
        reminded = draft.reminded_at is not None and draft.reminded_at >= idle_since
        if not reminded and now < remind_at:
            await uow.drafts.check_again(task, remind_at, now)
            return
        if not reminded and t is not None:
            reminder = await _reminder(rt, uow, t, draft, expire_at)
            if reminder is None:  # nothing to continue (an unknown flow, a closed ticket)
                await uow.drafts.check_again(task, expire_at, now)
                return
            allowed = quiet.next_allowed(now, config.timezone)
            if allowed > now:
                # After quiet hours if the draft is still alive then; else no reminder.
                await uow.drafts.check_again(task, min(allowed, expire_at), now)
                return
            _send(uow, draft.user_id, reminder, now)
            draft.reminded_at = now
        # Answers do not move this check: looking again within remind_after catches a resident
        # who answers now and goes quiet again in time to remind them of that new spell.
        await uow.drafts.check_again(task, min(now + timings.remind_after, expire_at), now)

    return {CHECK_KIND: check}


def _send(uow: UnitOfWork, user_id: int, view: View, now: datetime) -> None:
    uow.outbox.add(chat_id=user_id, method="sendMessage",
                   params={"chat_id": user_id, **message_params(view)}, now=now)


async def _ticket_of(uow: UnitOfWork, draft: Draft) -> Ticket | None:
    ticket_id = draft.data.get("ticket_id") if draft.data else None
    return await uow.tickets.get(int(ticket_id)) if ticket_id else None


async def _reminder(rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                    expire_at: datetime) -> View | None:
    """The reminder for this draft, with buttons that continue or discard it; None when the
    flow has nothing to continue."""
    time = local_time(rt.config, expire_at)
    if draft.flow == reporting.FLOW:
        # Only the category is shown, whatever step the draft is at.
        unfinished = reporting.Report(reporting.Step.CATEGORY, draft.data or {})
        return views.report_reminder(rt.config, t, unfinished, time)
    if draft.flow not in MY_FLOWS:
        return None
    ticket = await _ticket_of(uow, draft)
    if ticket is None or ticket.status not in OPEN_STATUSES:
        return None
    adding = draft.flow == ADD_INFO
    again = f"{PREFIX}add:{ticket.id}" if adding else f"{PREFIX}wd:{ticket.id}"
    return views.ticket_reminder(t, ticket.number, adding=adding, again=again,
                                 cancel=f"{PREFIX}cancel", time=time)


async def _expiry_notice(uow: UnitOfWork, t: Translator, draft: Draft) -> View | None:
    if draft.flow == freetext.FLOW:
        return None  # words typed outside any conversation: nothing was begun
    if draft.flow == reporting.FLOW:
        return views.report_expired(t)
    ticket = await _ticket_of(uow, draft) if draft.flow in MY_FLOWS else None
    if ticket is not None and draft.flow == ADD_INFO:
        return views.nothing_added(t, ticket.number)
    if ticket is not None and draft.flow == WITHDRAW:
        return views.not_withdrawn(t, ticket.number)
    return views.form_expired(t)
