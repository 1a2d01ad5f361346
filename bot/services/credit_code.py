"""Checking what people type for an enterprise: the unified social credit code (统一社会信用代码,
GB 32100-2015) and a mainland China mobile number.

People copy these from business licences, spreadsheets and chat apps, so the input is
normalised first (full-width characters, spaces, dashes, lower case), and a code that is still
wrong gets one specific problem — the length, which character at which position, or the check
character that was expected — because "invalid code" alone sends them hunting through 18
characters.

The code, position by position (1-based):
  1      registration authority (登记管理部门代码), e.g. 9 = market regulation, 5 = civil affairs
  2      type of organisation (机构类别代码), e.g. 1 = enterprise
  3–8    administrative division (登记管理机关行政区划码), six digits
  9–17   organisation code (主体标识码)
  18     check character, computed from the first 17 (weights 3^i mod 31)
Characters come from 0-9 and the capital letters without I, O, Z, S and V (31 in all), which
are left out because they are easily mistaken for 1, 0, 2, 5 and U.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass

CODE_LENGTH = 18
# The standard's order: the value of a character is its index in 0-9 A-H J-N P-R T-U W-Y.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
DIVISION = range(2, 8)  # 0-based positions of the administrative division code
# What people type instead of a letter the standard leaves out.
LOOKALIKES = {"I": "1", "O": "0", "Z": "2", "S": "5", "V": "U"}


class CodeProblem(enum.StrEnum):
    EMPTY = "empty"
    LENGTH = "length"            # `length` characters instead of 18
    CHARACTER = "character"      # `character` at `position` is not used in codes
    DIVISION = "division"        # `character` at `position` (3–8) is not a digit
    CHECK = "check"              # the 18th character should be `expected`


@dataclass(frozen=True)
class CodeCheck:
    """The normalised code and, when it is not valid, what is wrong with it."""

    code: str
    problem: CodeProblem | None = None
    position: int | None = None     # 1-based
    character: str | None = None
    expected: str | None = None     # the check character the first 17 call for
    suggestion: str | None = None   # for a left-out letter: what was probably meant

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def length(self) -> int:
        return len(self.code)


def normalise(text: str | None) -> str:
    """Full-width → half-width (NFKC), upper case, without spaces and dashes."""
    folded = unicodedata.normalize("NFKC", text or "").upper()
    return re.sub(r"[\s\-‐‑‒–—_]+", "", folded)


def check_character(first17: str) -> str:
    """The 18th character for these 17 (each must be in ALPHABET)."""
    total = sum(ALPHABET.index(ch) * weight for ch, weight in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def check(text: str | None) -> CodeCheck:
    """Normalise `text` and say what, if anything, is wrong with it as a credit code."""
    code = normalise(text)
    if not code:
        return CodeCheck(code, CodeProblem.EMPTY)
    if len(code) != CODE_LENGTH:
        return CodeCheck(code, CodeProblem.LENGTH)
    for index, ch in enumerate(code):
        if ch not in ALPHABET:
            return CodeCheck(code, CodeProblem.CHARACTER, position=index + 1, character=ch,
                             suggestion=LOOKALIKES.get(ch))
    for index in DIVISION:
        if not code[index].isdigit():
            return CodeCheck(code, CodeProblem.DIVISION, position=index + 1,
                             character=code[index])
    expected = check_character(code[:-1])
    if code[-1] != expected:
        return CodeCheck(code, CodeProblem.CHECK, position=CODE_LENGTH, character=code[-1],
                         expected=expected)
    return CodeCheck(code)


def masked(code: str) -> str:
    """A code for lists: enough to tell one's enterprises apart, not the whole code."""
    if len(code) != CODE_LENGTH:
        return code
    return code[:6] + "*" * 8 + code[-4:]


# -- mobile numbers -------------------------------------------------------------------------------

_MOBILE = re.compile(r"1[3-9]\d{9}")
_PHONE_JUNK = re.compile(r"[\s\-()（）.]+")


def mobile(text: str | None) -> str | None:
    """A mainland China mobile number as 11 digits, or None if `text` is not one.

    Accepts spaces, dashes, brackets, full-width digits and a +86 / 0086 / 86 prefix (a
    number shared with Telegram's contact button arrives as "+8613812345678" or without +).
    """
    digits = _PHONE_JUNK.sub("", unicodedata.normalize("NFKC", text or ""))
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix):]
            break
    return digits if _MOBILE.fullmatch(digits) else None
