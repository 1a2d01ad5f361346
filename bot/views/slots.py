"""What /slots says in the desk's group, and its Close buttons (bk:<sc|sy|sk>:<slot>)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date, timedelta

from bot.config import Config
from bot.i18n import Translator
from bot.views import Button, View
from bot.views.cards import BOOKING_PREFIX, slot_label
from storage.models import CheckupSlot

LIST_LIMIT = 30


def help_text(t: Translator, today: date) -> str:
    """How to use /slots, with example dates that lie ahead (tomorrow, and the days after)."""
    first = today + timedelta(days=1)
    return t("<b>Check-up slots</b>\n"
             "/slots — the coming slots, with Close buttons\n"
             "/slots add {day} 09:00-12:00 60m 2 — slots of 60 minutes with 2 places each\n"
             "/slots add {first}..{last} 14:00-17:00 30m 1 — the same on every working day "
             "of the range\n"
             "Length and places may be left out (60m, 1 place).",
             day=first.isoformat(), first=first.isoformat(),
             last=(first + timedelta(days=4)).isoformat())


def not_here(t: Translator) -> View:
    return View(t("/slots works in the group of the desk that holds legal "
                  "check-ups, for its members."))


def past(t: Translator, today: date) -> View:
    return View(t("That date has passed: slots can be added from today ({today}) on.",
                  today=today.isoformat()) + "\n\n" + help_text(t, today))


def unreadable(t: Translator, today: date) -> View:
    return View(t("I could not read that.") + "\n\n" + help_text(t, today))


def added(t: Translator, config: Config, created: Sequence[CheckupSlot], skipped: int,
          length: timedelta, places: int) -> View:
    lines = [t("Added {count} slot(s) of {length} with {places} place(s) each.",
               count=len(created), length=t.duration(length), places=places)]
    if skipped:
        lines.append(t("Skipped {count}: in the past or overlapping an open slot.",
                       count=skipped))
    for slot in created[:LIST_LIMIT]:
        lines.append("· " + slot_label(config, slot.starts_at, slot.ends_at))
    if len(created) > LIST_LIMIT:
        lines.append("…")
    return View("\n".join(lines))


def listing(t: Translator, config: Config, slots: Sequence[CheckupSlot]) -> View:
    """The coming slots (up to LIST_LIMIT; ``slots`` may hold one more, to say there are)."""
    if not slots:
        return View(t("No check-up slots are open. Add some with /slots add; /slots help shows "
                      "how."))
    lines = [t("<b>Open check-up slots</b> (booked/places)")]
    buttons = []
    for slot in slots[:LIST_LIMIT]:
        label = slot_label(config, slot.starts_at, slot.ends_at)
        lines.append(f"· {label} · {slot.booked}/{slot.capacity}")
        buttons.append([Button(t("✖️ Close {time}", time=label), f"{BOOKING_PREFIX}sc:{slot.id}")])
    if len(slots) > LIST_LIMIT:
        lines.append(t("… and more later."))
    return View("\n".join(lines), View.rows(*buttons))


def stays_open(t: Translator, label: str) -> View:
    return View(html.escape(t("{time} stays open.", time=label)))


def already_closed(t: Translator, label: str) -> str:
    return t("{time} is already closed.", time=label)


def close_anyway(t: Translator, slot_id: int, label: str, count: int) -> View:
    return View(t("{time} has {count} booking(s). Closing it stops new bookings; the booked "
                  "check-ups keep their time. To move them, use Propose another time on their "
                  "cards.", time=label, count=count),
                View.rows([Button(t("Close anyway"), f"{BOOKING_PREFIX}sy:{slot_id}"),
                           Button(t("Keep it open"), f"{BOOKING_PREFIX}sk:{slot_id}")]))


def closed(t: Translator, label: str) -> str:
    """Plain text."""
    return t("Closed {time}; it takes no new bookings.", time=label)


def closed_note(text: str) -> View:
    """``closed``'s text in the pressed message."""
    return View(html.escape(text))
