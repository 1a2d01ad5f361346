"""Languages: gettext catalogs managed with Babel, resolution of a user's language.

Msgids are English source strings with named placeholders: translate first, then format, and
escape user text before it goes into HTML. Catalogs are compiled from the .po files in memory at
start-up, so there is no build step and no stale .mo file can ever be served.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources

from babel.dates import format_timedelta
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("zh_Hans", "zh_Hant", "en")
DEFAULT_LANGUAGE = "zh_Hans"
DOMAIN = "gridgate"

# Telegram's language_code is an IETF tag chosen by the client, usually just "zh" or "en".
_TRADITIONAL = {"zh-tw", "zh-hk", "zh-mo", "zh-hant"}
_SIMPLIFIED = {"zh", "zh-cn", "zh-sg", "zh-hans"}

LANGUAGE_NAMES = {"zh_Hans": "简体中文", "zh_Hant": "繁體中文", "en": "English"}


def language_choices() -> list[dict[str, str]]:
    """The languages a page offers, each named in itself."""
    return [{"code": code, "name": LANGUAGE_NAMES[code]} for code in LANGUAGES]


def N_(msgid: str) -> str:
    """Mark a string for extraction where it is defined; translate it where it is shown."""
    return msgid


def resolve_language(stored: str | None, telegram_code: str | None,
                     default: str = DEFAULT_LANGUAGE) -> str:
    """The user's stored choice wins, then Telegram's language_code, then the default."""
    if stored in LANGUAGES:
        return stored
    if telegram_code:
        tag = telegram_code.strip().lower().replace("_", "-")
        if tag in _TRADITIONAL or tag.startswith(("zh-hant", "zh-tw", "zh-hk", "zh-mo")):
            return "zh_Hant"
        if tag in _SIMPLIFIED or tag.startswith("zh"):
            return "zh_Hans"
        return "en"
    return default


@dataclass(frozen=True)
class Translator:
    """Translates msgids into one language; `t("Hello, {name}", name=...)`."""

    language: str
    _translations: gettext.NullTranslations

    def __call__(self, msgid: str, /, **values: object) -> str:
        text = self._translations.gettext(msgid)
        return text.format(**values) if values else text

    def plural(self, singular: str, plural: str, n: int, /, **values: object) -> str:
        text = self._translations.ngettext(singular, plural, n)
        return text.format(n=n, **values)

    def duration(self, value: timedelta, *, approximate: bool = False) -> str:
        """``value`` in words of this language; see ``format_duration``."""
        return format_duration(value, self.language, approximate=approximate)


class Catalogs:
    """All compiled catalogs; one Translator per language."""

    def __init__(self, translations: Mapping[str, gettext.NullTranslations]) -> None:
        self._translators = {lang: Translator(lang, translations[lang]) for lang in LANGUAGES}

    @classmethod
    def load(cls) -> Catalogs:
        root = resources.files("locales")
        compiled: dict[str, gettext.NullTranslations] = {}
        for lang in LANGUAGES:
            po = root / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
            with po.open("rb") as f:
                catalog = read_po(f, locale=_babel_locale(lang), domain=DOMAIN)
            buffer = io.BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            compiled[lang] = gettext.GNUTranslations(buffer)
        return cls(compiled)

    def __getitem__(self, language: str) -> Translator:
        return self._translators.get(language, self._translators[DEFAULT_LANGUAGE])


_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def format_duration(value: timedelta, language: str, *, approximate: bool = False) -> str:
    """A duration as a person of ``language`` says it: "1小时30分钟", "1 小時 30 分鐘",
    "1 hour, 30 minutes".

    Whatever is shown to a person goes through here; the compact "1h30m" of
    ``bot.config.format_duration`` is the configuration file's spelling, for administrators.
    A configured duration is shown exactly. A measured one (``approximate``: time waited, an
    average) is rounded to its two largest units, and to whole minutes once it is a minute or
    more, because "1 minute 1 second" is more precise than anybody waiting cares about.
    """
    locale = _babel_locale(language if language in LANGUAGES else DEFAULT_LANGUAGE)
    seconds = max(round(value.total_seconds()), 0)  # a measured time is never below zero
    if approximate:
        step = 3600 if seconds >= 86400 else 60 if seconds >= 60 else 1
        seconds = round(seconds / step) * step
    parts: list[tuple[str, int]] = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append((unit, count))
    if approximate:
        parts = parts[:2]
    if not parts:
        parts = [("second", 0)]
    # format_timedelta alone rounds to one unit (1h30m -> "2 hours"); given one whole unit at a
    # time it names it exactly, and CLDR's unit list pattern joins them as the language does.
    words = [format_timedelta(timedelta(seconds=count * dict(_UNITS)[unit]), granularity=unit,
                              threshold=1, locale=locale) for unit, count in parts]
    return format_list(words, style="unit", locale=locale)


def format_names(names: list[str], language: str) -> str:
    """Several names as one phrase of ``language``: "劳动用工、合同管理和知识产权",
    "Labour and employment, Contracts, Work safety"."""
    language = language if language in LANGUAGES else DEFAULT_LANGUAGE
    # English names often hold an "and" of their own ("Labour and employment"), which a
    # final "and" would run into; commas alone keep them apart.
    style = "unit" if language == "en" else "standard"
    return format_list(names, style=style, locale=_babel_locale(language))


def _babel_locale(lang: str) -> str:
    return {"zh_Hans": "zh_Hans_CN", "zh_Hant": "zh_Hant_TW", "en": "en"}[lang]
