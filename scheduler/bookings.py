"""Check-up timers (bot.services.bookings): reminders to the enterprise before the check-up,
and after the slot a nudge to the desk group to mark it done or no-show.

Reminders are armed outside quiet hours (bookings.reminder_time). A reminder that runs late
(the bot was down) and finds itself in quiet hours waits for their end if that is still
before the start, else it is dropped; one for a booking that was cancelled, moved or is over
does nothing (its payload names the slot it was set for). Reminders go to every contact of
the enterprise: any of them may come.
"""

from __future__ import annotations

from telegram.helpers import mention_html

from bot.actions.notifier import Notifier
from bot.i18n import resolve_language
from bot.runtime import Runtime
from bot.services import bookings
from bot.services.text import user_html
from bot.views.cards import slot_label
from scheduler.ticker import TaskHandler
from storage.models import ScheduledTask
from storage.uow import UnitOfWork


def booking_handlers(rt: Runtime) -> dict[str, TaskHandler]:
    config = rt.config

    async def remind(uow: UnitOfWork, task: ScheduledTask) -> None:
        found = await bookings.current(uow, task.payload)
        now = rt.clock.now()
        if found is None or found[2].starts_at <= now:
            return
        booking, ticket, slot = found
        allowed = config.quiet_hours.next_allowed(now, config.timezone)
        if allowed > now:
            if allowed < slot.starts_at:
                await uow.tasks.schedule(task.kind, allowed, now, ticket_id=task.ticket_id,
                                         payload=task.payload)
            return
        enterprise = await uow.enterprises.get(booking.enterprise_id)
        when = slot_label(config, slot.starts_at, slot.ends_at)
        left = slot.starts_at - now
        notifier = Notifier(rt, uow)
        for contact in await uow.bookings.contacts(booking.enterprise_id):
            user = await uow.users.get(contact.user_id)
            if user is not None and user.unreachable:
                continue
            t = rt.translator(resolve_language(user.language if user else None,
                                               user.telegram_language_code if user else None,
                                               config.default_language))
            number = t("No. {number}", number=ticket.number)
            text = f"<b>{number}</b>\n" + t(
                "⏰ Reminder: the legal check-up of {enterprise} is on {time} (in {left}). "
                "To write to the desk, reply to this message.",
                enterprise=user_html(enterprise.name if enterprise else ""), time=when,
                left=t.duration(left, approximate=True))
            notifier.say(contact.user_id, text, ticket=ticket, purpose="relay")
        if booking.status == "booked" and ticket.group_chat_id is not None:
            group = await uow.groups.get(ticket.group_chat_id)
            gt = rt.translator(group.language if group else config.default_language)
            await notifier.to_group(ticket, gt(
                "⏳ The check-up of No. {number} on {time} is not confirmed yet. Please "
                "confirm it or propose another time.", number=ticket.number, time=when))

    async def after(uow: UnitOfWork, task: ScheduledTask) -> None:
        found = await bookings.current(uow, task.payload)
        if found is None:
            return
        booking, ticket, slot = found
        bookings.slot_over(ticket)
        notifier = Notifier(rt, uow)
        await notifier.refresh_card(ticket)
        if ticket.group_chat_id is None:
            return
        group = await uow.groups.get(ticket.group_chat_id)
        gt = rt.translator(group.language if group else config.default_language)
        who = (mention_html(booking.lawyer_id, booking.lawyer_name or str(booking.lawyer_id))
               + " " if booking.lawyer_id else "")
        await notifier.to_group(ticket, who + gt(
            "🗓 The check-up of No. {number} ({time}) is over. Please mark it Done, with a "
            "short report for the enterprise, or No-show.", number=ticket.number,
            time=slot_label(config, slot.starts_at, slot.ends_at)))

    return {bookings.REMIND: remind, bookings.AFTER: after}
