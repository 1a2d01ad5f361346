"""Idle drafts: a resident who stops in the middle of a conversation is
reminded once, and the draft expires.

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
"""

from __future__ import annotations

import logging
from datetime import datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import Translator, resolve_language
from bot.runtime import Runtime
from bot.services import freetext, reporting
from bot.views.cards import local_time
from handlers import my_tickets, report
from handlers import report_keyboards as kb
from scheduler.ticker import TaskHandler
from storage.models import OPEN_STATUSES, Draft, ScheduledTask, Ticket
from storage.repositories.drafts import CHECK_KIND, is_private
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

Message = tuple[str, InlineKeyboardMarkup | None]


def draft_handlers(rt: Runtime) -> dict[str, TaskHandler]:
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
                _send(uow, draft.user_id, (notice, None), now)
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


def _send(uow: UnitOfWork, user_id: int, message: Message, now: datetime) -> None:
    text, markup = message
    params: dict = {"chat_id": user_id, "text": text, "parse_mode": "HTML"}
    if markup is not None:
        params["reply_markup"] = markup.to_dict()
    uow.outbox.add(chat_id=user_id, method="sendMessage", params=params, now=now)


async def _ticket_of(uow: UnitOfWork, draft: Draft) -> Ticket | None:
    ticket_id = draft.data.get("ticket_id") if draft.data else None
    return await uow.tickets.get(int(ticket_id)) if ticket_id else None


async def _reminder(rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                    expire_at: datetime) -> Message | None:
    """The reminder for this draft, with buttons that continue or discard it; None when the
    flow has nothing to continue."""
    until = t("Without an answer it will be discarded after {time}.",
              time=local_time(rt.config, expire_at))
    if draft.flow == reporting.FLOW:
        # Only the category is shown, whatever step the draft is at.
        unfinished = reporting.Report(reporting.Step.CATEGORY, draft.data or {})
        return (f"⏰ {report.unfinished_text(rt, t, unfinished)}\n{until}",
                kb.unfinished(t))
    if draft.flow not in my_tickets.MY_FLOWS:
        return None
    ticket = await _ticket_of(uow, draft)
    if ticket is None or ticket.status not in OPEN_STATUSES:
        return None
    if draft.flow == my_tickets.ADD_INFO:
        text = t("⏰ You started adding information to No. {number} but have not sent it yet.",
                 number=ticket.number)
        again = f"{my_tickets.PREFIX}add:{ticket.id}"
    else:
        text = t("⏰ You started withdrawing No. {number} but have not given the reason yet.",
                 number=ticket.number)
        again = f"{my_tickets.PREFIX}wd:{ticket.id}"
    # "Continue" asks the question again, which is all a one-step draft needs.
    return f"{text}\n{until}", InlineKeyboardMarkup([
        [InlineKeyboardButton(t("▶️ Continue"), callback_data=again),
         InlineKeyboardButton(t("Cancel"), callback_data=f"{my_tickets.PREFIX}cancel")]])


async def _expiry_notice(uow: UnitOfWork, t: Translator, draft: Draft) -> str | None:
    if draft.flow == freetext.FLOW:
        return None  # words typed outside any conversation: nothing was begun
    if draft.flow == reporting.FLOW:
        return t("Your unfinished report was discarded because it was not continued; nothing "
                 "was sent. Send /report to start again.")
    ticket = await _ticket_of(uow, draft) if draft.flow in my_tickets.MY_FLOWS else None
    if ticket is not None and draft.flow == my_tickets.ADD_INFO:
        return t("Nothing was added to No. {number}: the request was not continued and has "
                 "been dropped. Use /mytickets to add information.", number=ticket.number)
    if ticket is not None and draft.flow == my_tickets.WITHDRAW:
        return t("No. {number} was not withdrawn: no reason was given, so the request has "
                 "been dropped. Use /mytickets if you still want to withdraw it.",
                 number=ticket.number)
    return t("Your unfinished form was discarded because it was not continued.")
