"""Telegram's HTML parse mode: what the Bot API accepts and what the user ends up seeing.

Modelled on the "Formatting options" section of the Bot API docs (10.0) and on TDLib's
``parse_html``/``are_entities_valid``. Stricter than Telegram in two places, on purpose:
a stray ``&`` or ``>`` is reported (Telegram keeps it literally, the docs say to escape it) and
nesting that Telegram silently "fixes" by dropping formatting is reported as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SPLITTABLE = {
    "b": "bold", "strong": "bold",
    "i": "italic", "em": "italic",
    "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "tg-spoiler": "spoiler", "span": "spoiler",
}  # fmt: skip
_CONTINUOUS = {"a", "tg-emoji", "tg-time"}
_PRE = {"code", "pre"}
_ALLOWED_TAGS = {*_SPLITTABLE, *_CONTINUOUS, *_PRE, "blockquote"}
_ALLOWED_ATTRS: dict[str, set[str]] = {
    "span": {"class"},
    "a": {"href"},
    "tg-emoji": {"emoji-id"},
    "tg-time": {"unix", "format"},
    "code": {"class"},
    "blockquote": {"expandable"},
}
# "Date-time entity formatting": r, or any of w / d|D / t|T in this order.
_TIME_FORMAT = re.compile(r"r|w?[dD]?[tT]?")
_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,8})|#x([0-9a-fA-F]{1,8}));")
_DIGITS = re.compile(r"[0-9]+")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SPACE = " \t\n\r\f\v"


def _decode_entity(text: str, pos: int) -> tuple[str, int, str | None]:
    """The character an ``&…;`` at ``pos`` stands for, the position after it, any problem."""
    match = _ENTITY.match(text, pos)
    if match is None:
        return "&", pos + 1, 'stray "&" not forming &lt; &gt; &amp; &quot; or &#NNN; (write &amp;)'
    named, dec, hexa = match.groups()
    if named:
        return _NAMED[named], match.end(), None
    code = int(dec) if dec else int(hexa, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return "", match.end(), f"invalid character reference {match.group()}"
    return chr(code), match.end(), None


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass
class ParsedHtml:
    text: str  # what the user sees, entities decoded
    entities: list[dict[str, object]] = field(default_factory=list)  # Bot API MessageEntity
    violations: list[str] = field(default_factory=list)


@dataclass
class _Open:
    name: str
    byte_offset: int
    entity: dict[str, object] | None


def html_violations(text: str) -> list[str]:
    return parse_html(text).violations


def html_visible_text(text: str) -> str:
    return parse_html(text).text


def parse_html(text: str) -> ParsedHtml:
    return _Parser(text).run()


class _Parser:
    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0
        self.out: list[str] = []
        self.utf16 = 0
        self.stack: list[_Open] = []
        # Tags a mis-nested end tag closed early: their own end tag, when it comes, is not
        # reported a second time ("<b><i>x</b></i>" is one mistake, not two).
        self.closed_early: list[str] = []
        self.result = ParsedHtml(text="")

    def run(self) -> ParsedHtml:
        src = self.src
        while self.pos < len(src):
            char = src[self.pos]
            if char == "<":
                self._tag()
            elif char == "&":
                self._append(self._entity())
            elif char == ">":
                self._violation('stray ">" (write &gt;)')
                self._append(">")
                self.pos += 1
            else:
                self._append(char)
                self.pos += 1
        for still_open in reversed(self.stack):
            if still_open.name in _ALLOWED_TAGS:
                self._violation(f"unclosed tag <{still_open.name}>", still_open.byte_offset)
            if still_open.entity in self.result.entities:
                self.result.entities.remove(still_open.entity)
        self.result.text = "".join(self.out)
        return self.result

    # -- helpers -------------------------------------------------------------------------
    def _byte_offset(self, pos: int | None = None) -> int:
        upto = self.src[: self.pos if pos is None else pos]
        return len(upto.encode("utf-8", "surrogatepass"))

    def _violation(self, message: str, byte_offset: int | None = None) -> None:
        offset = self._byte_offset() if byte_offset is None else byte_offset
        self.result.violations.append(f"HTML: {message} at byte offset {offset}")

    def _append(self, chunk: str) -> None:
        self.out.append(chunk)
        self.utf16 += utf16_len(chunk)

    def _entity(self) -> str:
        offset = self._byte_offset()  # where the "&" is, before reading past it
        char, self.pos, problem = _decode_entity(self.src, self.pos)
        if problem:
            self._violation(problem, offset)
        return char

    def _read_until(self, stops: str) -> str:
        start = self.pos
        while self.pos < len(self.src) and self.src[self.pos] not in stops:
            self.pos += 1
        return self.src[start : self.pos]

    def _skip_space(self) -> None:
        while self.pos < len(self.src) and self.src[self.pos] in _SPACE:
            self.pos += 1

    # -- tags ----------------------------------------------------------------------------
    def _tag(self) -> None:
        start, offset = self.pos, self._byte_offset()
        self.pos += 1
        if self.src.startswith("/", self.pos):
            self.pos += 1
            self._end_tag(start, offset)
            return
        name = self._read_until(_SPACE + ">/").lower()
        if not name or not re.fullmatch(r"[a-z][a-z0-9-]*", name):
            # "a < b", "<3", "<…": Telegram answers "Unsupported start tag" for all of them.
            self._violation('stray "<" (write &lt;)', offset)
            self.pos = start + 1
            self._append("<")
            return
        attrs = self._attributes(name, offset)
        if attrs is None:
            return
        self._open(name, attrs, offset)

    def _attributes(self, tag: str, offset: int) -> dict[str, str] | None:
        attrs: dict[str, str] = {}
        while True:
            self._skip_space()
            if self.pos >= len(self.src):
                self._violation(f"unclosed start tag <{tag}", offset)
                return None
            if self.src[self.pos] == ">":
                self.pos += 1
                return attrs
            attr = self._read_until(_SPACE + "=>").lower()
            if not attr:
                self._violation(f"empty attribute name in <{tag}>", offset)
                attr = "="
            self._skip_space()
            value = ""
            if self.src.startswith("=", self.pos):
                self.pos += 1
                self._skip_space()
                value = self._attribute_value(tag, offset)
                if value is None:
                    return None
            attrs.setdefault(attr, value)

    def _attribute_value(self, tag: str, offset: int) -> str | None:
        quote = self.src[self.pos : self.pos + 1]
        if quote in ("'", '"'):
            end = self.src.find(quote, self.pos + 1)
            if end < 0:
                self._violation(f"unclosed start tag <{tag}", offset)
                self.pos = len(self.src)
                return None
            raw, self.pos = self.src[self.pos + 1 : end], end + 1
        else:
            raw = self._read_until(_SPACE + ">")
        return self._decode_attribute(raw, tag, offset)

    def _decode_attribute(self, raw: str, tag: str, offset: int) -> str:
        decoded, i = [], 0
        while i < len(raw):
            if raw[i] == "&":
                char, i, problem = _decode_entity(raw, i)
                if problem:
                    self._violation(f"in an attribute of <{tag}>: {problem}", offset)
                decoded.append(char)
            else:
                decoded.append(raw[i])
                i += 1
        return "".join(decoded)

    def _open(self, name: str, attrs: dict[str, str], offset: int) -> None:
        entity = self._check_start_tag(name, attrs, offset)
        if entity is not None:
            entity["offset"] = self.utf16
            self.result.entities.append(entity)
        self.stack.append(_Open(name, offset, entity))

    def _end_tag(self, start: int, offset: int) -> None:
        name = self._read_until(_SPACE + ">").lower()
        self._skip_space()
        if not self.src.startswith(">", self.pos):
            self._violation(f"unclosed end tag </{name}>", offset)
            self.pos = start + 1
            self._append("<")
            return
        self.pos += 1
        open_names = [item.name for item in self.stack]
        if name and name not in open_names and name in self.closed_early:
            self.closed_early.remove(name)  # already reported with the end tag that closed it
            return
        if not self.stack:
            self._violation(f"unexpected end tag </{name}>", offset)
            return
        top = self.stack[-1]
        # TDLib accepts "</>" as "close whatever is open".
        if name and name != top.name:
            self._violation(f'mis-nested tags: expected "</{top.name}>", found "</{name}>"', offset)
            # Close what the author most likely meant: up to the named tag, or, when nothing
            # of that name is open ("<b>x</i>"), the innermost tag.
            while name in open_names and self.stack[-1].name != name:
                early = self.stack.pop()
                self.closed_early.append(early.name)
                self._close(early)
            if name not in open_names:
                self.closed_early.append(top.name)
        self._close(self.stack.pop())

    def _close(self, item: _Open) -> None:
        if item.entity is None:
            return
        length = self.utf16 - int(item.entity["offset"])  # type: ignore[call-overload]
        if length == 0:
            self.result.entities.remove(item.entity)  # Telegram drops empty entities
        else:
            item.entity["length"] = length

    # -- rules ---------------------------------------------------------------------------
    def _check_start_tag(
        self, name: str, attrs: dict[str, str], offset: int
    ) -> dict[str, object] | None:
        if name not in _ALLOWED_TAGS:
            self._violation(f"unsupported tag <{name}> (escape a literal < as &lt;)", offset)
            return None
        for attr in attrs:
            if attr not in _ALLOWED_ATTRS.get(name, set()):
                self._violation(f'attribute "{attr}" is not allowed on <{name}>', offset)
        self._check_nesting(name, attrs, offset)
        if name in _SPLITTABLE:
            if name == "span" and attrs.get("class") != "tg-spoiler":
                self._violation('<span> must have class="tg-spoiler"', offset)
            return {"type": _SPLITTABLE[name]}
        return getattr(self, f"_entity_{name.replace('-', '_')}")(attrs, offset)

    def _check_nesting(self, name: str, attrs: dict[str, str], offset: int) -> None:
        names = [item.name for item in self.stack]
        parent = names[-1] if names else None
        in_pre_code = any(n in _PRE for n in names)
        if in_pre_code and not (name == "code" and parent == "pre" and names.count("pre") == 1):
            inner = next(n for n in reversed(names) if n in _PRE)
            self._violation(
                f"<{name}> inside <{inner}>: pre and code can't contain entities", offset
            )
        elif in_pre_code:
            pass  # <pre><code class="language-…">: one pre entity with a language
        elif name in _PRE and any(n != "blockquote" for n in names):
            # The docs: formatting "can contain ... any other entities, except pre and code";
            # Telegram silently strips the outer formatting from the code part.
            outer = next(n for n in reversed(names) if n != "blockquote")
            self._violation(
                f"<{name}> inside <{outer}>: pre/code can only be nested in <blockquote>", offset
            )
        if (name in _CONTINUOUS or name == "blockquote") and any(n in _CONTINUOUS for n in names):
            outer = next(n for n in reversed(names) if n in _CONTINUOUS)
            self._violation(f"<{name}> inside <{outer}>: links/emoji/time can't nest", offset)
        if name == "blockquote" and "blockquote" in names:
            self._violation("blockquotes can't be nested", offset)

    def _entity_a(self, attrs: dict[str, str], offset: int) -> dict[str, object]:
        href = attrs.get("href", "").strip()
        if not href:
            self._violation('<a> needs a non-empty href="…"', offset)
        return {"type": "text_link", "url": href}

    def _entity_tg_emoji(self, attrs: dict[str, str], offset: int) -> dict[str, object]:
        emoji_id = attrs.get("emoji-id", "")
        if not _DIGITS.fullmatch(emoji_id):
            self._violation('<tg-emoji> needs a numeric emoji-id="…"', offset)
        return {"type": "custom_emoji", "custom_emoji_id": emoji_id}

    def _entity_tg_time(self, attrs: dict[str, str], offset: int) -> dict[str, object]:
        unix, fmt = attrs.get("unix", ""), attrs.get("format")
        if not _DIGITS.fullmatch(unix):
            self._violation('<tg-time> needs a numeric unix="…"', offset)
            unix = "0"
        if fmt is not None and not _TIME_FORMAT.fullmatch(fmt):
            self._violation(f'<tg-time> format "{fmt}" does not match r|w?[dD]?[tT]?', offset)
        entity: dict[str, object] = {"type": "date_time", "unix_time": int(unix)}
        if fmt:
            entity["date_time_format"] = fmt
        return entity

    def _entity_code(self, attrs: dict[str, str], offset: int) -> dict[str, object] | None:
        css = attrs.get("class")
        parent = self.stack[-1] if self.stack else None
        if parent is not None and parent.name == "pre":
            if css is not None:
                if not css.startswith("language-") or css == "language-":
                    self._violation(
                        f'<code> inside <pre> takes class="language-…", not "{css}"', offset
                    )
                elif parent.entity is not None:
                    parent.entity["language"] = css.removeprefix("language-")
            return None  # <pre><code> is one pre entity
        if css is not None:
            self._violation("a programming language can't be set on a standalone <code>", offset)
        return {"type": "code"}

    def _entity_pre(self, attrs: dict[str, str], offset: int) -> dict[str, object]:
        return {"type": "pre"}

    def _entity_blockquote(self, attrs: dict[str, str], offset: int) -> dict[str, object]:
        return {"type": "expandable_blockquote" if "expandable" in attrs else "blockquote"}
