"""Check Bot API calls against the machine-readable spec (``bot-api-10.0.json``).

Everything here is derived from the spec's field types and descriptions; the few rules that
can only be read from prose ("1-64 bytes", "must be one of", "can be either", "list of 1-100
identifiers", "Required if inline_message_id is not specified", "Exactly one of the fields
other than …") are parsed out of the descriptions once, when the spec is loaded.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.sandbox.apispec.html import parse_html, utf16_len

PARSE_MODES = {"html", "markdown", "markdownv2"}  # Telegram compares case-insensitively
_ARRAY = "Array of "
_LENGTH = re.compile(r"(\d+)-(\d+) (characters|bytes)", re.IGNORECASE)
_COUNT = re.compile(
    r"must include (?P<min>\d+)-(?P<max>\d+) items"
    r"|\b(?:[Ll]ist|[Aa]rray) of (?P<lo>\d+)-(?P<hi>\d+) (?!characters|bytes)"  # "list of 1-100 …"
    r"|\b(?:[Ll]ist of )?up to (?P<upto>\d+) (?:items|identifiers|winners)"
    r"|[Aa]t most (?P<most>\d+) [\w ]+? can be specified"
)
_CONST = re.compile(r", (?:must be|always) [\"“]?([a-z_0-9]+)[\"”]?$")
# A closed set of values, however the docs phrase it: "must be one of", "can be either",
# "Currently, can be", "currently one of", "Currently, either", ". One of", ", pass" …; the list
# must start right after the phrase with a quoted value and runs to the end of the sentence.
_ONE_OF = re.compile(
    r"(?:must be one of|can be either|can be one of|currently,? (?:it )?can be"
    r"|currently,? (?:one of|either)|(?:^|\. |, )one of|, either|, pass)"
    r"\s+(?P<list>[\"“].+?)(?:\.\s|\.$|$)",
    re.IGNORECASE,
)
# "Poll type, "quiz" or "regular", defaults to "regular"": the whole description is the list.
_LEADING_ONE_OF = re.compile(
    r"^[A-Z][\w ]*, (?P<list>(?:[\"“][^\"”]+[\"”],? )+or [\"“][^\"”]+[\"”])"
    r"(?:, defaults to [\"“][^\"”]+[\"”])?$"
)
_QUOTED = re.compile(r"[\"“]([^\"”]+)[\"”]")
# "Required if inline_message_id is not specified", "Required if chat_id and message_id are not
# specified": the parameter is needed unless one of the named alternatives is given.
_REQUIRED_UNLESS = re.compile(r"(?:^|\.\s)Required if ([\w ]+?) (?:is|are) not specified\.")
# "Required if business_connection_id is specified", "Required if ok is True".
_REQUIRED_IF = re.compile(r"(?:^|\.\s)Required if (\w+) is (specified|True|False)\.")
_SPECIFIED = object()
_EXCLUSIVE = re.compile(r"(Exactly|At most) one of the fields other than ([\w ,]+?) must be used")
_PATTERNS = {
    "only lowercase English letters, digits and underscores": r"[a-z0-9_]*",
    "A-Z, a-z, 0-9, _ and -": r"[A-Za-z0-9_-]*",
    "two-letter ISO 639-1 language code": r"([a-z]{2})?",
}


@dataclass(frozen=True)
class FieldRule:
    """One parameter or object field, with the limits found in its description."""

    name: str
    types: tuple[str, ...]
    required: bool
    description: str
    min_len: int | None = None
    max_len: int | None = None
    in_bytes: bool = False
    formatted_by: str | None = None  # sibling parse_mode field, if "after entities parsing"
    const: str | None = None
    choices: frozenset[str] | None = None
    pattern: re.Pattern[str] | None = None
    min_items: int | None = None
    max_items: int | None = None
    file_ok: bool = False  # may carry an upload (InputFile) or an attach://<name> reference
    required_unless: frozenset[str] = frozenset()  # needed when none of these is given
    required_if: tuple[str, object] | None = None  # needed when sibling == value (or is given)


@dataclass(frozen=True)
class OwnerRule:
    """A method or an object type: its fields and the "one of" rule from its description."""

    name: str
    fields: dict[str, FieldRule]
    subtypes: tuple[str, ...] = ()
    exclusive: tuple[str, frozenset[str]] | None = None  # ("exactly"|"at most", ignored fields)


class BotApiSpec:
    """The spec's methods and types as rules; see ``validate_call`` and ``validate_value``."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.version: str = data.get("version", "?")
        self.raw = data
        self.methods = {name: _owner(m, is_type=False) for name, m in data["methods"].items()}
        self.types = {name: _owner(t, is_type=True) for name, t in data["types"].items()}
        self.returns: dict[str, list[str]] = {
            name: list(m.get("returns", [])) for name, m in data["methods"].items()
        }

    @classmethod
    def load(cls, path: Path | str) -> BotApiSpec:
        with open(path, encoding="utf-8") as fh:
            return cls(json.load(fh))

    # -- public checks ---------------------------------------------------------------------
    def validate_call(
        self,
        method: str,
        params: Mapping[str, object],
        files: Mapping[str, object] | None = None,
    ) -> list[str]:
        """Violations of one call (empty = valid).

        ``params`` are the JSON-level values (PTB's ``RequestData.parameters`` after a JSON
        round trip); ``files`` are the multipart parts by name. A direct upload arrives only as
        a part named like the parameter; an ``attach://name`` string must name a part.
        """
        rule = self.methods.get(method)
        if rule is None:
            return [f"unknown method {method!r}{_did_you_mean(method, self.methods)}"]
        checker = _Checker(self, files)
        merged = dict(params)
        for part in files or {}:
            if part not in merged and part in rule.fields:
                merged[part] = _UPLOAD
        checker.owner(rule, merged, method)
        return checker.violations

    def validate_value(
        self, types: Sequence[str] | str, value: object, path: str = "value"
    ) -> list[str]:
        """Violations of one value against a type expression such as ``"Array of BotCommand"``."""
        checker = _Checker(self, None)
        checker.union((types,) if isinstance(types, str) else tuple(types), value, path)
        return checker.violations

    def sample(self, type_expr: str, _depth: int = 0) -> Any:
        """A minimal valid instance: required fields only, zero values, first subtype."""
        if type_expr.startswith(_ARRAY):
            return []
        zero = {"Integer": 0, "Float": 0.0, "Boolean": False, "String": "", "InputFile": ""}
        if type_expr in zero:
            return zero[type_expr]
        rule = self.types[type_expr]
        if rule.subtypes:
            return self.sample(rule.subtypes[0], _depth)
        if _depth > 6:
            return {}
        return {f.name: self._sample_field(f, _depth) for f in rule.fields.values() if f.required}

    def _sample_field(self, field: FieldRule, depth: int) -> Any:
        if field.const is not None:
            return field.const
        if field.choices:
            return min(field.choices)
        if field.types[0] == "String" and field.min_len:
            return "x" * field.min_len
        return self.sample(field.types[0], depth + 1)


