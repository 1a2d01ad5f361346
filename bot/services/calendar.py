"""The working-day calendar for resolution deadlines.

A day is a working day by, in this order:

1. the configuration: ``calendar.extra_holidays`` and ``calendar.extra_working_days``;
2. the Chinese public-holiday calendar of the ``chinesecalendar`` package, which knows each
   year's holidays and the weekend days that are worked to make up for them (调休) — but only
   for the years the State Council has announced and the installed version carries;
3. for any other year: Monday to Friday (a warning is logged once per year, so the admin knows
   to add that year's holidays to the configuration, or to update the package).

Days are local days in the configured time zone: 2025-09-30T17:00Z is already 1 October in
Shanghai.

Working time runs only during working days, the whole (local) day long. A deadline of N
working days is the first moment at which N days of working time have passed since the start:

* a start during a working day gives the same local clock time on the Nth working day after
  it (Friday 10:00 + 1 → Monday 10:00);
* a start on a non-working day (a weekend, a holiday) starts counting when the next working
  day begins, so the deadline is the end of the Nth working day — local midnight after it.
  A matter reported on Saturday afternoon with one working day to go is due at the end of
  Monday (Tuesday 00:00), not on Monday afternoon: whoever holds it gets a whole working day.
  A start at exactly midnight at the beginning of a working day counts the same way.

``working_days_between`` measures that same working time, so for any start and N,
``working_days_between(start, add_working_days(start, N)) == N``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING

import chinese_calendar

if TYPE_CHECKING:
    from bot.config import Config

log = logging.getLogger(__name__)

_DAY = timedelta(days=1)


@lru_cache(maxsize=8192)
def _package_says(day: date) -> bool | None:
    """Whether the package counts ``day`` as a working day; None for a year it does not know."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return None


class WorkCalendar:
    """Which local days are working days, and deadlines counted in working days."""

    def __init__(self, *, extra_holidays: Iterable[date] = (),
                 extra_working_days: Iterable[date] = (), tz: tzinfo) -> None:
        self._holidays = frozenset(_plain_date(day) for day in extra_holidays)
        self._working = frozenset(_plain_date(day) for day in extra_working_days)
        both = self._holidays & self._working
        if both:
            days = ", ".join(sorted(day.isoformat() for day in both))
            raise ValueError(f"{days} listed both as extra holidays and as extra working days")
        self.tz = tz
        self._warned_years: set[int] = set()

    @classmethod
    def from_config(cls, config: Config) -> WorkCalendar:
        return cls(extra_holidays=config.calendar.extra_holidays,
                   extra_working_days=config.calendar.extra_working_days,
                   tz=config.timezone)

    @staticmethod
    def package_covers(year: int) -> bool:
        """Whether the installed holiday package has data for ``year`` (or Monday–Friday plus
        the configured overrides is all this calendar knows about it)."""
        return _package_says(date(year, 6, 1)) is not None

    def is_working_day(self, day: date) -> bool:
        """``day`` is a date; an aware datetime stands for its local date."""
        day = self._local_date(day)
        if day in self._working:
            return True
        if day in self._holidays:
            return False
        known = _package_says(day)
        if known is not None:
            return known
        if day.year not in self._warned_years:
            self._warned_years.add(day.year)
            log.warning("the holiday calendar has no data for %d: counting Monday to Friday"
                        " as working days, plus calendar.extra_holidays and"
                        " calendar.extra_working_days from the configuration", day.year)
        return day.weekday() < 5

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The deadline ``days`` working days after ``start`` (aware), in UTC. See the module
        docstring for the rule; ``days=0`` is ``start`` itself."""
        if days < 0:
            raise ValueError(f"days must not be negative, not {days}")
        local = self._local(start)
        if days == 0:
            return start.astimezone(UTC)
        day = local.date()
        if self.is_working_day(day) and local.time() != time(0):
            # Part of today counts: the rest of it now, the same part of the Nth working day.
            for _ in range(days):
                day = self._next_working_day(day)
            return self._at(day, local.time(), local.fold)
        # Whole working days from the beginning of the first one: the deadline is the end
        # of the Nth.
        if not self.is_working_day(day):
            day = self._next_working_day(day)
        for _ in range(days - 1):
            day = self._next_working_day(day)
        return self._at(day + _DAY, time(0), 0)

    def working_days_between(self, start: datetime, end: datetime) -> float:
        """The working time from ``start`` to ``end`` (both aware), in days; negative when
        ``end`` is earlier. Parts of a day count by local clock time."""
        if end < start:
            return -self.working_days_between(end, start)
        first, last = self._local(start), self._local(end)
        first_day, last_day = first.date(), last.date()
        if first_day == last_day:
            if not self.is_working_day(first_day):
                return 0.0
            return _fraction(last) - _fraction(first)
        total = (1.0 - _fraction(first)) if self.is_working_day(first_day) else 0.0
        day = first_day + _DAY
        while day < last_day:
            total += self.is_working_day(day)
            day += _DAY
        if self.is_working_day(last_day):
            total += _fraction(last)
        return total

    def _next_working_day(self, day: date) -> date:
        day += _DAY
        while not self.is_working_day(day):
            day += _DAY
        return day

    def _local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{moment.isoformat()} has no time zone")
        return moment.astimezone(self.tz)

    def _local_date(self, day: date) -> date:
        if isinstance(day, datetime):
            return self._local(day).date()
        return day

    def _at(self, day: date, clock: time, fold: int) -> datetime:
        return datetime.combine(day, clock, tzinfo=self.tz).replace(fold=fold).astimezone(UTC)


def _plain_date(day: date) -> date:
    # A datetime is a date too, but would never equal one in a set lookup.
    if isinstance(day, datetime):
        raise TypeError(f"{day!r} is a datetime; calendar overrides are dates")
    return day


def _fraction(local: datetime) -> float:
    """How much of its local day has passed, by the clock: 0.0 at midnight, 0.5 at noon."""
    wall = local.replace(tzinfo=None)
    return (wall - datetime.combine(wall.date(), time(0))) / _DAY
