"""What an enterprise's contact is told while booking a legal check-up (法治体检), and about
their bookings (bot.actions.booking decides which).

The conversation's buttons are "ck:" callbacks:

    ck:new  ck:e:<enterprise>  ck:t:<topic index>  ck:td  ck:d:<yyyymmdd>  ck:s:<slot>
    ck:ok  ck:back  ck:x  ck:my  ck:b:<booking>  ck:c:<booking>  ck:cy:<booking>
    ck:r:<booking>  ck:pa:<booking>:<slot>  ck:pd:<booking>:<slot>
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import date

from bot.config import Config
from bot.i18n import Translator
from bot.services.bookings import BookingRefused, Problem
from bot.services.text import user_html
from bot.views import Button, View
from bot.views.cards import BOOKING_LABELS, day_label, slot_label, topic_names
from storage.models import Booking, CheckupSlot, Enterprise, Ticket

PREFIX = "ck:"
NEW = "ck:new"
MY = "ck:my"
ALERT_CHARS = 200


def _button(text: str, data: str) -> Button:
    return Button(text, data)


def _view(text: str, rows: Sequence[Sequence[Button]]) -> View:
    return View(text, View.rows(*rows))


def time_label(config: Config, slot: CheckupSlot) -> str:
    tz = config.timezone
    return f"{slot.starts_at.astimezone(tz):%H:%M}–{slot.ends_at.astimezone(tz):%H:%M}"


def plain(text: str) -> str:
    """Alerts are plain text of at most 200 characters."""
    text = re.sub(r"<[^>]+>", "", text)
    text = html.unescape(text)
    return text if len(text) <= ALERT_CHARS else text[:ALERT_CHARS - 1] + "…"


def not_offered(t: Translator) -> View:
    return View(t("Legal check-ups are not offered here."))


def register_first(t: Translator) -> View:
    return View(t("Check-ups are booked for an enterprise. Register your enterprise first "
                  "with /enterprise, then send /checkup again."))


def cancelled(t: Translator) -> View:
    return View(t("Cancelled; nothing was booked."))


def use_the_buttons(t: Translator) -> str:
    return t("Please use the buttons.")


def no_longer_valid(t: Translator) -> str:
    return t("This button is no longer valid.")


def choose_a_topic(t: Translator) -> str:
    return t("Choose at least one topic.")


# -- nothing free ------------------------------------------------------------------------------

def no_places(t: Translator, config: Config, name: str, *, has_one: bool, told: bool | None,
              mine: bool) -> View:
    """Nothing to book for the enterprise ``name`` (HTML): it ``has_one`` check-up to come,
    or the desk was ``told`` it waits (None: nobody could be told). ``mine``: the person has
    bookings to look at."""
    days = config.timings.booking.horizon_days
    rows = [[_button(t("📋 My bookings"), MY)]] if mine else []
    if has_one:
        text = t("There is no other free check-up place in the next {days} days. The "
                 "check-up <b>{name}</b> has booked is under My bookings.", days=days, name=name)
    elif told is None:
        text = t("There is no free check-up place in the next {days} days. Please send "
                 "/checkup again in a few days.", days=days)
    else:
        text = t("There is no free check-up place in the next {days} days. The legal desk has "
                 "been told that <b>{name}</b> is waiting for one; please send /checkup again "
                 "in a few days.", days=days, name=name)
    return _view(text, rows)


def desk_waiting(gt: Translator, config: Config, name: str) -> str:
    """For the desk's group: an enterprise (``name``, HTML) waits for a place."""
    return gt("📅 <b>{name}</b> would like a legal check-up, but no place is free in the "
              "next {days} days. Please open some with /slots add; its contacts can then "
              "book them with /checkup.", name=name, days=config.timings.booking.horizon_days)


# -- the steps ---------------------------------------------------------------------------------

def _cancel_row(t: Translator, step: str, reschedule: bool) -> list[Button]:
    cancel = [_button(t("Cancel"), f"{PREFIX}x")]
    if step in ("enterprise", "topics") and not reschedule:
        cancel = [_button(t("📋 My bookings"), MY), *cancel]
    return cancel


def _back(t: Translator) -> list[Button]:
    return [_button(t("‹ Back"), f"{PREFIX}back")]


def ask_enterprise(t: Translator, enterprises: Sequence[Enterprise]) -> View:
    rows = [[_button(e.name, f"{PREFIX}e:{e.id}")] for e in enterprises]
    return _view(t("<b>Legal check-up</b>\nFor which enterprise?"),
                 [*rows, _cancel_row(t, "enterprise", False)])


