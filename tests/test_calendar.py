"""The working-day calendar: Chinese holidays with their make-up working days (调休), config
overrides, years the holiday package does not know, and local days in the configured zone."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.config_types import QuietHours
from bot.services.calendar import WorkCalendar
from tests.harness import make_config

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    """A Shanghai wall-clock time, "2025-09-30 10:00"."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def d(text: str) -> date:
    return date.fromisoformat(text)


@pytest.fixture
def cal() -> WorkCalendar:
    return WorkCalendar(tz=SHANGHAI)


def test_a_normal_week(cal: WorkCalendar):
    assert cal.add_working_days(local("2025-06-13 10:00"), 1) == local("2025-06-16 10:00")  # Fri
    assert cal.add_working_days(local("2025-06-16 10:00"), 5) == local("2025-06-23 10:00")
    assert cal.add_working_days(local("2025-06-13 10:00"), 3).tzinfo is UTC
    assert [cal.is_working_day(d(f"2025-06-{n}")) for n in range(13, 17)] == [
        True, False, False, True]


# 2025 National Day and Mid-Autumn: 1–8 October off, Sunday 28 September and Saturday
# 11 October worked instead.
NATIONAL_DAY_2025 = {
    "2025-09-26": True, "2025-09-27": False, "2025-09-28": True, "2025-09-29": True,
    "2025-09-30": True, "2025-10-01": False, "2025-10-02": False, "2025-10-03": False,
    "2025-10-04": False, "2025-10-05": False, "2025-10-06": False, "2025-10-07": False,
    "2025-10-08": False, "2025-10-09": True, "2025-10-10": True, "2025-10-11": True,
    "2025-10-12": False, "2025-10-13": True,
}


@pytest.mark.parametrize(("day", "working"), NATIONAL_DAY_2025.items())
def test_national_day_2025_with_make_up_days(cal: WorkCalendar, day: str, working: bool):
    assert cal.is_working_day(d(day)) is working


def test_deadlines_across_national_day_2025(cal: WorkCalendar):
    start = local("2025-09-30 10:00")
    assert cal.add_working_days(start, 1) == local("2025-10-09 10:00")
    assert cal.add_working_days(start, 2) == local("2025-10-10 10:00")
    assert cal.add_working_days(start, 3) == local("2025-10-11 10:00")  # a make-up Saturday
    assert cal.add_working_days(start, 4) == local("2025-10-13 10:00")
    # Friday 26 September: the weekend's Sunday is worked.
    assert cal.add_working_days(local("2025-09-26 15:00"), 1) == local("2025-09-28 15:00")


def test_a_start_on_a_non_working_day_counts_from_the_next_working_day(cal: WorkCalendar):
    # Saturday 27 September: the next working day is the make-up Sunday; one working day is
    # the whole of it, so the deadline is its end.
    saturday = local("2025-09-27 15:00")
    assert cal.add_working_days(saturday, 1) == local("2025-09-29 00:00")
    assert cal.add_working_days(saturday, 3) == local("2025-10-01 00:00")  # the end of 30 Sep
    # From inside the holiday, the clock starts on 9 October.
    assert cal.add_working_days(local("2025-10-03 09:00"), 1) == local("2025-10-10 00:00")
    assert cal.add_working_days(local("2025-10-03 09:00"), 3) == local("2025-10-12 00:00")
    # An ordinary weekend: Saturday afternoon + 1 is the end of Monday.
    assert cal.add_working_days(local("2025-06-14 15:00"), 1) == local("2025-06-17 00:00")


def test_a_start_at_midnight_gets_the_whole_day(cal: WorkCalendar):
    assert cal.add_working_days(local("2025-06-13 00:00"), 1) == local("2025-06-14 00:00")
    assert cal.add_working_days(local("2025-06-13 00:00"), 2) == local("2025-06-17 00:00")
    assert cal.add_working_days(local("2025-06-13 00:01"), 1) == local("2025-06-16 00:01")