# -- spec parsing ----------------------------------------------------------------------------
def _owner(entry: Mapping[str, Any], *, is_type: bool) -> OwnerRule:
    raw_fields = entry.get("fields", [])
    names = {f["name"] for f in raw_fields}
    fields = {f["name"]: _field(f, names) for f in raw_fields}
    exclusive = None
    for sentence in entry.get("description", []):
        if m := _EXCLUSIVE.search(sentence):
            ignored = frozenset(re.split(r",\s*(?:and\s+)?|\s+and\s+", m.group(2)))
            exclusive = (m.group(1).lower(), ignored)
        elif "exactly one of the optional fields" in sentence.lower():
            exclusive = ("exactly", frozenset(n for n, f in fields.items() if f.required))
        elif "at most one of the optional fields" in sentence.lower():  # Update, PollMedia
            exclusive = ("at most", frozenset(n for n, f in fields.items() if f.required))
    return OwnerRule(
        name=entry["name"],
        fields=fields,
        subtypes=tuple(entry.get("subtypes", ())) if is_type else (),
        exclusive=exclusive,
    )


def _field(raw: Mapping[str, Any], siblings: set[str]) -> FieldRule:
    name, desc, types = raw["name"], raw.get("description", ""), tuple(raw["types"])
    scalar_string = types == ("String",)
    rule: dict[str, Any] = {}
    if scalar_string and (m := _LENGTH.search(desc)):
        rule.update(min_len=int(m[1]), max_len=int(m[2]), in_bytes=m[3].lower() == "bytes")
    if scalar_string and ("entities parsing" in desc or f"{name}_parse_mode" in siblings):
        own = f"{name}_parse_mode"
        rule["formatted_by"] = (
            own if own in siblings else "parse_mode" if "parse_mode" in siblings else None
        )
    if scalar_string and (m := _CONST.search(desc)):
        rule["const"] = m[1]
    if scalar_string and (m := _ONE_OF.search(desc) or _LEADING_ONE_OF.search(desc)):
        choices = frozenset(_QUOTED.findall(m["list"]))
        if len(choices) > 1:  # a single quoted word is an example or a default, not a list
            rule["choices"] = choices
    if scalar_string and name == "action" and "Type of action to broadcast" in desc:
        # sendChatAction lists its actions in prose: "typing for text messages, ... or ..."
        listed = desc.split(":", 1)[1]
        rule["choices"] = frozenset(re.findall(r"([a-z_]+) (?=for |or )", listed))
    for phrase, pattern in _PATTERNS.items():
        if scalar_string and phrase in desc:
            rule["pattern"] = re.compile(pattern)
    if any(t.startswith(_ARRAY) for t in types) and (m := _COUNT.search(desc)):
        lo = m["min"] or m["lo"]
        hi = m["max"] or m["hi"] or m["upto"] or m["most"]
        rule.update(min_items=int(lo) if lo else None, max_items=int(hi))
    if m := _REQUIRED_UNLESS.search(desc):
        alternatives = frozenset(re.split(r",\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+", m[1]))
        if alternatives <= siblings:
            rule["required_unless"] = alternatives
    elif (m := _REQUIRED_IF.search(desc)) and m[1] in siblings:
        wanted = {"specified": _SPECIFIED, "True": True, "False": False}[m[2]]
        rule["required_if"] = (m[1], wanted)
    return FieldRule(
        name=name,
        types=types,
        required=bool(raw.get("required")),
        description=desc,
        file_ok="InputFile" in types or "attach://" in desc,
        **rule,
    )


