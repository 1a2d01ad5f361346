"""gridgate's configuration: one TOML file plus a few environment overrides.

``load_config()`` reads ``./gridgate.toml`` (or, when there is none, the commented example that
ships in ``bot/data``), lays the environment over it, checks everything and returns a frozen
``Config``. Anything wrong raises ``ConfigError``, whose text names every bad key and says what
is wrong in plain words, ready for the CLI to print. Nothing is read at import time.
The sections' models and value types live in ``bot.config_types``; import them from here.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, PrivateAttr, ValidationError

from bot.config_types import (
    KINDS_NEEDING_DESK,
    LANGUAGES,
    TELEGRAM_API_ROOT,
    TIERS,
    CalendarOverrides,
    Category,
    ConsoleSettings,
    DatabaseSettings,
    DeliverySettings,
    Desk,
    Digests,
    EmergencySettings,
    GeneralSettings,
    Industry,
    Kind,
    Language,
    Limits,
    Names,
    PrivacySettings,
    QuietHours,
    RuntimeSettings,
    SchedulerSettings,
    Section,
    ServerSettings,
    Sla,
    SlaOverrides,
    SurveySettings,
    TelegramSettings,
    Timings,
    Topic,
    WebhookSettings,
    WebSettings,
    format_duration,
    parse_duration,
    show,
)

# The names other modules use; the section models are reached as attributes of Config.
__all__ = [
    "KINDS_NEEDING_DESK",
    "LANGUAGES",
    "TELEGRAM_API_ROOT",
    "TIERS",
    "Category",
    "Config",
    "ConfigError",
    "Desk",
    "Industry",
    "Kind",
    "Language",
    "Names",
    "Sla",
    "SlaOverrides",
    "Topic",
    "example_config_path",
    "format_duration",
    "load_config",
    "parse_config",
    "parse_duration",
    "startup_problems",
    "tier_of",
]

# What differs per deployment comes from the environment and wins over the file.
ENV_OVERRIDES = {
    "TELEGRAM_BOT_TOKEN": ("telegram", "token"),
    "TELEGRAM_API_BASE_URL": ("telegram", "api_base_url"),
    "DATABASE_URL": ("database", "url"),
    "GRIDGATE_TIMEZONE": ("general", "timezone"),
    "GRIDGATE_WEBHOOK_URL": ("webhook", "url"),
    "GRIDGATE_WEBHOOK_SECRET": ("webhook", "secret_token"),
}
_SECRET_KEYS = ("token", "secret_token")
_TIER_OF_LEVEL = {"village": "community", "town": "street", "park": "street"}


def startup_problems(config: Config) -> list[str]:
    """Why a bot with this configuration should not start, although each value is valid: it
    would answer residents, but could take nothing from them."""
    if config.categories:
        return []
    last = config.source.split(" + ")[-1]
    return [f"{config.source}: there are no [[categories]], so residents could report nothing "
            "(/report would offer only Cancel). Each --config file replaces the usual "
            "gridgate.toml; one that changes only some settings (as gridgate.demo.toml does) "
            "goes after a whole configuration, which it is laid over: `gridgate --config "
            f"WHOLE.toml --config {last} run`. The example with every category is "
            f"{example_config_path()}."]


def tier_of(level: str) -> str:
    """The tier an org-tree level belongs to: "town" -> "street", "village" -> "community"."""
    return _TIER_OF_LEVEL.get(level, level)


class ConfigError(Exception):
    """A configuration that cannot be used; ``str(error)`` is the whole message for the admin."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class Config(Section):
    general: GeneralSettings = Field(default_factory=GeneralSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    limits: Limits = Field(default_factory=Limits)
    emergency: EmergencySettings = Field(default_factory=EmergencySettings)
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    timings: Timings = Field(default_factory=Timings)
    survey: SurveySettings = Field(default_factory=SurveySettings)
    digests: Digests = Field(default_factory=Digests)
    calendar: CalendarOverrides = Field(default_factory=CalendarOverrides)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    desks: tuple[Desk, ...] = ()
    categories: tuple[Category, ...] = ()
    checkup_topics: tuple[Topic, ...] = ()
    industries: tuple[Industry, ...] = ()
    _source: str = PrivateAttr(default="<config>")
    _origins: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> str:
        """Where this configuration came from, as messages show it."""
        return self._source

    def origin(self, path: str) -> str | None:
        """Which file (or environment variable) set the key at ``path`` ("general.timezone",
        "categories"); None when no file did, so the value is gridgate's default. A table
        written in several files names each of them."""
        if path in self._origins:
            return self._origins[path]
        below = [source for key, source in self._origins.items() if key.startswith(f"{path}.")]
        if below:
            return " + ".join(dict.fromkeys(below))
        parts = path.split(".")
        for end in range(len(parts) - 1, 0, -1):
            if ".".join(parts[:end]) in self._origins:
                return self._origins[".".join(parts[:end])]
        return None

    @property
    def timezone(self) -> ZoneInfo:
        return self.general.timezone

    @property
    def default_language(self) -> Language:
        return self.general.default_language

    @property
    def admins(self) -> frozenset[int]:
        return self.general.admins

    @property
    def demo_district_when_empty(self) -> bool:
        return self.general.demo_district_when_empty

    def desk(self, code: str) -> Desk | None:
        return next((d for d in self.desks if d.code == code), None)

    def category(self, code: str) -> Category | None:
        return next((c for c in self.categories if c.code == code), None)

    def industry(self, code: str) -> Industry | None:
        return next((i for i in self.industries if i.code == code), None)

    def categories_of(self, kind: Kind) -> tuple[Category, ...]:
        return tuple(c for c in self.categories if c.kind == kind)

    def sla(self, category: Category | str | None = None, level: str = "grid") -> Sla:
        """The deadlines for a ticket of ``category`` held at an org-tree ``level`` (or "desk").

        The category's own figures win over the tier's, which win over [timings].
        """
        if isinstance(category, str):
            found = self.category(category)
            if found is None:
                raise KeyError(f"no category {category!r}")
            category = found
        layers = [self.timings.levels.get(tier_of(level)), category.sla if category else None]
        return _resolve_sla(self.timings, [layer for layer in layers if layer is not None])


def _resolve_sla(timings: Timings, layers: list[SlaOverrides]) -> Sla:
    values = {}
    for name in SlaOverrides.model_fields:
        group, _, attr = name.partition("_")  # "claim_remind_after" -> timings.claim.remind_after
        values[name] = getattr(getattr(timings, group), attr)
        for layer in layers:
            if getattr(layer, name) is not None:
                values[name] = getattr(layer, name)
    return Sla(**values)


# -- loading -------------------------------------------------------------------------------------


def example_config_path() -> Traversable:
    """The commented example shipped with the package (works from an installed wheel too)."""
    return files("bot") / "data" / "gridgate.example.toml"


def load_config(
    path: Path | str | Sequence[Path | str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read, override from the environment, and check the configuration.

    ``path`` None means ``./gridgate.toml`` when it exists, else the packaged example. Several
    paths are laid over each other in order: a later file's tables add to or change an
    earlier file's keys, and its other values (lists included) replace them. ``environ``
    None means ``os.environ``.
    """
    environ = os.environ if environ is None else environ
    paths = [path] if path is None or isinstance(path, str | Path) else list(path)
    data: dict[str, Any] = {}
    sources = []
    origins: dict[str, str] = {}
    for each in paths or [None]:
        source, layer = _read_toml(each)
        data = _laid_over(data, layer)
        sources.append(source)
        origins.update(dict.fromkeys(_leaves(layer), source))
    config = parse_config(data, source=" + ".join(sources), environ=environ)
    config._origins = {**origins, **config._origins}
    return config


def _leaves(table: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """The key paths a TOML table sets: "general.timezone", "categories" (a list is one)."""
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{path}.")
        else:
            yield path


def _read_toml(path: Path | str | None) -> tuple[str, dict[str, Any]]:
    file: Path | Traversable
    if path is None:
        local = Path("gridgate.toml")
        file = local if local.is_file() else example_config_path()
        source = str(file)
    else:
        file, source = Path(path), str(path)
    try:
        # utf-8-sig: Windows editors like to start the file with a byte-order mark.
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            f"{source}: no such file (a commented example is at {example_config_path()})"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: is not UTF-8 text; save it as UTF-8") from None
    except OSError as error:
        raise ConfigError(f"{source}: cannot be read ({error.strerror})") from None
    try:
        return source, tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: {_toml_problem(str(error), text)}") from None


def _laid_over(base: Mapping[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in layer.items():
        below = merged.get(key)
        if isinstance(value, dict) and isinstance(below, dict):
            merged[key] = _laid_over(below, value)
        else:
            merged[key] = value
    return merged


def parse_config(
    data: Mapping[str, Any], *, source: str = "<config>", environ: Mapping[str, str] = {}
) -> Config:
    """Check already-parsed TOML data (also handy in tests); same errors as ``load_config``."""
    data, from_env = _apply_environment(data, environ)
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        raise _config_error(source, list(_explain_all(error, from_env))) from None
    # A value from the environment is blamed on its variable, not on a file that may not
    # even hold the key.
    by_path = {f"{section}.{key}": variable for (section, key), variable in from_env.items()}
    problems = [(by_path.get(where, where), text)
                for where, text in _consistency_problems(config)]
    if problems:
        raise _config_error(source, problems)
    config._source = source
    config._origins = {path: f"${variable}" for path, variable in by_path.items()}
    return config


def _toml_problem(message: str, text: str) -> str:
    # tomllib says "Invalid value (at line 2, column 5)"; lead with the place instead.
    match = re.fullmatch(r"(.*) \(at (line \d+, column \d+|end of document)\)", message)
    if not match:
        return f"not valid TOML ({message})"
    place, reason = match[2], match[1][:1].lower() + match[1][1:]
    if place == "end of document":  # e.g. an unclosed [ or "
        lines = text.split("\n")
        place = f"line {len(lines)}, column {len(lines[-1]) + 1} (the end of the file)"
    return f"{place}: not valid TOML ({reason})"


def _apply_environment(
    data: Mapping[str, Any], environ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[tuple[str, str], str]]:
    data = dict(data)
    from_env: dict[tuple[str, str], str] = {}
    for variable, (section, key) in ENV_OVERRIDES.items():
        value = environ.get(variable, "").strip()  # an empty variable counts as unset
        table = data.get(section, {})
        if not value or not isinstance(table, dict):
            continue  # a malformed section is reported as such
        data[section] = {**table, key: value}
        from_env[(section, key)] = variable
    return data, from_env


def _explain_all(
    error: ValidationError, from_env: dict[tuple[str, str], str]
) -> Iterator[tuple[str, str]]:
    for item in error.errors(include_url=False):
        loc = tuple(part for part in item["loc"] if part != "[key]")
        where = from_env.get(loc[:2]) if len(loc) == 2 else None
        allowed = _keys_at(loc[:-1]) if item["type"] == "extra_forbidden" else ()
        secret = bool(loc) and loc[-1] in _SECRET_KEYS
        yield where or _key_path(loc), explain(item, allowed, secret)


def _key_path(loc: tuple[str | int, ...]) -> str:
    """('categories', 2, 'target') -> 'categories[2].target'."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def _keys_at(loc: tuple[str | int, ...]) -> list[str]:
    """The keys allowed in the table at ``loc``, to suggest a spelling for an unknown one."""
    kind: Any = Config
    for part in loc:
        kind = _unwrap(kind)
        if isinstance(part, int) or get_origin(kind) is dict:
            kind = (get_args(kind) or (Any,))[-1 if get_origin(kind) is dict else 0]
        elif isinstance(kind, type) and issubclass(kind, BaseModel) and part in kind.model_fields:
            kind = kind.model_fields[part].annotation
        else:
            return []
    kind = _unwrap(kind)
    return list(kind.model_fields) if isinstance(kind, type) and issubclass(kind, BaseModel) else []


def _unwrap(kind: Any) -> Any:
    while get_origin(kind) in (Annotated, Union, UnionType):
        kind = next(arg for arg in get_args(kind) if arg is not type(None))
    return kind


def _config_error(source: str, problems: list[tuple[str, str]]) -> ConfigError:
    lines = tuple(dict.fromkeys(f"{where}: {text}" if where else text for where, text in problems))
    if len(lines) == 1:
        where = problems[0][0]
        # An environment variable's name says where the value came from; a key needs the file.
        own = where in ENV_OVERRIDES
        return ConfigError(lines[0] if own else f"{source}: {lines[0]}", lines)
    body = "\n".join(f"  - {line}" for line in lines)
    return ConfigError(f"{source}: {len(lines)} problems:\n{body}", lines)


# -- pydantic's errors in plain words ---------------------------------------------------------


def explain(error: dict[str, Any], allowed_keys: Iterable[str] = (), secret: bool = False) -> str:
    """One pydantic error (from ``ValidationError.errors()``) as a sentence for an admin.

    ``allowed_keys`` are the keys valid beside an unknown one (to suggest a spelling);
    ``secret`` keeps the value (a token) out of the message.
    """
    kind, ctx = error["type"], error.get("ctx") or {}
    value = "this value" if secret else show(error.get("input"))
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        key = str(error["loc"][-1]) if error["loc"] else ""
        allowed = sorted(allowed_keys)
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            return f'unknown key (did you mean "{close[0]}"?)'
        if allowed:
            return "unknown key (allowed here: " + ", ".join(allowed) + ")"
        return "unknown key"
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", '"')
        return f"{value} is not allowed here (use {expected})"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{value} is not a whole number"
    if kind in ("bool_type", "bool_parsing"):
        return f"{value} is not true or false"
    if kind in ("string_type", "string_sub_type"):
        return f"{value} is not text (put it in double quotes)"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} entries"
    if kind == "too_long":
        return f"has too many entries (at most {ctx.get('max_length')})"
    if kind in ("tuple_type", "list_type", "set_type", "frozen_set_type", "iterable_type"):
        if isinstance(error.get("input"), dict) and len(error["loc"]) == 1:
            return f"is one table, not a list of them (write [[{error['loc'][0]}]] above each)"
        return f"{value} is not a list (use [ ... ])"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        # Name the kind, never the value: `telegram = "123456:AAE…"` is a token in the wrong place.
        loc = error["loc"]
        if loc and all(isinstance(part, str) for part in loc):
            how = f"[{'.'.join(map(str, loc))}] section"
        else:
            how = "{ key = value }"
        return f"must be a table ({how}), not {_kind_of(error.get('input'))}"
    if kind.startswith(("date_", "datetime_")):
        return f"{value} is not a date (use YYYY-MM-DD, for example 2031-10-01)"
    bounds = {
        "greater_than": ("gt", "more than"),
        "greater_than_equal": ("ge", "at least"),
        "less_than": ("lt", "less than"),
        "less_than_equal": ("le", "at most"),
    }
    if kind in bounds:
        name, words = bounds[kind]
        return f"{value} is out of range (must be {words} {show(ctx.get(name))})"
    if kind == "string_too_long":
        return f"is too long (at most {ctx.get('max_length')} characters)"
    return error["msg"]  # rare types: pydantic's sentence is still better than nothing


def _kind_of(value: Any) -> str:
    """What sort of TOML value this is, for messages that must not quote it."""
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, datetime | date | time):
        return "a date or time"
    return "a single value"


# -- checks across fields ------------------------------------------------------------------------


def _webhook_problems(config: Config) -> Iterator[tuple[str, str]]:
    hook = config.webhook
    if hook.enabled and not hook.url:
        yield "webhook.url", "is needed in webhook mode: the public https address Telegram calls"
    # Telegram itself only calls https; a local Bot API server (telegram-bot-api --local, or
    # gridgate's sandbox) may call plain http on the machine's own network.
    if (hook.url and hook.url.lower().startswith("http:")
            and config.telegram.api_base_url == TELEGRAM_API_ROOT):
        yield "webhook.url", ("is not an https address (Telegram only calls https URLs; plain "
                              "http is for a local Bot API server)")
    if hook.enabled and not config.server.enabled:
        yield "server.enabled", "must be true in webhook mode: the server takes the updates"


def _consistency_problems(config: Config) -> Iterator[tuple[str, str]]:
    for section in ("desks", "categories", "checkup_topics", "industries"):
        seen: dict[str, int] = {}
        for index, item in enumerate(getattr(config, section)):
            if item.code in seen:
                first = f"{section}[{seen[item.code]}]"
                yield f"{section}[{index}].code", f"{show(item.code)} is already used by {first}"
            seen.setdefault(item.code, index)

    desks = {desk.code for desk in config.desks}
    checkup_at: str | None = None
    for index, category in enumerate(config.categories):
        at = f"categories[{index}]"
        if category.target_desk is not None and category.target_desk not in desks:
            yield f"{at}.target", f'desk "{category.target_desk}" is not defined in [[desks]]'
        if category.kind in KINDS_NEEDING_DESK and category.target_desk is None:
            wanted = f'must go to a desk (target = "desk:<code>"), not to {show(category.target)}'
            yield f"{at}.target", f'a category of kind "{category.kind}" {wanted}'
        if category.kind == "checkup":
            if checkup_at:
                yield f"{at}.kind", f'only one category may be "checkup" ({checkup_at} is)'
            checkup_at = checkup_at or at
    if checkup_at and not config.checkup_topics:
        yield "checkup_topics", f"is empty, but {checkup_at} offers check-ups; list their topics"

    yield from _sla_problems(config)
    yield from _webhook_problems(config)

    limits, timings = config.limits, config.timings
    if limits.description_min_chars > limits.description_max_chars:
        most = f"description_max_chars ({limits.description_max_chars})"
        yield "limits.description_min_chars", f"is more than {most}"
    quiet = config.quiet_hours
    if quiet.enabled and quiet.start == quiet.end:
        same = f"is the same as start ({show(quiet.start)})"
        yield "quiet_hours.end", f"{same}; set enabled = false to have no quiet hours"
    for section, first, then in (
        ("survey", "remind_after", "give_up_after"),
        ("drafts", "remind_after", "expire_after"),
    ):
        yield from _before(f"timings.{section}", getattr(timings, section), first, then)
    booking = timings.booking
    if booking.min_notice >= timedelta(days=booking.horizon_days):
        horizon = f"horizon_days ({booking.horizon_days})"
        yield (
            "timings.booking.min_notice",
            f"{show(booking.min_notice)} is not shorter than {horizon}",
        )
    both = config.calendar.extra_holidays & config.calendar.extra_working_days
    if both:
        days = ", ".join(sorted(day.isoformat() for day in both))
        verb = "is" if len(both) == 1 else "are"
        yield "calendar.extra_working_days", f"{days} {verb} also listed in extra_holidays"


def _before(path: str, section: BaseModel, first: str, then: str) -> Iterator[tuple[str, str]]:
    early, late = getattr(section, first), getattr(section, then)
    if early >= late:
        yield f"{path}.{first}", f"{show(early)} must be shorter than {then} ({show(late)})"


def _sla_problems(config: Config) -> Iterator[tuple[str, str]]:
    """Check every mix of tier and category figures, blaming the most specific setting."""
    levels = config.timings.levels.items()
    tiers = [("", None), *((f"timings.levels.{tier}", o) for tier, o in levels)]
    owners = [
        ("", None),
        *((f"categories[{i}].sla", c.sla) for i, c in enumerate(config.categories)),
    ]
    for tier_path, tier in tiers:
        for owner_path, owner in owners:
            # Most specific first, as _blame reads them; _resolve_sla wants the reverse.
            layers = [(p, o) for p, o in ((owner_path, owner), (tier_path, tier)) if o is not None]
            sla = _resolve_sla(config.timings, [o for _, o in reversed(layers)])
            remind, escalate = sla.claim_remind_after, sla.claim_escalate_after
            if remind >= escalate:
                where = _blame(layers, "claim_remind_after", "claim_escalate_after")
                yield (
                    where,
                    (
                        f"the claim reminder ({show(remind)}) must come before the escalation"
                        f" ({show(escalate)})"
                    ),
                )
            # A deadline is at least this far away: working days are whole days or more.
            shortest = min(
                sla.resolution_urgent_within, timedelta(days=sla.resolution_working_days)
            )
            if sla.resolution_remind_before >= shortest:
                where = _blame(
                    layers,
                    "resolution_remind_before",
                    "resolution_urgent_within",
                    "resolution_working_days",
                )
                yield (
                    where,
                    (
                        f"the reminder {show(sla.resolution_remind_before)} before the deadline"
                        f" must be shorter than the deadline itself ({show(shortest)})"
                    ),
                )


def _blame(layers: list[tuple[str, SlaOverrides]], *names: str) -> str:
    """The key path of the most specific setting among ``names``."""
    for path, overrides in layers:
        for name in names:
            if getattr(overrides, name) is not None:
                return f"{path}.{name}"
    group, _, attr = names[0].partition("_")
    return f"timings.{group}.{attr}"