def test_spring_festival_2026(cal: WorkCalendar):
    assert WorkCalendar.package_covers(2026)
    # 15–23 February off; Saturdays 14 and 28 February worked.
    assert cal.is_working_day(d("2026-02-14"))
    assert not any(cal.is_working_day(d("2026-02-15") + timedelta(days=n)) for n in range(9))
    assert cal.is_working_day(d("2026-02-24"))
    assert cal.is_working_day(d("2026-02-28"))
    assert not cal.is_working_day(d("2026-03-01"))
    friday = local("2026-02-13 16:00")
    assert cal.add_working_days(friday, 1) == local("2026-02-14 16:00")
    assert cal.add_working_days(friday, 2) == local("2026-02-24 16:00")
    assert cal.add_working_days(local("2026-02-27 16:00"), 1) == local("2026-02-28 16:00")
    assert cal.add_working_days(local("2026-02-27 16:00"), 2) == local("2026-03-02 16:00")


def test_overrides():
    cal = WorkCalendar(extra_holidays=[d("2025-06-16")],  # a Monday off
                       extra_working_days=[d("2025-06-22")],  # a Sunday worked
                       tz=SHANGHAI)
    assert not cal.is_working_day(d("2025-06-16"))
    assert cal.is_working_day(d("2025-06-22"))
    assert cal.add_working_days(local("2025-06-13 10:00"), 1) == local("2025-06-17 10:00")
    assert cal.add_working_days(local("2025-06-20 10:00"), 1) == local("2025-06-22 10:00")


def test_overrides_win_over_the_package():
    cal = WorkCalendar(extra_holidays=[d("2025-09-28")], extra_working_days=[d("2025-10-02")],
                       tz=SHANGHAI)
    assert not cal.is_working_day(d("2025-09-28"))
    assert cal.is_working_day(d("2025-10-02"))
    assert cal.add_working_days(local("2025-09-26 15:00"), 1) == local("2025-09-29 15:00")
    assert cal.add_working_days(local("2025-09-30 10:00"), 1) == local("2025-10-02 10:00")


def test_a_year_the_package_does_not_know(caplog: pytest.LogCaptureFixture):
    assert not WorkCalendar.package_covers(2040)
    cal = WorkCalendar(extra_holidays=[d("2040-01-09")], extra_working_days=[d("2040-01-07")],
                       tz=SHANGHAI)
    with caplog.at_level(logging.WARNING, logger="bot.services.calendar"):
        assert cal.is_working_day(d("2040-01-06"))  # Friday
        assert not cal.is_working_day(d("2040-01-08"))  # Sunday
        assert cal.is_working_day(d("2040-01-07"))  # Saturday, worked by the configuration
        assert not cal.is_working_day(d("2040-01-09"))  # Monday, off by the configuration
        assert cal.add_working_days(local("2040-01-06 10:00"), 1) == local("2040-01-07 10:00")
        assert cal.add_working_days(local("2040-01-06 10:00"), 2) == local("2040-01-10 10:00")
    warnings = [r for r in caplog.records if "2040" in r.getMessage()]
    assert len(warnings) == 1  # once per year, not once per day


def test_the_local_date_is_what_counts(cal: WorkCalendar):
    utc_evening = datetime(2025, 9, 30, 17, 0, tzinfo=UTC)  # 1 October 01:00 in Shanghai
    assert not cal.is_working_day(utc_evening)
    assert WorkCalendar(tz=UTC).is_working_day(utc_evening)
    # In Shanghai the start is inside the holiday: the deadline is the end of 9 October.
    assert cal.add_working_days(utc_evening, 1) == datetime(2025, 10, 9, 16, 0, tzinfo=UTC)
    # Counted in UTC it is still 30 September: the same time on 9 October.
    assert WorkCalendar(tz=UTC).add_working_days(utc_evening, 1) == datetime(
        2025, 10, 9, 17, 0, tzinfo=UTC)
    # A minute before local midnight on 30 September.
    just_before = datetime(2025, 9, 30, 15, 59, tzinfo=UTC)
    assert cal.add_working_days(just_before, 1) == datetime(2025, 10, 9, 15, 59, tzinfo=UTC)
    # Any aware input works; the answer is in UTC.
    tokyo = datetime(2025, 6, 13, 11, 0, tzinfo=timezone(timedelta(hours=9)))  # 10:00 local
    deadline = cal.add_working_days(tokyo, 1)
    assert deadline == local("2025-06-16 10:00")
    assert deadline.tzinfo is UTC


