"""The configuration file: the packaged example, environment overrides, and clear errors."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pydantic
import pytest

from bot.config import (
    Config,
    ConfigError,
    example_config_path,
    format_duration,
    load_config,
    parse_config,
    parse_duration,
    tier_of,
)

TOKEN = "123456789:AAEsecret-token_value"
NAMES = 'names = { zh_Hans = "名称" }'


def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    """Write ./gridgate.toml in a fresh working directory, so messages start "gridgate.toml:"."""
    monkeypatch.chdir(tmp_path)
    path = Path("gridgate.toml")
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, **environ: str) -> str:
    path = write(tmp_path, monkeypatch, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ)
    message = str(caught.value)
    assert "pydantic" not in message and "type=" not in message and "Traceback" not in message
    return message


# -- the packaged example ----------------------------------------------------------------------


def test_without_gridgate_toml_the_packaged_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})

    assert config.source.endswith("gridgate.example.toml")
    assert config.demo_district_when_empty is True
    assert [(d.code, d.names.zh_Hans, d.names.en) for d in config.desks] == [
        ("legal", "公共法律服务", "Public legal service"),
        ("enterprise", "企业服务", "Enterprise service"),
    ]
    assert config.desk("legal").names.get("zh_Hant") == "公共法律服務"
    kinds = {
        kind: [c.code for c in config.categories_of(kind)]
        for kind in ("report", "consultation", "checkup", "enterprise_dispute")
    }
    assert len(kinds["report"]) >= 7 and "other" in kinds["report"]
    assert len(kinds["consultation"]) == 6
    assert kinds["checkup"] == ["legal_checkup"]
    assert kinds["enterprise_dispute"] == ["enterprise_dispute"]
    assert {c.target_desk for c in config.categories_of("consultation")} == {"legal"}
    assert config.category("enterprise_dispute").target_desk == "enterprise"
    assert len(config.checkup_topics) == 6
    hazard = config.category("safety_hazard")
    assert hazard.emergency and hazard.anonymous_allowed and hazard.target_level == "grid"
    assert "着火" in config.emergency.all_words and "fire" in config.emergency.words.en
    for entry in (*config.desks, *config.categories, *config.checkup_topics):
        assert entry.names.zh_Hant and entry.names.en, entry.code


def test_the_example_states_the_defaults():
    # The example's comments tell admins the defaults; keep the two in step.
    example, defaults = load_config(Path(str(example_config_path())), environ={}), Config()
    for section in (
        "telegram",
        "database",
        "limits",
        "quiet_hours",
        "timings",
        "survey",
        "digests",
        "calendar",
        "delivery",
        "scheduler",
        "runtime",
        "webhook",
        "server",
        "privacy",
    ):
        assert getattr(example, section) == getattr(defaults, section), section
    assert example.timings.claim.remind_after == timedelta(minutes=30)
    assert example.timings.survey.give_up_after == timedelta(days=7)
    assert example.digests.send_at == time(8, 30) and example.digests.weekly_weekday == 0
    assert example.limits.max_file_bytes == 20 * 1024 * 1024


def test_gridgate_toml_in_the_working_directory_wins_over_the_example(tmp_path, monkeypatch):
    write(tmp_path, monkeypatch, "[general]\nadmins = [42]\n")
    config = load_config(environ={})
    assert config.source == "gridgate.toml"
    assert config.admins == frozenset({42})
    assert config.categories == ()


def test_an_empty_file_means_the_defaults(tmp_path, monkeypatch):
    config = load_config(write(tmp_path, monkeypatch, ""), environ={})
    assert str(config.timezone) == "Asia/Shanghai"
    assert config.default_language == "zh_Hans"
    assert config.telegram.token is None
    assert config.telegram.base_url == "https://api.telegram.org/bot"
    assert config.telegram.base_file_url == "https://api.telegram.org/file/bot"
    assert config.database.url == "sqlite+aiosqlite:///gridgate.db"
    assert config.demo_district_when_empty is False
    assert config.quiet_hours.contains(time(23, 0)) and config.quiet_hours.contains(time(7, 59))
    assert not config.quiet_hours.contains(time(8, 0))


def test_a_missing_explicit_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nowhere\.toml: no such file"):
        load_config(tmp_path / "nowhere.toml", environ={})


# -- environment ---------------------------------------------------------------------------------


def test_environment_wins_over_the_file(tmp_path, monkeypatch):
    path = write(
        tmp_path,
        monkeypatch,
        """
        [general]
        timezone = "Europe/Berlin"
        [telegram]
        token = "1:fromfile"
        [database]
        url = "sqlite:///file.db"
    """,
    )
    config = load_config(
        path,
        environ={
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081/bot/",
            "DATABASE_URL": "postgres://gridgate:s3cretpw@127.0.0.1:5432/test",
            "GRIDGATE_TIMEZONE": "Asia/Urumqi",
        },
    )
    assert config.telegram.token == TOKEN
    assert config.telegram.api_base_url == "http://127.0.0.1:8081"
    assert config.telegram.base_url == "http://127.0.0.1:8081/bot"
    assert config.telegram.base_file_url == "http://127.0.0.1:8081/file/bot"
    assert config.database.url == "postgresql+asyncpg://gridgate:s3cretpw@127.0.0.1:5432/test"
    assert "s3cretpw" not in repr(config)
    assert str(config.timezone) == "Asia/Urumqi"


def test_an_empty_environment_variable_counts_as_unset(tmp_path, monkeypatch):
    path = write(tmp_path, monkeypatch, '[general]\ntimezone = "Europe/Berlin"\n')
    config = load_config(path, environ={"GRIDGATE_TIMEZONE": "", "TELEGRAM_BOT_TOKEN": " "})
    assert str(config.timezone) == "Europe/Berlin" and config.telegram.token is None


def test_os_environ_is_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDGATE_TIMEZONE", "Asia/Hong_Kong")
    assert str(load_config(write(tmp_path, monkeypatch, "")).timezone) == "Asia/Hong_Kong"


def test_a_bad_environment_value_names_the_variable(tmp_path, monkeypatch):
    message = error_of(tmp_path, monkeypatch, "", GRIDGATE_TIMEZONE="Mars/Base")
    assert message.startswith('GRIDGATE_TIMEZONE: "Mars/Base" is not a known time zone')


def test_the_token_stays_out_of_repr_and_messages(tmp_path, monkeypatch):
    config = load_config(write(tmp_path, monkeypatch, ""), environ={"TELEGRAM_BOT_TOKEN": TOKEN})
    assert TOKEN not in repr(config) and TOKEN not in str(config)
    assert TOKEN not in repr(config.telegram)
    bad = "123456789:has spaces in it"
    message = error_of(tmp_path, monkeypatch, "", TELEGRAM_BOT_TOKEN=bad)
    assert message.startswith("TELEGRAM_BOT_TOKEN: does not look like a bot token")
    assert bad not in message


# -- bad values ------------------------------------------------------------------------------------

DESK = '[[desks]]\ncode = "legal"\n' + NAMES + "\n"


def category(index: int, body: str = "") -> str:
    return f'[[categories]]\ncode = "c{index}"\n{NAMES}\n{body}\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[timings.claim]\nremind_after = "30x"',
            'gridgate.toml: timings.claim.remind_after: "30x" is not a duration (use 45s, 30m, 2h,'
            " 3d or a combination like 1h30m)",
        ),
        (
            DESK + category(0) + category(1) + category(2, 'target = "desk:lawyers"'),
            'gridgate.toml: categories[2].target: desk "lawyers" is not defined in [[desks]]',
        ),
        (
            category(0, 'kind = "consultation"'),
            'categories[0].target: a category of kind "consultation" must go to a desk',
        ),
        (
            category(0, 'target = "lawyers"'),
            'categories[0].target: "lawyers" is not a valid target',
        ),
        (category(0, 'kind = "complaint"'), 'categories[0].kind: "complaint" is not allowed here'),
        (category(0, 'emergency = "yes"'), 'categories[0].emergency: "yes" is not true or false'),
        (
            '[[categories]]\ncode = "x"\nnames = { en = "X" }',
            "categories[0].names.zh_Hans: is required",
        ),
        (category(0) + category(0), 'categories[1].code: "c0" is already used by categories[0]'),
        (DESK + DESK, 'desks[1].code: "legal" is already used by desks[0]'),
        ('[[desks]]\ncode = "Legal"\n' + NAMES, 'desks[0].code: "Legal" is not a valid code'),
        ('[desks]\ncode = "legal"', "desks: is one table, not a list of them (write [[desks]]"),
        (
            '[general]\ntimezone = "Mars/Base"',
            'general.timezone: "Mars/Base" is not a known time zone',
        ),
        (
            '[general]\ndefault_language = "fr"',
            'general.default_language: "fr" is not allowed here',
        ),
        ("[general]\nadmins = [0]", "general.admins[0]: 0 is out of range (must be more than 0)"),
        ('[limits]\ntickets_per_hour = "5"', 'limits.tickets_per_hour: "5" is not a whole number'),
        ("[limits]\nmax_photos = 11", "limits.max_photos: 11 is out of range (must be at most 10)"),
        (
            "[limits]\ndescription_min_chars = 50\ndescription_max_chars = 20",
            "limits.description_min_chars: is more than description_max_chars (20)",
        ),
        ('[digests]\nsend_at = "8.30"', 'digests.send_at: "8.30" is not a time of day'),
        ('[digests]\nweekly_on = "mon"', 'digests.weekly_on: "mon" is not allowed here'),
        ('[quiet_hours]\nstart = "08:00"', "quiet_hours.end: is the same as start (08:00)"),
        (
            "[timings.claim]\nescalate_after = 0",
            "timings.claim.escalate_after: must be longer than zero",
        ),
        (
            '[timings.claim]\nremind_after = "3h"',
            "timings.claim.remind_after: the claim reminder (3h) must come before the escalation",
        ),
        (
            '[timings.levels.street]\nclaim_escalate_after = "20m"',
            "timings.levels.street.claim_escalate_after: the claim reminder (30m) must come before",
        ),
        ("[timings.levels.town]", 'timings.levels.town: "town" is not allowed here'),
        (
            category(0, 'sla = { resolution_remind_before = "2d", resolution_working_days = 1 }'),
            "categories[0].sla.resolution_remind_before: the reminder 2d before the deadline"
            " must be shorter than the deadline itself (1d)",
        ),
        (
            '[timings.survey]\nremind_after = "8d"',
            "timings.survey.remind_after: 8d must be shorter than give_up_after (7d)",
        ),
        ('[timings.booking]\nmin_notice = "31d"', "timings.booking.min_notice: 31d is not shorter"),
        (
            '[calendar]\nextra_holidays = ["2031-02-30"]',
            'calendar.extra_holidays[0]: "2031-02-30" is not a date (use YYYY-MM-DD',
        ),
        (
            "[calendar]\nextra_holidays = [2031-10-01]\nextra_working_days = [2031-10-01]",
            "calendar.extra_working_days: 2031-10-01 is also listed in extra_holidays",
        ),
        (
            '[database]\nurl = "mysql://root:pw@db/gridgate"',
            'database.url: the database "mysql" is not supported',
        ),
        (
            '[telegram]\napi_base_url = "127.0.0.1:8081"',
            "telegram.api_base_url: is not a Bot API server address (it must start with http://",
        ),
        (
            "[webhook]\nenabled = true",
            "webhook.url: is needed in webhook mode: the public https address Telegram calls",
        ),
        (
            DESK + category(0, 'kind = "checkup"\ntarget = "desk:legal"'),
            "checkup_topics: is empty, but categories[0] offers check-ups",
        ),
    ],
)
def test_a_bad_value_names_the_key_and_the_problem(tmp_path, monkeypatch, text, expected):
    message = error_of(tmp_path, monkeypatch, text)
    assert message.startswith("gridgate.toml: ")
    assert expected in message


def test_a_mistyped_key_is_an_error_with_a_suggestion(tmp_path, monkeypatch):
    message = error_of(tmp_path, monkeypatch, '[timings.claim]\nremind_afer = "10m"\n')
    assert message == (
        'gridgate.toml: timings.claim.remind_afer: unknown key (did you mean "remind_after"?)'
    )
    message = error_of(tmp_path, monkeypatch, "[nonsense]\n")
    assert message.startswith("gridgate.toml: nonsense: unknown key (allowed here: calendar,")


def test_several_problems_are_listed_one_per_line(tmp_path, monkeypatch):
    message = error_of(
        tmp_path,
        monkeypatch,
        """
        [general]
        timezone = "Mars/Base"
        [limits]
        max_photos = -1
        [timings.drafts]
        expire_after = "soon"
    """,
    )
    heading, *lines = message.splitlines()
    assert heading == "gridgate.toml: 3 problems:"
    assert [line.split(":")[0] for line in lines] == [
        "  - general.timezone",
        "  - limits.max_photos",
        "  - timings.drafts.expire_after",
    ]


def test_a_toml_syntax_error_names_line_and_column(tmp_path, monkeypatch):
    message = error_of(tmp_path, monkeypatch, "[general]\ntimezone = Asia/Shanghai\n")
    assert message == "gridgate.toml: line 2, column 12: not valid TOML (invalid value)"
    message = error_of(tmp_path, monkeypatch, "[general]\nadmins = [1,\n")
    assert message.startswith("gridgate.toml: line 3, column 1 (the end of the file): not valid")


def test_a_file_that_is_not_utf8_is_reported(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("gridgate.toml").write_bytes("[general]\n# 网格\n".encode("gbk"))
    with pytest.raises(ConfigError, match=r"gridgate\.toml: is not UTF-8 text"):
        load_config(Path("gridgate.toml"), environ={})


# -- value types and helpers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d 2h 3m 4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        (" 2H ", timedelta(hours=2)),
        ("0s", timedelta(0)),
        (90, timedelta(seconds=90)),
        (0, timedelta(0)),
    ],
)
def test_durations_parse(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["30x", "", "h", "1.5h", "30m1h", "1h1h", "-5m", "90", -5, 1.5, True, None, [1]]
)
def test_bad_durations_are_explained(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("value", ["45s", "30m", "1h30m", "3d", "1d2h3m4s", "0s"])
def test_durations_format_back_as_written(value):
    assert format_duration(parse_duration(value)) == value


def test_toml_numbers_and_local_times_are_accepted(tmp_path, monkeypatch):
    config = load_config(
        write(
            tmp_path,
            monkeypatch,
            """
        [timings.claim]
        remind_after = 600
        [quiet_hours]
        start = 22:00:00
        end = "7:00"
    """,
        ),
        environ={},
    )
    assert config.timings.claim.remind_after == timedelta(minutes=10)
    assert (config.quiet_hours.start, config.quiet_hours.end) == (time(22), time(7))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///gridgate.db", "sqlite+aiosqlite:///gridgate.db"),
        ("sqlite+aiosqlite:////var/lib/gridgate.db", "sqlite+aiosqlite:////var/lib/gridgate.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgres://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_database_urls_get_the_async_driver(url, expected):
    assert parse_config({}, environ={"DATABASE_URL": url}).database.url == expected


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:secret@h/db",
        "postgresql+psycopg2://u:secret@h/db",
        "gridgate.db",
        "u:secret@h://db",
    ],
)
def test_other_databases_are_refused_without_echoing_the_password(url):
    with pytest.raises(ConfigError, match=r"^DATABASE_URL: ") as caught:
        parse_config({}, environ={"DATABASE_URL": url})
    assert "secret" not in str(caught.value)


def test_category_targets_and_deadlines_resolve_in_order():
    config = parse_config(
        {
            "desks": [{"code": "legal", "names": {"zh_Hans": "法律"}}],
            "timings": {"levels": {"street": {"claim_escalate_after": "4h"}}},
            "categories": [
                {"code": "plain", "names": {"zh_Hans": "普通"}},
                {
                    "code": "fast",
                    "names": {"zh_Hans": "快"},
                    "target": "community",
                    "sla": {"claim_escalate_after": "1h", "resolution_working_days": 1},
                },
                {
                    "code": "ask",
                    "names": {"zh_Hans": "问", "en": "Ask"},
                    "kind": "consultation",
                    "target": "desk:legal",
                },
            ],
        }
    )
    plain, fast, ask = config.categories
    assert (plain.target_level, plain.target_desk) == ("grid", None)
    assert (fast.target_level, fast.target_desk) == ("community", None)
    assert (ask.target_level, ask.target_desk) == (None, "legal")
    assert ask.names.get("en") == "Ask" and ask.names.get("zh_Hant") == "问"
    assert ask.names.get("xx") == "问"
    assert config.sla(plain, "grid").claim_escalate_after == timedelta(hours=2)
    assert config.sla("plain", "town").claim_escalate_after == timedelta(hours=4)  # town = street
    assert config.sla(fast, "street").claim_escalate_after == timedelta(hours=1)
    assert config.sla(fast).resolution_working_days == 1
    assert config.sla(None, "district").resolution_working_days == 3
    assert tier_of("village") == "community" and tier_of("park") == "street"


def test_config_is_frozen():
    config = parse_config({})
    with pytest.raises(pydantic.ValidationError):
        config.timings.claim.remind_after = timedelta(0)


# -- values that used to crash or leak (review findings) --------------------------------------


def env_error(**environ: str) -> str:
    """The message for a bad environment variable, checked through parse_config."""
    with pytest.raises(ConfigError) as caught:
        parse_config({}, environ=environ)
    message = str(caught.value)
    assert "Traceback" not in message and "pydantic" not in message
    return message


def test_a_time_zone_folder_is_not_a_time_zone(tmp_path, monkeypatch):
    # ZoneInfo("Asia") raises IsADirectoryError, not ZoneInfoNotFoundError.
    assert env_error(GRIDGATE_TIMEZONE="Asia").startswith(
        'GRIDGATE_TIMEZONE: "Asia" is not a known time zone'
    )
    message = error_of(tmp_path, monkeypatch, '[general]\ntimezone = "America"')
    assert message.startswith('gridgate.toml: general.timezone: "America" is not a known time')


@pytest.mark.parametrize(
    ("value", "shown"),
    [("100000000000000", "100000000000000"), ('"99999999999999d"', '"99999999999999d"')],
)
def test_a_huge_duration_is_too_long(tmp_path, monkeypatch, value, shown):
    message = error_of(tmp_path, monkeypatch, f"[timings.claim]\nremind_after = {value}")
    assert message.startswith(
        f"gridgate.toml: timings.claim.remind_after: {shown} is too long (at most 999999999 days)"
    )


def test_a_duration_with_thousands_of_digits_is_too_long():
    with pytest.raises(ValueError, match="is too long"):
        parse_duration("9" * 5000 + "d")


def test_a_negative_timedelta_from_python_still_formats():
    assert format_duration(timedelta(hours=-1, minutes=-30)) == "-1h30m"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:secret@h:abc/db",
        "postgresql://u:secret@h:/db",
        "postgresql+asyncpg://u:secret@[::1/db",
    ],
)
def test_a_database_url_that_does_not_parse_is_refused_without_echoing_it(url):
    message = env_error(DATABASE_URL=url)
    assert message.startswith("DATABASE_URL: is not a valid database URL (use sqlite:///")
    assert "secret" not in message and url not in message


def test_a_database_url_without_a_scheme_reads_well():
    message = env_error(DATABASE_URL="gridgate.db")
    assert message.startswith("DATABASE_URL: this is not a database URL; it is not supported")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.telegram.org/", "https://api.telegram.org"),
        ("https://api.telegram.org/bot", "https://api.telegram.org"),
        ("http://127.0.0.1:8081/bot/", "http://127.0.0.1:8081"),
        ("http://[::1]:8081", "http://[::1]:8081"),
    ],
)
def test_the_bot_api_address_keeps_only_the_server_root(url, expected):
    config = parse_config({}, environ={"TELEGRAM_API_BASE_URL": url})
    assert config.telegram.api_base_url == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"https://api.telegram.org/bot{TOKEN}", "must be only the server address"),
        (f"https://api.telegram.org/bot{TOKEN}/", "must be only the server address"),
        (f"https://api.telegram.org/x?token={TOKEN}", "must be only the server address"),
        (f"https://api.telegram.org?{TOKEN}", "must be only the server address"),
        (f"https://api.telegram.org#{TOKEN}", "must be only the server address"),
        ("https://api.telegram.org//", "must be only the server address"),
        (f"https://{TOKEN}@api.telegram.org", "must not hold a user name or password"),
        (f"https://{TOKEN}", "is not a valid Bot API server address (the port after"),
        (f"ftp://api.telegram.org/{TOKEN}", "is not a Bot API server address (it must start"),
        (f"https:///{TOKEN}", "is not a valid Bot API server address (it has no host name)"),
    ],
)
def test_a_bot_api_address_with_more_than_the_server_is_refused_without_echoing_it(url, expected):
    message = env_error(TELEGRAM_API_BASE_URL=url)
    assert message.startswith(f"TELEGRAM_API_BASE_URL: {expected}")
    secret = TOKEN.partition(":")[2]
    assert secret not in message and url not in message


def test_the_bot_api_error_names_only_scheme_and_host():
    message = env_error(TELEGRAM_API_BASE_URL=f"https://api.telegram.org/bot{TOKEN}")
    assert "(https://api.telegram.org)" in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"http://gridgate.example.gov.cn/{TOKEN}", "webhook.url: is not an https address"),
        (f"ftp://gridgate.example.gov.cn/{TOKEN}", "webhook.url: is not an https address"),
        (f"https:///{TOKEN}", "webhook.url: is not a valid webhook address (it has no host"),
        (f"https://[::1/{TOKEN}", "webhook.url: is not a valid webhook address"),
    ],
)
def test_a_webhook_url_must_be_https_with_a_host(tmp_path, monkeypatch, url, expected):
    message = error_of(tmp_path, monkeypatch, f'[webhook]\nurl = "{url}"')
    assert message.startswith(f"gridgate.toml: {expected}")
    assert TOKEN not in message


def test_a_value_from_the_environment_is_blamed_on_its_variable(tmp_path, monkeypatch):
    # The file holds no webhook url at all: naming gridgate.toml would send the admin looking
    # in the wrong place.
    message = error_of(tmp_path, monkeypatch, "[general]\n",
                       GRIDGATE_WEBHOOK_URL="http://gridgate.example.gov.cn/hook")
    assert message.startswith("GRIDGATE_WEBHOOK_URL: is not an https address"), message
    assert "gridgate.toml" not in message


def test_where_each_value_came_from(tmp_path):
    whole, mine = tmp_path / "whole.toml", tmp_path / "mine.toml"
    whole.write_text('[general]\ntimezone = "Asia/Urumqi"\n\n[timings.claim]\n'
                     'remind_after = "20m"\nescalate_after = "2h"\n', "utf-8")
    mine.write_text('[timings.claim]\nremind_after = "10m"\n', "utf-8")
    config = load_config([whole, mine], environ={"DATABASE_URL": "sqlite:///x.db"})
    assert config.origin("general.timezone") == str(whole)
    assert config.origin("timings.claim.remind_after") == str(mine)
    assert config.origin("timings.claim.escalate_after") == str(whole)
    assert config.origin("timings.claim") == f"{mine} + {whole}"
    assert config.origin("database.url") == "$DATABASE_URL"
    assert config.origin("limits.max_photos") is None  # gridgate's default


def test_a_configuration_without_categories_may_not_start_a_bot():
    from bot.config import startup_problems

    assert startup_problems(load_config(example_config_path(), environ={})) == []
    bare = parse_config({"general": {"admins": [1]}}, source="gridgate.demo.toml")
    (problem,) = startup_problems(bare)
    assert problem.startswith("gridgate.demo.toml: there are no [[categories]]")
    assert "--config WHOLE.toml --config gridgate.demo.toml run" in problem


def test_the_webhook_url_stays_out_of_repr():
    url = f"https://gridgate.example.gov.cn/{TOKEN}"
    config = parse_config({"webhook": {"url": url}})
    assert config.webhook.url == url
    assert TOKEN not in repr(config) and TOKEN not in repr(config.webhook)


def test_webhook_mode_takes_its_settings_and_the_environment(tmp_path, monkeypatch):
    config = parse_config(
        {"webhook": {"enabled": True, "max_connections": 10},
         "server": {"listen": "0.0.0.0", "port": 8443}},
        environ={"GRIDGATE_WEBHOOK_URL": "https://gridgate.example.gov.cn/telegram/hook",
                 "GRIDGATE_WEBHOOK_SECRET": "s3cret_-"})
    assert config.webhook.enabled and config.webhook.path == "/telegram/hook"
    assert config.webhook.secret_token == "s3cret_-" and config.webhook.max_connections == 10
    assert (config.server.listen, config.server.port) == ("0.0.0.0", 8443)
    assert "s3cret" not in repr(config)


def test_plain_http_webhooks_are_only_for_a_local_bot_api_server(tmp_path, monkeypatch):
    message = error_of(tmp_path, monkeypatch,
                       '[webhook]\nurl = "http://10.0.0.5:8081/hook"')
    assert message.startswith("gridgate.toml: webhook.url: is not an https address")
    config = parse_config({"telegram": {"api_base_url": "http://127.0.0.1:8081"},
                           "webhook": {"enabled": True, "url": "http://127.0.0.1:9000/hook"}})
    assert config.webhook.path == "/hook"


def test_webhook_mode_needs_the_server(tmp_path, monkeypatch):
    message = error_of(tmp_path, monkeypatch, '[webhook]\nenabled = true\n'
                       'url = "https://gridgate.example.gov.cn/hook"\n[server]\nenabled = false')
    assert message == ("gridgate.toml: server.enabled: must be true in webhook mode: the server "
                       "takes the updates")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f'telegram = "{TOKEN}"', "telegram: must be a table ([telegram] section), not a string"),
        ("timings = 5", "timings: must be a table ([timings] section), not a number"),
        (
            '[timings]\nclaim = "30m"',
            "timings.claim: must be a table ([timings.claim] section), not a string",
        ),
        (
            f'categories = ["{TOKEN}"]',
            "categories[0]: must be a table ({ key = value }), not a string",
        ),
    ],
)
def test_a_value_where_a_table_belongs_is_not_quoted(tmp_path, monkeypatch, text, expected):
    message = error_of(tmp_path, monkeypatch, text)
    assert message == f"gridgate.toml: {expected}"
