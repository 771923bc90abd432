"""GB 11643-1999 resident identity numbers (/work/shared/domain/china-rules.md §6)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yilian.mpi.resident_id import (
    ResidentIdBirthDateError,
    ResidentIdCheckDigitError,
    ResidentIdError,
    ResidentIdFormatError,
    ResidentIdLengthError,
    ResidentIdRegionError,
    check_digit,
    has_valid_check_digit,
    parse_resident_id,
    upgrade_legacy,
)

TODAY = dt.date(2025, 1, 1)


def test_worked_example_female_1949() -> None:
    rid = parse_resident_id("11010519491231002X", today=TODAY)
    assert rid.region_code == "110105"
    assert rid.birth_date == dt.date(1949, 12, 31)
    assert rid.sequence == "002"
    assert rid.sex == "female"


def test_worked_example_male_1880() -> None:
    # china-rules.md §6: S = 195, Y = 8 -> "4"; born 1880, which a 1900 lower bound would reject.
    rid = parse_resident_id("440524188001010014", today=TODAY)
    assert rid.birth_date == dt.date(1880, 1, 1)
    assert rid.sex == "male"
    assert check_digit("44052418800101001") == "4"


def test_third_example_and_lower_case_x_is_normalised() -> None:
    rid = parse_resident_id("11010219840406970x", today=TODAY)
    assert rid.value == "11010219840406970X"


@pytest.mark.parametrize(
    ("value", "error", "rule"),
    [
        ("11010519491231002", ResidentIdLengthError, "gb11643-length"),
        ("11010519491231002XX", ResidentIdLengthError, "gb11643-length"),
        ("1101051949123100AX", ResidentIdFormatError, "gb11643-format"),
        ("11010519491231002Y", ResidentIdFormatError, "gb11643-format"),
        (
            "１１０１０５１９４９１２３１００２Ｘ",
            ResidentIdFormatError,
            "gb11643-format",
        ),  # full-width
        ("010105194912310020", ResidentIdRegionError, "gb11643-region"),
        ("910105194912310020", ResidentIdRegionError, "gb11643-region"),
        ("110105194902300020", ResidentIdBirthDateError, "gb11643-birth-date"),  # 30 February
        ("110105203001010020", ResidentIdBirthDateError, "gb11643-birth-date"),  # future
        ("110105179912310020", ResidentIdBirthDateError, "gb11643-birth-date"),  # before 1800
        ("110105194912310021", ResidentIdCheckDigitError, "gb11643-check-digit"),
    ],
)
def test_each_rule_is_named(value: str, error: type[ResidentIdError], rule: str) -> None:
    with pytest.raises(error) as caught:
        parse_resident_id(value, today=TODAY)
    assert caught.value.rule == rule
    assert "GB 11643-1999" in str(caught.value)


def test_check_digit_message_says_what_to_expect() -> None:
    with pytest.raises(ResidentIdCheckDigitError, match="should be 'X'"):
        parse_resident_id("110105194912310021", today=TODAY)


def test_check_digit_needs_17_digits() -> None:
    with pytest.raises(ResidentIdFormatError):
        check_digit("1234")


def test_legacy_15_digit_upgrade() -> None:
    # china-rules.md §6 and identity-and-analytics.md give these two conversions.
    assert upgrade_legacy("110105491231002") == "11010519491231002X"
    assert upgrade_legacy("310104500101123") == "310104195001011235"
    with pytest.raises(ResidentIdFormatError):
        upgrade_legacy("31010450010112")


seventeen_digits = st.text(alphabet="0123456789", min_size=17, max_size=17)


@given(seventeen_digits)
def test_any_17_digits_with_their_check_digit_pass_the_check(first17: str) -> None:
    assert has_valid_check_digit(first17 + check_digit(first17))


@given(
    region=st.integers(100000, 899999),
    birth=st.dates(dt.date(1800, 1, 1), TODAY),
    sequence=st.integers(0, 999),
)
def test_well_formed_numbers_parse_back(region: int, birth: dt.date, sequence: int) -> None:
    first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
    rid = parse_resident_id(first17 + check_digit(first17), today=TODAY)
    assert (rid.region_code, rid.birth_date) == (str(region), birth)
    assert rid.sex == ("male" if sequence % 2 else "female")


@given(seventeen_digits, st.integers(0, 16), st.integers(1, 9))
def test_every_single_digit_substitution_is_detected(first17: str, pos: int, delta: int) -> None:
    # Weights 2^(17-i) mod 11 are non-zero mod the prime 11: any change of one digit moves the sum.
    value = first17 + check_digit(first17)
    digit = (int(value[pos]) + delta) % 10
    changed = value[:pos] + str(digit) + value[pos + 1 :]
    assert not has_valid_check_digit(changed)


@given(seventeen_digits, st.sampled_from("0123456789X"))
def test_every_changed_check_character_is_detected(first17: str, check: str) -> None:
    if check != check_digit(first17):
        assert not has_valid_check_digit(first17 + check)


@given(seventeen_digits, st.integers(0, 16), st.sampled_from([1, 2]))
def test_transpositions_at_distance_one_or_two_are_detected(
    first17: str, pos: int, distance: int
) -> None:
    # Adjacent weights (and weights two apart) differ mod 11, so swapping two different
    # characters changes the sum (identity-and-analytics.md: 100% detected in simulation).
    value = first17 + check_digit(first17)
    other = pos + distance
    if other > 17 or value[pos] == value[other]:
        return
    chars = list(value)
    chars[pos], chars[other] = chars[other], chars[pos]
    assert not has_valid_check_digit("".join(chars))