def ask_topics(t: Translator, config: Config, chosen: Sequence[str], reschedule: bool) -> View:
    rows = [[_button(("✅ " if topic.code in chosen else "▫️ ")
                     + topic.names.get(t.language), f"{PREFIX}t:{index}")]
            for index, topic in enumerate(config.checkup_topics)]
    rows.append([_button(t("Done ›"), f"{PREFIX}td")])
    rows.append(_cancel_row(t, "topics", reschedule))
    return _view(t("<b>Legal check-up</b>\nWhat should the lawyers look at? Choose one or more "
                   "topics, then press Done."), rows)


def ask_day(t: Translator, config: Config, days: Sequence[date], reschedule: bool) -> View:
    cancel = _cancel_row(t, "day", reschedule)
    horizon = config.timings.booking.horizon_days
    if not days and reschedule:
        return _view(t("There is no other free time in the next {days} days; your check-up "
                       "keeps its time.", days=horizon), [cancel])
    if not days:  # the last places went while going back and forth
        return _view(t("There are no free check-up places in the next {days} days. Please try "
                       "again later.", days=horizon), [cancel])
    buttons = [_button(day_label(t, day), f"{PREFIX}d:{day:%Y%m%d}") for day in days]
    rows = [buttons[i:i + 3] for i in range(0, len(buttons), 3)]
    rows.append(([] if reschedule else _back(t)) + cancel)
    return _view(t("Choose a day (at least {notice} from now):",
                   notice=t.duration(config.timings.booking.min_notice)), rows)


def ask_slot(t: Translator, config: Config, slots: Sequence[CheckupSlot], *,
             offered: bool, day: str | None, reschedule: bool) -> View:
    """The times to choose from: the nearest free ones ``offered`` after a refusal, or those
    of ``day``."""
    if offered:
        labels = {s.id: slot_label(config, s.starts_at, s.ends_at) for s in slots}
        question = t("The nearest free times:")
    else:
        labels = {s.id: time_label(config, s) for s in slots}
        question = t("Choose a time on {day}:", day=day_label(t, day))
    rows = [[_button(t("{time} · {free} free", time=labels[s.id],
                       free=s.capacity - s.booked), f"{PREFIX}s:{s.id}")]
            for s in slots]
    if not slots:
        question = t("No free time is left on that day. Please choose another day.")
    rows.append([_button(t("‹ Other days"), f"{PREFIX}back"),
                 *_cancel_row(t, "slot", reschedule)])
    return _view(question, rows)


def ask_confirm(t: Translator, config: Config, slot: CheckupSlot, enterprise: Enterprise | None,
                topics: Sequence[str], reschedule: bool) -> View:
    lines = [t("<b>Please check your booking</b>"),
             f"🏢 {user_html(enterprise.name if enterprise else '?')}",
             t("Topics: {topics}", topics=topic_names(config, topics, t.language)),
             t("🗓 Check-up: {time}", time=slot_label(config, slot.starts_at, slot.ends_at))]
    if reschedule:
        lines.append(t("This replaces your current time."))
    rows = [[_button(t("✅ Book it"), f"{PREFIX}ok")],
            _back(t) + _cancel_row(t, "confirm", reschedule)]
    return _view("\n".join(lines), rows)


def with_note(view: View, note: str) -> View:
    """``view`` with ``note`` (HTML) first."""
    if not note:
        return view
    return View(note + "\n\n" + view.text, view.buttons, view.ask, view.ask_label,
                view.attachments)


# -- booked, moved, refused ------------------------------------------------------------------

def booked(t: Translator, config: Config, number: str, when: str, moved: bool) -> View:
    """The confirmation: the ticket's number (known only now) and the time."""
    if moved:
        text = t("Your check-up is moved to {time}. The desk will confirm the new time.",
                 time=when)
    else:
        text = t("Your check-up is booked for {time}. The legal desk will confirm it; you "
                 "will be reminded before it. To cancel or move it, use My bookings in "
                 "/checkup until {cutoff} before.", time=when,
                 cutoff=t.duration(config.timings.booking.cancel_cutoff))
    label = t("No. {number}", number=number)
    return View(f"<b>{label}</b>\n{text}")


def moved_for_desk(gt: Translator, number: str, old: str, new: str) -> str:
    return gt("🕘 The enterprise moved No. {number} from {old} to {new}. Please confirm the "
              "new time.", number=number, new=new, old=old)


def taken_text(t: Translator, problem: Problem) -> str:
    if problem is Problem.FULL:
        return t("Sorry, the last place at that time has just been taken.")
    if problem is Problem.TOO_SOON:
        return t("That time is too close now to be booked.")
    return t("That time is no longer offered.")


def held_text(t: Translator, name: str | None, number: str | None) -> str:
    """The enterprise already has a place at that time (booked by a colleague, perhaps)."""
    return t("<b>{name}</b> already has a place at that time (No. {number}). Each enterprise "
             "takes one place per time, so that the others stay free for other enterprises. "
             "Please choose another time.",
             name=user_html(name) if name is not None else "?",
             number=number if number is not None else "?")


