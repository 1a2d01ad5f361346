"""What the bot says, as words a person reads: durations in the person's language, Traditional
Chinese as it is written, buttons and commands that a text names actually being there."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.i18n import Catalogs, format_duration


@pytest.mark.parametrize(("value", "approximate", "words"), [
    (timedelta(hours=1, minutes=30), False, ("1小时30分钟", "1 小時 30 分鐘", "1 hour, 30 minutes")),
    (timedelta(minutes=15), False, ("15分钟", "15 分鐘", "15 minutes")),
    (timedelta(days=1), False, ("1天", "1 天", "1 day")),
    (timedelta(hours=12), False, ("12小时", "12 小時", "12 hours")),
    # Measured times: the two largest units, whole minutes once past a minute.
    (timedelta(minutes=1, seconds=1), True, ("1分钟", "1 分鐘", "1 minute")),
    (timedelta(seconds=45), True, ("45秒钟", "45 秒", "45 seconds")),
    (timedelta(hours=9, minutes=40, seconds=20), True, ("9小时40分钟", "9 小時 40 分鐘",
                                                         "9 hours, 40 minutes")),
    (timedelta(days=2, hours=3, minutes=50), True, ("2天4小时", "2 天 4 小時", "2 days, 4 hours")),
    (timedelta(seconds=-3), True, ("0秒钟", "0 秒", "0 seconds")),
])
def test_durations_are_words_of_the_persons_language(value, approximate, words) -> None:
    catalogs = Catalogs.load()
    assert tuple(format_duration(value, language, approximate=approximate)
                 for language in ("zh_Hans", "zh_Hant", "en")) == words
    assert tuple(catalogs[language].duration(value, approximate=approximate)
                 for language in ("zh_Hans", "zh_Hant", "en")) == words
