"""Text people wrote (names, descriptions, addresses, reasons), made safe to put beside the
bot's own words in an HTML message.

Escaping keeps it from becoming markup; that is not enough. Unicode direction controls in a
name ("Bob\\u202e & Lee": a right-to-left override) reorder everything after them on the line,
so the masked phone on a card reads backwards and a status looks like something else. They
are removed, and text in a right-to-left script (Arabic, Hebrew) is wrapped in a first-strong
isolate, so that it is shown right to left inside and cannot pull the digits and words
around it into its direction.
"""

from __future__ import annotations

import html
import unicodedata

# Embeddings, overrides and isolates (and their ends): what can reach beyond the text itself.
DIRECTION_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_FIRST_STRONG_ISOLATE, _POP_ISOLATE = "\u2068", "\u2069"


def without_direction_controls(text: str) -> str:
    return "".join(ch for ch in text if ch not in DIRECTION_CONTROLS)


def user_html(text: str | None) -> str:
    """`text`, written by a person, as HTML that keeps to its own place on the line."""
    cleaned = without_direction_controls(text or "")
    escaped = html.escape(cleaned)
    if any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in cleaned):
        return f"{_FIRST_STRONG_ISOLATE}{escaped}{_POP_ISOLATE}"
    return escaped


def utf16_len(text: str) -> int:
    """The length Telegram counts (its limits are in UTF-16 code units)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2
