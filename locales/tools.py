"""Extraction, update and checks of the catalogs, on Babel's API."""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES = Path(__file__).resolve().parent
DOMAIN = "gridgate"
LANGUAGES = {"zh_Hans": "zh_Hans_CN", "zh_Hant": "zh_Hant_TW", "en": "en"}
SOURCES = ("bot", "handlers", "scheduler")
# t("…") translates into the person's language and tg("…") into a group's, N_("…") marks for
# later, t.plural("…", "…", n) has plural forms.
KEYWORDS = {"t": None, "tg": None, "gt": None, "ct": None, "N_": None, "plural": (1, 2)}


def template_path() -> Path:
    return LOCALES / f"{DOMAIN}.pot"


def po_path(language: str) -> Path:
    return LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def extract() -> Catalog:
    catalog = _new_catalog(None)
    for source in SOURCES:
        for filename, lineno, message, comments, context in extract_from_dir(
                ROOT / source, method_map=[("**.py", "python")], keywords=KEYWORDS,
                comment_tags=("TRANSLATORS:",), strip_comment_tags=True):
            catalog.add(message, None, [(f"{source}/{filename}", lineno)],
                        auto_comments=comments, context=context)
    return catalog


def _new_catalog(locale: str | None) -> Catalog:
    return Catalog(locale=locale, domain=DOMAIN, project="gridgate", version="1",
                   copyright_holder="the gridgate authors", charset="utf-8", fuzzy=False,
                   msgid_bugs_address="the gridgate issue tracker")


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale, domain=DOMAIN)


def write(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog, width=100, sort_output=False, include_previous=False)


def update() -> None:
    template = extract()
    write(template_path(), template)
    for language, locale in LANGUAGES.items():
        path = po_path(language)
        catalog = read(path, locale) if path.exists() else _new_catalog(locale)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        write(path, catalog)


def compile_mo() -> None:
    for language, locale in LANGUAGES.items():
        with po_path(language).with_suffix(".mo").open("wb") as f:
            write_mo(f, read(po_path(language), locale))


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _ids(message) -> tuple[str, ...]:
    return message.id if isinstance(message.id, tuple) else (message.id,)


def _strings(message) -> tuple[str, ...]:
    return message.string if isinstance(message.string, tuple) else (message.string,)


def problems() -> Iterator[str]:
    """Everything that would show a user an untranslated or broken message."""
    source = {_ids(m)[0] for m in extract() if m.id}
    for language, locale in LANGUAGES.items():
        path = po_path(language)
        if not path.exists():
            yield f"{path.relative_to(ROOT)}: missing"
            continue
        catalog = read(path, locale)
        present = {_ids(m)[0] for m in catalog if m.id}
        for msgid in sorted(source - present):
            yield f"{language}: not in the catalog (run python -m locales extract): {msgid!r}"
        for message in catalog:
            if not message.id:
                continue
            ids, strings = _ids(message), _strings(message)
            if message.fuzzy:
                yield f"{language}: fuzzy translation: {ids[0]!r}"
            if not all(strings):
                yield f"{language}: not translated: {ids[0]!r}"
                continue
            expected = set().union(*(placeholders(i) for i in ids))
            for s in strings:
                if placeholders(s) != expected:
                    yield (f"{language}: placeholders {sorted(placeholders(s))} differ from "
                           f"{sorted(expected)} in {ids[0]!r}")
            try:
                for s in strings:
                    s.format(**{name: "x" for name in expected}, n=1)
            except (ValueError, IndexError, KeyError) as exc:
                yield f"{language}: malformed placeholders ({exc}) in {ids[0]!r}"
