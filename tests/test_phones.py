"""One way to mask a telephone number, for every length and every way of writing it."""

from __future__ import annotations

import pytest

from bot.services.phones import mask_phone

DIGITS = "123456789012345"


@pytest.mark.parametrize("length", range(3, 16))
def test_every_length_hides_most_of_the_number(length: int) -> None:
    number = DIGITS[:length]
    masked = mask_phone(number)
    assert masked is not None and len(masked) == length
    shown = [ch for ch in masked if ch != "*"]
    assert masked != number and "*" in masked
    if length >= 11:
        # the network prefix and the last four: the subscriber's part stays hidden
        assert masked == number[:3] + "*" * (length - 7) + number[-4:]
    else:
        # never more than a third of a short number, always from its end
        assert len(shown) == length // 3 and len(shown) <= 4
        assert masked.endswith(number[length - len(shown):])
        assert masked.startswith("*" * (length - len(shown)))


@pytest.mark.parametrize("written", [
    "13812345678", "+86 138 1234 5678", "+8613812345678", "8613812345678", "008613812345678",
    "138-1234-5678", "(138) 1234 5678", "+86-138-1234-5678", "１３８１２３４５６７８",
])
def test_a_mainland_mobile_looks_the_same_however_it_was_written(written: str) -> None:
    assert mask_phone(written) == "138****5678"


@pytest.mark.parametrize(("written", "masked"), [
    ("123 456", "****56"),             # six digits are never shown whole
    ("12-345", "****5"),
    ("+44 7700 900123", "+447*****0123"),  # another country keeps its "+", so 44 reads as one
    ("+86 10 1234 5678", "+861*****5678"),  # a Beijing landline is not a mobile: code kept
    ("010-1234-5678", "010****5678"),
    ("+1 555 0100", "+******00"),
    ("12", "**"),
])
def test_other_numbers(written: str, masked: str) -> None:
    assert mask_phone(written) == masked


@pytest.mark.parametrize("nothing", [None, "", "   ", "no phone"])
def test_nothing_to_mask(nothing: str | None) -> None:
    assert mask_phone(nothing) is None
