"""The unified social credit code (GB 32100-2015) and mainland mobile numbers: what passes,
and for what fails, the specific problem the message names."""

from __future__ import annotations

import pytest

from bot.services import credit_code
from bot.services.credit_code import ALPHABET, CodeProblem, check, check_character, mobile

# Published codes of real enterprises (their licences are public): Baidu in Beijing, Tencent in
# Shenzhen.
BAIDU = "91110108551385082Q"
TENCENT = "91440300708461136T"


def valid(first17: str) -> str:
    return first17 + check_character(first17)


def test_the_alphabet_and_weights_are_the_standards() -> None:
    assert len(ALPHABET) == 31 and not set("IOZSV") & set(ALPHABET)
    assert credit_code.WEIGHTS == tuple(3 ** i % 31 for i in range(17))


@pytest.mark.parametrize("code", [BAIDU, TENCENT, valid("91310115MA1K4T2K0"),
                                  valid("12100000400000135"), valid("51320000500006784"),
                                  valid("92440300MA5FXXXX1")])
def test_real_looking_codes_pass(code: str) -> None:
    result = check(code)
    assert result.ok and result.code == code


def test_a_check_value_of_31_is_0() -> None:
    # Find a body whose weighted sum is a multiple of 31: its check character is "0".
    body = next(f"9131011{n:010d}" for n in range(1000)
                if sum(ALPHABET.index(c) * w for c, w in
                       zip(f"9131011{n:010d}", credit_code.WEIGHTS, strict=True)) % 31 == 0)
    assert check_character(body) == "0"
    assert check(body + "0").ok


@pytest.mark.parametrize("typed", [" 9111 0108 5513 8508 2q ",
                                   "９１１１０１０８５５１３８５０８２Ｑ",
                                   "91110108-551385082-Q", "91110108551385082q\n"])
def test_input_is_normalised(typed: str) -> None:
    result = check(typed)
    assert result.ok and result.code == BAIDU


@pytest.mark.parametrize(("typed", "length"), [(BAIDU[:-1], 17), (BAIDU + "1", 19),
                                               ("9111", 4)])
def test_a_wrong_length_says_how_long_it_is(typed: str, length: int) -> None:
    result = check(typed)
    assert result.problem is CodeProblem.LENGTH and result.length == length


def test_nothing_typed_is_empty() -> None:
    assert check("  ").problem is CodeProblem.EMPTY
    assert check(None).problem is CodeProblem.EMPTY


@pytest.mark.parametrize(("letter", "meant"), [("I", "1"), ("O", "0"), ("Z", "2"), ("S", "5"),
                                                ("V", "U")])
def test_a_letter_codes_never_use_is_named_with_its_position(letter: str, meant: str) -> None:
    typed = BAIDU[:10] + letter + BAIDU[11:]
    result = check(typed)
    assert result.problem is CodeProblem.CHARACTER
    assert (result.position, result.character, result.suggestion) == (11, letter, meant)


def test_punctuation_is_a_character_not_allowed() -> None:
    result = check(BAIDU[:4] + "*" + BAIDU[5:])
    assert (result.problem, result.position, result.character) == (CodeProblem.CHARACTER, 5,
                                                                   "*")
    assert result.suggestion is None


def test_the_area_code_must_be_digits() -> None:
    result = check(valid("9111A108551385082"))
    assert (result.problem, result.position, result.character) == (CodeProblem.DIVISION, 5, "A")


def test_a_wrong_check_character_says_which_was_expected() -> None:
    result = check(BAIDU[:-1] + "R")
    assert result.problem is CodeProblem.CHECK
    assert (result.position, result.character, result.expected) == (18, "R", "Q")
    # One mistyped digit anywhere is caught by the check character.
    typo = BAIDU[:12] + ("4" if BAIDU[12] != "4" else "3") + BAIDU[13:]
    assert check(typo).problem is CodeProblem.CHECK


def test_masked_shows_only_both_ends() -> None:
    assert credit_code.masked(BAIDU) == "911101********082Q"


@pytest.mark.parametrize(("typed", "number"), [
    ("13812345678", "13812345678"),
    ("138 1234 5678", "13812345678"),
    ("138-1234-5678", "13812345678"),
    ("+86 138 1234 5678", "13812345678"),
    ("+8613812345678", "13812345678"),
    ("8613812345678", "13812345678"),
    ("0086 199 0000 1111", "19900001111"),
    ("１３８１２３４５６７８", "13812345678"),
    ("(+86) 166-0000-1234", "16600001234"),
])
def test_mainland_mobile_numbers_are_normalised(typed: str, number: str) -> None:
    assert mobile(typed) == number


@pytest.mark.parametrize("typed", ["", "12812345678", "1381234567", "138123456789",
                                   "021 6123 4567", "+852 6123 4567", "+1 415 555 0100",
                                   "1381234567a", "86 12812345678", None])
def test_other_numbers_are_not_mobile_numbers(typed: str | None) -> None:
    assert mobile(typed) is None
