"""The parts of gridgate's configuration: value types and the models of each section.

The value parsers raise ``ValueError`` with a message that quotes the bad value and says what
would be right; ``bot.config`` puts the key path in front of it. ``bot.config`` assembles the
sections into ``Config``, loads the file and checks what spans several sections.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Annotated, Any, Literal
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    StringConstraints,
    field_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

LANGUAGES = ("zh_Hans", "zh_Hant", "en")
Language = Literal["zh_Hans", "zh_Hant", "en"]
Kind = Literal["report", "consultation", "checkup", "enterprise_dispute"]
# Tickets of these kinds are handled by a desk (lawyers, enterprise service), never by a grid.
KINDS_NEEDING_DESK = ("consultation", "checkup", "enterprise_dispute")
# A category's target, and the keys of [timings.levels], name a tier of the org tree: the
# node at that tier above the grid. Villages count as communities; towns and parks as streets.
TIERS = ("grid", "community", "street", "district")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
TELEGRAM_API_ROOT = "https://api.telegram.org"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///gridgate.db"
# The drivers gridgate is built for; plain URLs get the async driver added.
_DATABASE_SCHEMES = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}

_MAX_DAYS = timedelta.max.days
DURATION_HINT = "use 45s, 30m, 2h, 3d or a combination like 1h30m"
_DURATION_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_CODE_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_TIME_RE = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def show(value: Any) -> str:
    """A value as the admin wrote it in TOML: strings in double quotes, durations as 1h30m."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    return str(value)


def parse_duration(value: Any) -> timedelta:
    """ "45s", "30m", "2h", "3d", "1h30m" (largest unit first), or a whole number of seconds."""
    if isinstance(value, timedelta):
        return value
    try:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return timedelta(seconds=value)
        if isinstance(value, str):
            match = _DURATION_RE.fullmatch(value.strip().lower().replace(" ", ""))
            if match and any(match.groups()):
                days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
                return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except (OverflowError, ValueError):
        # timedelta stops at 999999999 days; a bigger figure is a typo, not a wish. (ValueError:
        # int() refuses a figure of more than 4300 digits.)
        raise ValueError(f"{show(value)} is too long (at most {_MAX_DAYS} days)") from None
    raise ValueError(f"{show(value)} is not a duration ({DURATION_HINT})")


def format_duration(value: timedelta) -> str:
    """The inverse of ``parse_duration``: timedelta(hours=1, minutes=30) -> "1h30m"."""
    total = int(value.total_seconds())
    if total <= 0:
        # Not dead: the file cannot give a negative duration, but a timedelta passed in from
        # Python goes through parse_duration unchanged, and show() formats any timedelta.
        return "0s" if total == 0 else "-" + format_duration(-value)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_time_of_day(value: Any) -> time:
    """ "08:30" (or a TOML local time such as 08:30:00)."""
    if isinstance(value, time):
        return value
    if isinstance(value, str) and (match := _TIME_RE.fullmatch(value.strip())):
        return time(int(match[1]), int(match[2]))
    raise ValueError(f"{show(value)} is not a time of day (use HH:MM, for example 08:30)")


def parse_time_zone(value: Any) -> ZoneInfo:
    if isinstance(value, ZoneInfo):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return ZoneInfo(value.strip())
        # ValueError: a key such as "../etc" that is not even a valid path. OSError: a key that
        # names a folder of the tz database ("Asia") or is too long for a file name.
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise ValueError(
        f"{show(value)} is not a known time zone (use an IANA name such as Asia/Shanghai)"
    )


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"must be longer than zero, not {show(value)}")
    return value


def check_code(value: str) -> str:
    if not _CODE_RE.fullmatch(value):
        raise ValueError(
            f"{show(value)} is not a valid code (use up to 32 lowercase letters, digits"
            " and _, starting with a letter)"
        )
    return value


def _split_url(text: str, what: str) -> SplitResult:
    try:
        return urlsplit(text)
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address; its message quotes nothing
        raise ValueError(f"is not a valid {what} address") from None


