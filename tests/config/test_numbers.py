"""config.numbers: the one reader of whole numbers typed by people, and the int check of services."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.numbers import has_non_ascii_digit, is_int, parse_int


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12", 12), (" 7 ", 7), ("0", 0), ("-3", -3), ("007", 7), ("9" * 40, int("9" * 40))],
)
def test_it_reads_ascii_digits(text, expected):
    assert parse_int(text) == expected


@pytest.mark.parametrize(
    "text", ["²", "١٢", "𝟏𝟐", "１２", "1e3", "+1", "1_000", "1.0", "", " ", "--1", "9" * 41, "0x10", None, 12, True]
)
def test_it_refuses_anything_else(text):
    assert parse_int(text) is None


def test_it_applies_bounds():
    assert parse_int("5", minimum=1, maximum=5) == 5
    assert parse_int("0", minimum=1) is None
    assert parse_int("6", maximum=5) is None


@given(st.text(max_size=50))
def test_it_never_raises_and_only_reads_what_int_reads_the_same(text):
    value = parse_int(text)
    if value is not None:
        assert value == int(text.strip()) and text.strip().lstrip("-").isascii()


@pytest.mark.parametrize(("value", "expected"), [(1, True), (0, True), (True, False), (False, False), (1.0, False), ("1", False)])
def test_is_int_refuses_booleans(value, expected):
    assert is_int(value) is expected


def test_is_int_applies_bounds():
    assert is_int(5, minimum=1, maximum=5) and not is_int(0, minimum=1) and not is_int(6, maximum=5)


@pytest.mark.parametrize(("text", "expected"), [("12h", False), ("١٢", True), ("²", True), ("１", True), ("abc", False)])
def test_it_tells_non_ascii_digits(text, expected):
    assert has_non_ascii_digit(text) is expected
