"""Showing a telephone number to someone who should recognise it but not be able to call it.

Workers see a resident's number masked on a ticket card, and a contact sees their own earlier
number on a "same as before" button. One rule for every length, so that no number, however
short or oddly written, comes back whole:

* Only the digits count; spaces, dashes, brackets and full-width digits are looked through.
* A mainland mobile number is shown without its country code, however it was written
  (+86 138 1234 5678, 008613812345678 and 13812345678 all become 138****5678), so one number
  always looks the same. Any other number written with a leading "+" keeps the "+", so the
  first digits shown are still read as a country code.
* A number of 11 digits or more shows its first 3 and its last 4, the mainland convention
  (138****5678): the first 3 are the network prefix, which says which carrier, not who, and
  the hidden middle is what identifies the subscriber.
* A shorter number shows only its last digits, never more than a third of them (a 10-digit
  number shows 3, a 6-digit one 2, a 3-digit one 1), so it can never be guessed by trying.
* Every hidden digit is one "*".
"""

from __future__ import annotations

import unicodedata

from bot.services import credit_code

LONG = 11   # a number this long shows its first HEAD and last TAIL digits
HEAD = 3
TAIL = 4


def mask_phone(phone: str | None) -> str | None:
    """The number masked by the rule above, or None when it has no digits at all."""
    if not phone:
        return None
    written = unicodedata.normalize("NFKC", phone).strip()
    national = credit_code.mobile(written)
    if national is not None:
        digits, sign = national, ""
    else:
        digits = "".join(ch for ch in written if ch.isdigit())
        sign = "+" if written.startswith("+") else ""
    if not digits:
        return None
    long = len(digits) >= LONG
    head = HEAD if long else 0
    tail = TAIL if long else len(digits) // 3
    hidden = len(digits) - head - tail
    return sign + digits[:head] + "*" * hidden + digits[len(digits) - tail:]
