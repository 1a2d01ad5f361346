"""Check-up timers (bot.services.bookings): reminders to the enterprise before the check-up,
and after the slot a nudge to the desk group to mark it done or no-show.

Like every timer action (see the package), these run in the ticker's unit of work, which
commits their effects with the task's "done" mark: they never commit themselves.

Reminders are armed outside quiet hours (bookings.reminder_time). A reminder that runs late
(the bot was down) and finds itself in quiet hours waits for their end if that is still
before the start, else it is dropped; one for a booking that was cancelled, moved or is over
does nothing (its payload names the slot it was set for). Reminders go to every contact of
the enterprise: any of them may come.
"""

from __future__ import annotations

from bot.actions.notifier import Notifier
from bot.i18n import resolve_language
from bot.runtime import Runtime
from bot.services import bookings
from bot.views import booking_desk as views
from bot.views.cards import slot_label
from storage.models import ScheduledTask
from storage.uow import UnitOfWork


async def remind(rt: Runtime, uow: UnitOfWork, task: ScheduledTask) -> None:
    config = rt.config
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
        text = views.reminder(t, ticket.number, enterprise.name if enterprise else "", when,
                              t.duration(left, approximate=True))
        notifier.say(contact.user_id, text, ticket=ticket, purpose="relay")
    if booking.status == "booked" and ticket.group_chat_id is not None:
        group = await uow.groups.get(ticket.group_chat_id)
        gt = rt.translator(group.language if group else config.default_language)
        await notifier.to_group(ticket, views.not_confirmed(gt, ticket.number, when))


async def after(rt: Runtime, uow: UnitOfWork, task: ScheduledTask) -> None:
    config = rt.config
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
    await notifier.to_group(ticket, views.over(
        gt, ticket.number, slot_label(config, slot.starts_at, slot.ends_at),
        booking.lawyer_id, booking.lawyer_name))