def _conditionally_required(field: FieldRule, values: Mapping[str, object]) -> str | None:
    """Why an absent optional field is needed after all, if it is."""
    if field.required_unless and not any(v in values for v in field.required_unless):
        names = " and ".join(sorted(field.required_unless))
        verb = "is" if len(field.required_unless) == 1 else "are"
        return f"{names} {verb} not specified"
    if field.required_if is not None:
        sibling, wanted = field.required_if
        if wanted is _SPECIFIED and sibling in values:
            return f"{sibling} is specified"
        if wanted is not _SPECIFIED and sibling in values and values[sibling] is wanted:
            return f"{sibling} is {wanted}"
    return None


def _did_you_mean(name: str, known: Mapping[str, object]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(value: object) -> str:
    if value is _UPLOAD:
        return "an uploaded file"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


class _Upload:
    """Marker for a parameter that arrived only as a multipart file part."""

    def __repr__(self) -> str:
        return "<upload>"


_UPLOAD = _Upload()


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_file_content(value: object) -> bool:
    return (
        value is _UPLOAD
        or isinstance(value, bytes | bytearray | memoryview)
        or hasattr(value, "read")
    )


# -- checking --------------------------------------------------------------------------------
class _Checker:
    def __init__(self, spec: BotApiSpec, files: Mapping[str, object] | None) -> None:
        self.spec = spec
        self.files = files
        self.violations: list[str] = []

    def report(self, path: str, message: str) -> None:
        self.violations.append(f"{path}: {message}")

    def owner(self, rule: OwnerRule, values: Mapping[str, object], path: str) -> None:
        kind = "parameter" if path == rule.name and rule.name in self.spec.methods else "field"
        for key in values:
            if key not in rule.fields:
                self.report(path, f"unknown {kind} {key!r}{_did_you_mean(key, rule.fields)}")
        unmet: dict[str, str] = {}  # absent, but required by "Required if …"
        for field in rule.fields.values():
            if field.name not in values:
                if field.required:
                    self.report(path, f"missing required {kind} {field.name!r}")
                elif reason := _conditionally_required(field, values):
                    unmet[field.name] = reason
                continue
            self.field(field, values[field.name], values, f"{path}.{field.name}")
        self.alternatives(rule, unmet, kind, path)
        if rule.exclusive is not None:
            mode, ignored = rule.exclusive
            used = sorted(k for k in values if k in rule.fields and k not in ignored)
            if len(used) > 1 or (mode == "exactly" and not used):
                wanted = "exactly one" if mode == "exactly" else "at most one"
                self.report(path, f"{rule.name} needs {wanted} of its optional kinds, got {used}")

    def alternatives(self, rule: OwnerRule, unmet: dict[str, str], kind: str, path: str) -> None:
        """Report "Required if X is not specified" fields; when none of the alternatives was
        given at all (editMessageText with neither chat_id/message_id nor inline_message_id),
        one violation naming the choices instead of one per field."""
        unless = {name: rule.fields[name].required_unless for name in unmet}
        if unless and all(alt and alt <= unless.keys() for alt in unless.values()):
            options: dict[frozenset[str], list[str]] = {}
            for name, alternatives in unless.items():
                options.setdefault(alternatives, []).append(name)
            choices = ", or ".join(" and ".join(names) for names in options.values())
            self.report(path, f"missing {kind}s: needs {choices}")
            return
        for name, reason in unmet.items():
            self.report(path, f"missing {kind} {name!r} (required if {reason})")

    def field(
        self, rule: FieldRule, value: object, siblings: Mapping[str, object], path: str
    ) -> None:
        if value is _UPLOAD or (_is_file_content(value) and rule.file_ok):
            if "InputFile" not in rule.types:
                self.report(path, f"can't be uploaded as a file (types: {' or '.join(rule.types)})")
            return
        before = len(self.violations)
        self.union(rule.types, value, path)
        if len(self.violations) > before:
            return
        if isinstance(value, str):
            self.string(rule, value, siblings, path)
        elif isinstance(value, list) and rule.max_items is not None:
            if not (rule.min_items or 0) <= len(value) <= rule.max_items:
                self.report(
                    path, f"has {len(value)} items, allowed {rule.min_items or 0}-{rule.max_items}"
                )

    def string(
        self, rule: FieldRule, value: str, siblings: Mapping[str, object], path: str
    ) -> None:
        if rule.const is not None and value != rule.const:
            self.report(path, f"must be {rule.const!r}, got {value!r}")
        if rule.choices and value not in rule.choices:
            self.report(path, f"must be one of {sorted(rule.choices)}, got {value!r}")
        if rule.pattern is not None and not rule.pattern.fullmatch(value):
            hint = next(p for p, r in _PATTERNS.items() if r == rule.pattern.pattern)
            self.report(path, f"{value!r} is not allowed here ({hint})")
        if rule.name.endswith("parse_mode") and value.lower() not in PARSE_MODES:
            self.report(path, f"unsupported parse mode {value!r}")
        if rule.file_ok and value.startswith("attach://") and self.files is not None:
            if value.removeprefix("attach://") not in self.files:
                self.report(path, f"{value!r} names no uploaded file part")
        visible = value
        mode = siblings.get(rule.formatted_by) if rule.formatted_by else None
        if isinstance(mode, str) and mode.lower() == "html":
            parsed = parse_html(value)
            self.violations.extend(f"{path}: {v}" for v in parsed.violations)
            visible = parsed.text
        if rule.max_len is None:
            return
        low, high = rule.min_len or 0, rule.max_len
        if rule.in_bytes:
            size, unit = len(value.encode("utf-8", "surrogatepass")), "bytes (UTF-8)"
        else:
            size = utf16_len(visible)
            unit = (
                "characters (UTF-16, after entity parsing)" if rule.formatted_by else "characters"
            )
        # Telegram trims surrounding whitespace, so "   " or "<b> </b>" is an empty text.
        if low and not (value if rule.in_bytes else visible).strip():
            self.report(path, f"must not be empty ({low}-{high} {unit})")
        elif not low <= size <= high:
            self.report(path, f"is {size} {unit} long, allowed {low}-{high}")

    def union(self, types: tuple[str, ...], value: object, path: str) -> None:
        if len(types) > 1 and all(t.startswith(_ARRAY) for t in types) and isinstance(value, list):
            self.album(types, value, path)
            return
        attempts: list[tuple[str, list[str]]] = []
        for type_expr in types:
            sub = _Checker(self.spec, self.files)
            sub.value(type_expr, value, path)
            if not sub.violations:
                return
            attempts.append((type_expr, sub.violations))
        shaped = [(t, v) for t, v in attempts if _shape_matches(self.spec, t, value)]
        if not shaped:
            self.report(path, f"expected {' or '.join(types)}, got {_describe(value)}")
            return
        tags = {
            t: self.spec.types[t].fields["type"].const
            for t, _ in shaped
            if _has_type_tag(self.spec, t)
        }
        if len(tags) == len(shaped) > 1 and isinstance(value, Mapping):
            matching = [(t, v) for t, v in shaped if tags[t] == value.get("type")]
            if not matching:
                allowed = sorted(str(tag) for tag in tags.values())
                self.report(path, f"type must be one of {allowed}, got {value.get('type')!r}")
                return
            shaped = matching
        # Report against the closest alternative (e.g. InlineKeyboardMarkup for reply_markup).
        self.violations.extend(min(shaped, key=lambda tv: len(tv[1]))[1])

    def album(self, types: tuple[str, ...], items: list[object], path: str) -> None:
        """sendMediaGroup.media: the spec lists "Array of InputMediaPhoto or Array of …", but
        photos, live photos and videos may be mixed; "Documents and audio files can be only
        grouped in an album with messages of the same type"."""
        inner = tuple(t.removeprefix(_ARRAY) for t in types)
        for index, item in enumerate(items):
            self.union(inner, item, f"{path}[{index}]")
        kinds = {item.get("type") for item in items if isinstance(item, Mapping)}
        for solitary in ("audio", "document"):
            if solitary in kinds and len(kinds) > 1:
                self.report(path, f"{solitary} can't be mixed with {sorted(kinds - {solitary})}")

    def value(self, type_expr: str, value: object, path: str) -> None:
        if type_expr.startswith(_ARRAY):
            if not isinstance(value, list | tuple):
                self.report(path, f"expected {type_expr}, got {_describe(value)}")
                return
            inner = type_expr.removeprefix(_ARRAY)
            for index, item in enumerate(value):
                self.union((inner,), item, f"{path}[{index}]")
            return
        ok = {
            "Integer": _is_int,
            "Float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "Boolean": lambda v: isinstance(v, bool),
            "String": lambda v: isinstance(v, str),
            "InputFile": lambda v: (
                _is_file_content(v) or (isinstance(v, str) and v.startswith("attach://"))
            ),
        }.get(type_expr)
        if ok is not None:
            if not ok(value):
                self.report(path, f"expected {type_expr}, got {_describe(value)}")
            return
        self.obj(type_expr, value, path)

    def obj(self, type_name: str, value: object, path: str) -> None:
        rule = self.spec.types.get(type_name)
        if rule is None:
            self.report(path, f"the spec has no type {type_name!r}")
            return
        if type_name == "KeyboardButton" and isinstance(value, str):
            return  # "For simple text buttons, String can be used instead of this object"
        if not isinstance(value, Mapping):
            self.report(path, f"expected {type_name} object, got {_describe(value)}")
            return
        if rule.subtypes:
            self.polymorphic(rule, value, path)
            return
        self.owner(rule, value, path)

    def polymorphic(self, rule: OwnerRule, value: Mapping[str, object], path: str) -> None:
        """Pick the subtype by its discriminator (type/status/source); else by structure."""
        subtypes = [self.spec.types[s] for s in rule.subtypes]
        for key in ("type", "status", "source"):
            if all(key in s.fields and s.fields[key].const for s in subtypes):
                tag = value.get(key)
                candidates = [s for s in subtypes if s.fields[key].const == tag]
                if not candidates:
                    allowed = sorted({s.fields[key].const or "" for s in subtypes})
                    self.report(path, f"{rule.name}.{key} must be one of {allowed}, got {tag!r}")
                    return
                break
        else:
            candidates = subtypes
        results = []
        for candidate in candidates:
            sub = _Checker(self.spec, self.files)
            sub.owner(candidate, value, path)
            if not sub.violations:
                return
            results.append(sub.violations)
        if len(candidates) > 1 and len(candidates) == len(subtypes):
            self.report(path, f"matches no {rule.name} subtype ({', '.join(rule.subtypes)})")
        self.violations.extend(min(results, key=len))


def _shape_matches(spec: BotApiSpec, type_expr: str, value: object) -> bool:
    if type_expr.startswith(_ARRAY):
        return isinstance(value, list | tuple)
    if type_expr in ("Integer", "Float", "Boolean", "String", "InputFile"):
        return False  # a primitive mismatch is reported as "expected X or Y"
    return isinstance(value, Mapping) or (type_expr == "KeyboardButton" and isinstance(value, str))


def _has_type_tag(spec: BotApiSpec, type_expr: str) -> bool:
    rule = spec.types.get(type_expr)
    return rule is not None and "type" in rule.fields and rule.fields["type"].const is not None
