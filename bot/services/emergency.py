"""Whether a resident's words signal danger (fire, violence, a medical emergency).

A word of a Latin script counts only as a whole word: "fire" is not in "fired", "gun" not in
"begun". Chinese has no spaces between words, so its entries are phrases specific enough to
mean danger, and the configured harmless phrases take back the ones that do not ("火灾隐患" is
a hazard to report, not a fire; "打人工客服" calls the help line, nobody is hit). A word counts
unless a harmless phrase overlaps it: that also covers "一起火锅店" (起火 across two words).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import regex

# What may not touch a whole word on either side: letters and digits of the scripts written
# with spaces. CJK characters may (中文fire很大 is still a fire).
_WORD_CHAR = r"[\p{Latin}\p{Greek}\p{Cyrillic}\p{N}_]"


def _pattern(phrase: str) -> str:
    body = regex.escape(phrase.casefold())
    if regex.match(_WORD_CHAR, phrase[0]):
        body = rf"(?<!{_WORD_CHAR}){body}"
    if regex.match(_WORD_CHAR, phrase[-1]):
        body = rf"{body}(?!{_WORD_CHAR})"
    return body


@functools.lru_cache(maxsize=8)
def _compiled(phrases: tuple[str, ...]) -> regex.Pattern[str] | None:
    usable = [p.strip() for p in phrases if p.strip()]
    if not usable:
        return None
    # Longest first, so that "gas leak" is found as one phrase where "gas" also is one.
    usable.sort(key=len, reverse=True)
    return regex.compile("|".join(_pattern(p) for p in usable))


def _spans(phrases: tuple[str, ...], text: str) -> list[tuple[int, int]]:
    pattern = _compiled(phrases)
    if pattern is None:
        return []
    return [m.span() for m in pattern.finditer(text, overlapped=True)]


def signals_danger(words: Sequence[str], harmless: Sequence[str], text: str) -> bool:
    """Whether `text` has one of `words` that no `harmless` phrase overlaps."""
    folded = text.casefold()
    found = _spans(tuple(words), folded)
    if not found:
        return False
    taken_back = _spans(tuple(harmless), folded)
    return any(not any(start < end2 and start2 < end for start2, end2 in taken_back)
               for start, end in found)