def _origin(parts: SplitResult, what: str) -> str:
    """scheme://host[:port] of a URL, which messages may show; raises if there is no host.

    Never shows the user name, password, path or query: they may hold secrets.
    """
    if not parts.hostname:
        raise ValueError(f"is not a valid {what} address (it has no host name)")
    host = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        # Not even the host[:port] text is safe here: "https://123456:AAE…" is a bot token.
        raise ValueError(
            f"is not a valid {what} address (the port after {parts.scheme}://{parts.hostname}"
            " is not a number from 0 to 65535)"
        ) from None
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"must not hold a user name or password (give just {host})")
    return host


# A length of time, zero or more.
Duration = Annotated[
    timedelta, PlainValidator(parse_duration), PlainSerializer(format_duration, return_type=str)
]
# A length of time that must be more than zero (intervals, deadlines).
PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
TimeOfDay = Annotated[
    time, PlainValidator(parse_time_of_day), PlainSerializer(lambda t: t.strftime("%H:%M"))
]
TimeZone = Annotated[ZoneInfo, PlainValidator(parse_time_zone), PlainSerializer(str)]
Code = Annotated[str, AfterValidator(check_code)]
NonEmptyText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# Strict: TOML has real numbers and booleans, so "5" or 1-for-true is a mistake worth reporting.
Int = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]
PositiveInt = Annotated[Int, Field(gt=0)]
NonNegativeInt = Annotated[Int, Field(ge=0)]


# -- what residents pick from -----------------------------------------------------------------


class Names(Section):
    zh_Hans: NonEmptyText
    zh_Hant: NonEmptyText | None = None
    en: NonEmptyText | None = None

    def get(self, lang: str) -> str:
        """The name in ``lang``, or the Simplified Chinese one when that translation is missing."""
        value = getattr(self, lang) if lang in LANGUAGES else None
        return value or self.zh_Hans


class Desk(Section):
    code: Code
    names: Names


class Topic(Section):
    """A check-up topic; an enterprise picks several for one booking."""

    code: Code
    names: Names


class Industry(Section):
    """An industry an enterprise picks when it registers (国民经济行业, simplified)."""

    code: Code
    names: Names


class SlaOverrides(Section):
    """Deadlines that replace the [timings] defaults for one category or one tier."""

    claim_remind_after: PositiveDuration | None = None
    claim_escalate_after: PositiveDuration | None = None
    resolution_working_days: PositiveInt | None = None
    resolution_urgent_within: PositiveDuration | None = None
    resolution_remind_before: PositiveDuration | None = None
    resolution_escalate_after_overdue: Duration | None = None


class Sla(Section):
    """The deadlines in force for one ticket: defaults, then its tier's, then its category's."""

    claim_remind_after: timedelta
    claim_escalate_after: timedelta
    resolution_working_days: int
    resolution_urgent_within: timedelta
    resolution_remind_before: timedelta
    resolution_escalate_after_overdue: timedelta


def _check_target(value: str) -> str:
    desk = value.removeprefix("desk:")
    if value in TIERS or (desk != value and _CODE_RE.fullmatch(desk)):
        return value
    raise ValueError(
        f"{show(value)} is not a valid target (use grid, community, street, district"
        " or desk:<code>)"
    )


class Category(Section):
    code: Code
    names: Names
    kind: Kind = "report"
    target: Annotated[str, AfterValidator(_check_target)] = "grid"
    emergency: Flag = False
    anonymous_allowed: Flag = False
    sla: SlaOverrides = Field(default_factory=SlaOverrides)

    @property
    def target_desk(self) -> str | None:
        """The desk code for ``desk:<code>`` targets, else None."""
        return self.target.removeprefix("desk:") if self.target.startswith("desk:") else None

    @property
    def target_level(self) -> str | None:
        """The tier ("grid" … "district") for geographic targets, else None."""
        return None if self.target_desk else self.target


# -- sections -----------------------------------------------------------------------------------


class GeneralSettings(Section):
    timezone: TimeZone = Field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    default_language: Language = "zh_Hans"
    admins: frozenset[PositiveInt] = frozenset()
    demo_district_when_empty: Flag = False