def refusal_text(t: Translator, config: Config, refused: BookingRefused,
                 ticket: Ticket | None) -> str:
    """Why the enterprise's request changed nothing (HTML)."""
    problem = refused.problem
    if problem is Problem.TOO_LATE:
        number = ticket.number if ticket else "?"
        return t("Less than {cutoff} before the check-up it can no longer be cancelled or "
                 "moved here. Please tell the legal desk: reply to any message about No. "
                 "{number} and write what you need.",
                 cutoff=t.duration(config.timings.booking.cancel_cutoff),
                 number=number)
    if problem is Problem.NOT_ACTIVE:
        status = refused.booking.status if refused.booking else ""
        return t("This booking is no longer active ({status}).",
                 status=t(BOOKING_LABELS.get(status, status)) if status else "—")
    if problem is Problem.SAME_SLOT:
        return t("That is already your time.")
    if problem is Problem.STALE:
        return t("This proposal is no longer current.")
    if problem is Problem.NO_DESK:
        return t("Legal check-ups are not offered here.")
    if problem in (Problem.FULL, Problem.TOO_SOON, Problem.GONE):
        return taken_text(t, problem)
    if problem is Problem.HELD:
        return t("Your enterprise already has a place at that time; each enterprise takes one "
                 "place per time.")
    return t("This button is no longer valid.")


# -- my bookings -------------------------------------------------------------------------------

def my_bookings(t: Translator, config: Config,
                rows: Sequence[tuple[Booking, CheckupSlot]], names: dict[int, str]) -> View:
    if not rows:
        return View(t("No check-ups are booked. Send /checkup to book one."))
    lines = [t("<b>My check-up bookings</b>")]
    buttons = []
    for booking, slot in rows:
        when = slot_label(config, slot.starts_at, slot.ends_at)
        status = t(BOOKING_LABELS[booking.status])
        name = user_html(names.get(booking.enterprise_id, ""))
        lines.append(f"\n🗓 {when} · {status}\n🏢 {name}")
        buttons.append([_button(f"{when} · {status}", f"{PREFIX}b:{booking.id}")])
    buttons.append([_button(t("📅 Book a check-up"), NEW)])
    return _view("\n".join(lines), buttons)


def booking(t: Translator, config: Config, booking: Booking, ticket: Ticket,
            slot: CheckupSlot, enterprise: Enterprise | None) -> View:
    lines = [t("<b>No. {number}</b> · legal check-up", number=ticket.number),
             f"🏢 {user_html(enterprise.name if enterprise else '?')}",
             t("🗓 Check-up: {time}", time=slot_label(config, slot.starts_at, slot.ends_at)),
             t("Topics: {topics}", topics=topic_names(config, booking.topics, t.language)),
             t("Booking: {status}", status=t(BOOKING_LABELS[booking.status]))]
    if booking.lawyer_name:
        lines.append(t("Lawyer: {name}", name=user_html(booking.lawyer_name)))
    if booking.report:
        lines.append(t("Report: {report}", report=user_html(booking.report)))
    rows = []
    if booking.status in ("booked", "confirmed"):
        rows.append([_button(t("🕘 Move"), f"{PREFIX}r:{booking.id}"),
                     _button(t("✖️ Cancel the booking"), f"{PREFIX}c:{booking.id}")])
    rows.append([_button(t("‹ Back to the list"), MY)])
    return _view("\n".join(lines), rows)


def cancel_question(t: Translator, booking_id: int, when: str) -> View:
    return _view(t("Cancel the check-up on {time}? Its place is given to others.", time=when),
                 [[_button(t("Yes, cancel it"), f"{PREFIX}cy:{booking_id}"),
                   _button(t("No, keep it"), f"{PREFIX}b:{booking_id}")]])


def booking_cancelled(t: Translator, when: str) -> View:
    return View(t("Your check-up on {time} is cancelled.", time=when))


def cancelled_for_desk(gt: Translator, number: str, when: str) -> str:
    return gt("✖️ The enterprise cancelled the check-up of No. {number} on {time}; the place "
              "is free again.", number=number, time=when)


def proposal_answered(t: Translator, when: str, accept: bool) -> View:
    if accept:
        return View(t("Your check-up is moved to {time}, as the desk proposed.", time=when))
    return View(t("You keep your time: {time}. The desk has been told.", time=when))


def proposal_answered_for_desk(gt: Translator, number: str, when: str, accept: bool) -> str:
    if accept:
        return gt("✅ The enterprise accepted the new time of No. {number}: {time}.",
                  number=number, time=when)
    return gt("The enterprise keeps its time for No. {number}: {time}.", number=number,
              time=when)


def checkup_cancelled_event(t: Translator) -> str:
    """The note of the ticket's event when the enterprise cancels."""
    return t("Check-up booking cancelled")