def test_working_days_between(cal: WorkCalendar):
    assert cal.working_days_between(local("2025-06-13 10:00"), local("2025-06-16 10:00")) == 1
    assert cal.working_days_between(local("2025-06-13 06:00"), local("2025-06-13 12:00")) == 0.25
    assert cal.working_days_between(local("2025-06-14 06:00"), local("2025-06-15 12:00")) == 0
    assert cal.working_days_between(local("2025-09-30 12:00"), local("2025-10-09 12:00")) == 1
    assert cal.working_days_between(local("2025-10-02 12:00"), local("2025-10-05 12:00")) == 0
    assert cal.working_days_between(local("2025-06-16 10:00"), local("2025-06-13 10:00")) == -1


@pytest.mark.parametrize("start", [
    "2025-06-13 10:00", "2025-06-13 00:00", "2025-06-14 15:00", "2025-09-26 23:30",
    "2025-09-27 08:00", "2025-09-30 10:00", "2025-10-05 12:00", "2026-02-13 16:00",
    "2040-01-06 10:00",
])
def test_working_days_between_measures_add_working_days(cal: WorkCalendar, start: str):
    for days in range(6):
        deadline = cal.add_working_days(local(start), days)
        assert cal.working_days_between(local(start), deadline) == pytest.approx(days)
        if days:
            # The deadline is the first moment the working time is used up.
            before = deadline - timedelta(minutes=1)
            assert cal.working_days_between(local(start), before) < days


def test_refuses_what_it_cannot_count(cal: WorkCalendar):
    with pytest.raises(ValueError, match="no time zone"):
        cal.add_working_days(datetime(2025, 6, 13, 10, 0), 1)
    with pytest.raises(ValueError, match="no time zone"):
        cal.is_working_day(datetime(2025, 6, 13, 10, 0))
    with pytest.raises(ValueError, match="negative"):
        cal.add_working_days(local("2025-06-13 10:00"), -1)
    assert cal.add_working_days(local("2025-06-14 10:00"), 0) == local("2025-06-14 10:00")
    with pytest.raises(ValueError, match="2025-06-16"):
        WorkCalendar(extra_holidays=[d("2025-06-16")], extra_working_days=[d("2025-06-16")],
                     tz=SHANGHAI)
    with pytest.raises(TypeError):
        WorkCalendar(extra_holidays=[local("2025-06-16 00:00")], tz=SHANGHAI)


def test_from_config():
    config = make_config(calendar={"extra_holidays": ["2040-01-09"],
                                   "extra_working_days": ["2040-01-07"]})
    cal = WorkCalendar.from_config(config)
    assert cal.tz == config.timezone == SHANGHAI
    assert not cal.is_working_day(d("2040-01-09"))
    assert cal.is_working_day(d("2040-01-07"))
    assert not cal.is_working_day(d("2025-10-01"))


@pytest.mark.parametrize(("local", "expected"), [
    ("2026-11-20 14:00", "2026-11-20 14:00"),  # daytime: at once
    ("2026-11-20 21:00", "2026-11-21 08:00"),  # quiet from 21:00 …
    ("2026-11-20 23:59", "2026-11-21 08:00"),
    ("2026-11-21 03:00", "2026-11-21 08:00"),  # … until 08:00 the same morning
    ("2026-11-21 08:00", "2026-11-21 08:00"),
])
def test_quiet_hours_hold_until_morning(local: str, expected: str) -> None:
    tz = ZoneInfo("Asia/Shanghai")
    quiet = QuietHours()
    moment = datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=tz).astimezone(UTC)
    allowed = quiet.next_allowed(moment, tz)
    assert allowed.astimezone(tz).strftime("%Y-%m-%d %H:%M") == expected
    assert allowed.tzinfo is UTC


def test_quiet_hours_within_a_day_and_disabled() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    lunch = QuietHours(start=time(12, 0), end=time(14, 0))
    moment = datetime(2026, 11, 20, 12, 30, tzinfo=tz)
    assert lunch.next_allowed(moment, tz) == datetime(2026, 11, 20, 14, 0, tzinfo=tz)
    off = QuietHours(enabled=False)
    assert off.next_allowed(moment, tz) == moment