class TelegramSettings(Section):
    token: str | None = Field(default=None, repr=False)
    api_base_url: str = TELEGRAM_API_ROOT
    membership_cache_ttl: Duration = timedelta(minutes=5)

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if value and not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", value):
            # Never quote the value: it may be a real token with a typo.
            raise ValueError(
                "does not look like a bot token (it should look like 123456789:AAE…,"
                " as @BotFather gives it)"
            )
        return value or None

    @field_validator("api_base_url")
    @classmethod
    def _api_root(cls, value: str) -> str:
        # Only the server root is allowed: gridgate appends /bot<token> itself, so anything after
        # the host (typically a pasted ".../bot123456:AAE…") would end up in repr and in logs.
        # Accept the ".../bot" form PTB's base_url uses, and one trailing slash.
        root = value.strip().removesuffix("/").removesuffix("/bot")
        parts = _split_url(root, "Bot API server")
        hint = "use https://api.telegram.org or a local server such as http://127.0.0.1:8081"
        if parts.scheme not in ("http", "https"):
            raise ValueError(
                f"is not a Bot API server address (it must start with http:// or https://; {hint})"
            )
        origin = _origin(parts, "Bot API server")
        # Checking the raw text too: urlsplit drops an empty "?" or "#".
        if parts.path or "?" in root or "#" in root:
            raise ValueError(
                f"must be only the server address ({origin}), with no path, query or fragment"
                " (gridgate adds /bot<token> itself)"
            )
        return origin

    @property
    def base_url(self) -> str:
        return f"{self.api_base_url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.api_base_url}/file/bot"


class DatabaseSettings(Section):
    url: str = Field(default=DEFAULT_DATABASE_URL, repr=False)  # may hold a password
    echo: Flag = False
    sqlite_busy_timeout_ms: NonNegativeInt = 5000
    # SQLite: "normal" may lose the last commits on a power cut, "full" syncs every commit
    # (storage.db says more).
    synchronous: Literal["normal", "full"] = "normal"
    # PostgreSQL: this instance's transactions that run at once; the others wait their turn
    # (storage.db Turns).
    transactions_at_once: PositiveInt = 8

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        hint = "use sqlite:///path/to/gridgate.db or postgresql://user:password@host/dbname"
        scheme, sep, rest = value.strip().partition("://")
        # Only something shaped like a scheme is quoted: "u:pw@h://…" must not show the "pw".
        sep = sep if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) else ""
        driver = _DATABASE_SCHEMES.get(scheme.lower()) if sep else None
        if driver is None:
            what = f'the database "{scheme}" is' if sep else "this is not a database URL; it is"
            raise ValueError(f"{what} not supported ({hint})")
        url = f"{driver}://{rest}"
        # Parse it now as the engine will, so a bad port or host fails here with the key's name
        # rather than at startup. Never quote the URL or SQLAlchemy's message: both may hold
        # the password.
        try:
            make_url(url)
        except (ArgumentError, ValueError):
            raise ValueError(f"is not a valid database URL ({hint})") from None
        return url


class Limits(Section):
    tickets_per_hour: PositiveInt = 5
    duplicate_radius_m: NonNegativeInt = 250
    max_photos: Annotated[Int, Field(ge=0, le=10)] = 6  # a Telegram album holds 10 at most
    description_min_chars: PositiveInt = 10
    description_max_chars: PositiveInt = 2000
    max_file_bytes: PositiveInt = 20 * 1024 * 1024  # getFile's limit on the public Bot API


class EmergencyWords(Section):
    zh_Hans: tuple[NonEmptyText, ...] = ()
    zh_Hant: tuple[NonEmptyText, ...] = ()
    en: tuple[NonEmptyText, ...] = ()


class EmergencySettings(Section):
    words: EmergencyWords = Field(default_factory=EmergencyWords)
    # Phrases that contain an emergency word and are no emergency ("fire exit", 火灾隐患,
    # 打人工客服): a word found where one of these overlaps it does not count.
    harmless: EmergencyWords = Field(default_factory=EmergencyWords)

    @property
    def all_words(self) -> tuple[str, ...]:
        """Every language's words: people mix scripts, so a text is checked against all."""
        return self.words.zh_Hans + self.words.zh_Hant + self.words.en

    @property
    def all_harmless(self) -> tuple[str, ...]:
        return self.harmless.zh_Hans + self.harmless.zh_Hant + self.harmless.en


class QuietHours(Section):
    enabled: Flag = True
    start: TimeOfDay = time(21, 0)
    end: TimeOfDay = time(8, 0)

    def contains(self, moment: time) -> bool:
        """Whether a local time of day is inside the quiet hours (which may span midnight)."""
        if not self.enabled:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def next_allowed(self, moment: datetime, tz: tzinfo) -> datetime:
        """``moment`` if it is outside the quiet hours, else when they end (in ``tz``): the
        earliest a non-urgent message to a resident may go out."""
        local = moment.astimezone(tz)
        if not self.contains(local.time()):
            return moment
        end = datetime.combine(local.date(), self.end, tzinfo=tz)
        if end <= local:  # quiet since the evening: it ends tomorrow morning
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=tz)
        return end.astimezone(moment.tzinfo)


class ClaimTimings(Section):
    remind_after: PositiveDuration = timedelta(minutes=30)
    escalate_after: PositiveDuration = timedelta(hours=2)


class ResolutionTimings(Section):
    working_days: PositiveInt = 3
    urgent_within: PositiveDuration = timedelta(hours=24)
    remind_before: PositiveDuration = timedelta(hours=4)
    escalate_after_overdue: Duration = timedelta(days=1)


class SurveyTimings(Section):
    delay: Duration = timedelta(hours=2)
    remind_after: PositiveDuration = timedelta(hours=24)
    give_up_after: PositiveDuration = timedelta(days=7)


class DraftTimings(Section):
    remind_after: PositiveDuration = timedelta(hours=1)
    expire_after: PositiveDuration = timedelta(hours=24)


class BookingTimings(Section):
    min_notice: Duration = timedelta(hours=24)
    cancel_cutoff: Duration = timedelta(hours=12)
    reminders_before: tuple[PositiveDuration, ...] = (timedelta(hours=24), timedelta(hours=2))
    horizon_days: PositiveInt = 30


class Timings(Section):
    claim: ClaimTimings = Field(default_factory=ClaimTimings)
    resolution: ResolutionTimings = Field(default_factory=ResolutionTimings)
    levels: dict[Literal["grid", "community", "street", "district", "desk"], SlaOverrides] = Field(
        default_factory=dict
    )
    survey: SurveyTimings = Field(default_factory=SurveyTimings)
    drafts: DraftTimings = Field(default_factory=DraftTimings)
    booking: BookingTimings = Field(default_factory=BookingTimings)


class SurveySettings(Section):
    reopen_max_score: Annotated[Int, Field(ge=0, le=4)] = 2


class Digests(Section):
    send_at: TimeOfDay = time(8, 30)
    weekly_on: Literal[WEEKDAYS] = "monday"
    monthly_on_day: Annotated[Int, Field(ge=1, le=28)] = 1

    @property
    def weekly_weekday(self) -> int:
        """``weekly_on`` as ``date.weekday()`` numbers it (Monday is 0)."""
        return WEEKDAYS.index(self.weekly_on)


class CalendarOverrides(Section):
    extra_holidays: frozenset[date] = frozenset()
    extra_working_days: frozenset[date] = frozenset()


class DeliverySettings(Section):
    global_per_second: PositiveInt = 30
    per_group_per_minute: PositiveInt = 20
    per_private_chat_per_second: PositiveInt = 1
    # Waits between attempts when a call fails on the way (a timeout, a 5xx, no network).
    # After the last one the wait keeps doubling (up to half an hour, or the last wait if
    # that is longer) until ``give_up_after`` — except after a timeout: that call may have
    # arrived, and is not sent more often than this list allows.
    retry_backoffs: tuple[PositiveDuration, ...] = tuple(
        timedelta(seconds=s) for s in (5, 30, 300, 1800)
    )
    # A message is retried this long after it was queued, then given up; a ticket's card
    # given up is reported to the district centre's group. Messages about a ticket that was
    # closed or withdrawn meanwhile stop sooner.
    give_up_after: PositiveDuration = timedelta(hours=24)
    # A message being sent is held this long: it must outlast one Bot API call. If the instance
    # sending it dies, another sends it once the hold runs out (perhaps a second time, when the
    # call had reached Telegram: the one case of at-least-once delivery).
    lease: PositiveDuration = timedelta(minutes=1)


class SchedulerSettings(Section):
    tick_interval: PositiveDuration = timedelta(seconds=5)
    batch_size: PositiveInt = 50
    retry_backoffs: tuple[PositiveDuration, ...] = tuple(timedelta(minutes=m) for m in (1, 5, 30))
    # A task being run is held this long; a dead instance's tasks run elsewhere after it.
    lease: PositiveDuration = timedelta(minutes=2)


class RuntimeSettings(Section):
    max_concurrent_updates: PositiveInt = 64
    processed_update_retention: PositiveDuration = timedelta(days=2)
    shutdown_timeout: PositiveDuration = timedelta(seconds=30)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    readyz_max_outbox_backlog: PositiveInt = 1000
    readyz_max_scheduler_lag: PositiveDuration = timedelta(minutes=1)
    # How long an instance may hold an update from the inbox before another may take it over
    # (renewed while the update is being handled, so only a dead instance lets it run out).
    inbox_lease: PositiveDuration = timedelta(seconds=30)


class WebhookSettings(Section):
    """Webhook mode: Telegram POSTs updates to ``url``; the bot's HTTP server ([server]) answers
    them at that URL's path, behind a reverse proxy that ends TLS."""

    enabled: Flag = False
    # Kept out of repr: PTB's examples put the bot token in the webhook path.
    url: str | None = Field(default=None, repr=False)
    # Checked on every call from Telegram; when left out, one is derived from the bot token,
    # so every instance of a deployment agrees on it without another secret to share.
    secret_token: str | None = Field(default=None, repr=False)
    max_connections: Annotated[Int, Field(ge=1, le=100)] = 40

    @field_validator("secret_token")
    @classmethod
    def _secret_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value):
            raise ValueError("may only hold 1–256 letters, digits, _ and - (Telegram's rule)")
        return value

    @field_validator("url")
    @classmethod
    def _web_url(cls, value: str | None) -> str | None:
        # Never quote the value (it may hold the token). Whether plain http is allowed depends
        # on the Bot API server (only a local one calls it): checked across sections in
        # bot.config.
        if value is not None:
            parts = _split_url(value.strip(), "webhook")
            if parts.scheme not in ("https", "http"):
                raise ValueError("is not an https address (Telegram only calls https URLs)")
            if not parts.hostname:
                raise ValueError("is not a valid webhook address (it has no host name)")
            value = value.strip()
        return value

    @property
    def path(self) -> str:
        """Where the bot's HTTP server takes the updates: the URL's path."""
        return _split_url(self.url or "", "webhook").path or "/"


class ServerSettings(Section):
    """The bot's own HTTP server: the webhook (in webhook mode), /healthz, /readyz, /metrics."""

    enabled: Flag = True
    listen: NonEmptyText = "127.0.0.1"
    port: Annotated[Int, Field(ge=0, le=65535)] = 8081  # 0: any free port (logged)


class WebSettings(Section):
    """The web chat for residents without Telegram (``/chat`` on the bot's HTTP server, reached
    from the QR code on a grid's poster) and its limits on the open internet."""

    enabled: Flag = True
    # The address residents open, as the reverse proxy publishes [server]: the posters' QR
    # codes point at it and the chat accepts requests only from its origin. Left out, the
    # chat takes requests from the address it was reached at (a local demo).
    public_url: str | None = None
    # Per address: new device sessions an hour (a QR code scanned over and over by a script).
    sessions_per_hour: PositiveInt = 20
    # Per session and per address: messages and button presses a minute, photos an hour.
    messages_per_minute: PositiveInt = 30
    uploads_per_hour: PositiveInt = 30
    # Per address (a whole office or a mobile operator's NAT shares one): messages a minute.
    messages_per_minute_per_address: PositiveInt = 300
    max_upload_bytes: Annotated[Int, Field(ge=100_000, le=20_000_000)] = 10_000_000
    # A device session unused this long is forgotten (its tickets stay with the person and
    # the recovery code still opens them).
    session_idle: PositiveDuration = timedelta(days=180)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        parts = _split_url(value, "web")
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("is not an http(s) address with a host name")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or a fragment")
        return value


class ConsoleSettings(Section):
    """The centres' console (``/console`` on the bot's HTTP server): staff sign in through the
    bot and see the tickets of the nodes whose groups they are in."""

    enabled: Flag = True
    # A console left alone this long signs out (the big screen's wall display keeps itself
    # awake by its own requests).
    idle_timeout: PositiveDuration = timedelta(hours=2)
    # How often a signed-in person's groups are asked again (someone who left a centre's
    # group loses its view within this time).
    membership_recheck: PositiveDuration = timedelta(minutes=10)


class PrivacySettings(Section):
    personal_data_retention: PositiveDuration | None = None
