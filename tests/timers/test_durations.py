"""parse_duration and format_duration: what members type, and what they read back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.errors import ApplicationError
from timers.durations import MAX_DURATION, MIN_DURATION, format_duration, parse_duration
from timers.errors import InvalidDuration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", timedelta(minutes=90)),
        ("90m", timedelta(minutes=90)),
        ("24h", timedelta(hours=24)),
        ("1d", timedelta(days=1)),
        ("2w", timedelta(weeks=2)),
        ("1d 12h 30m", timedelta(days=1, hours=12, minutes=30)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("  2H  ", timedelta(hours=2)),
        ("1 day 2 hours", timedelta(days=1, hours=2)),
        ("1d, 6h", timedelta(days=1, hours=6)),
        ("1", timedelta(minutes=1)),
        ("365d", timedelta(days=365)),
        ("52w", timedelta(weeks=52)),
    ],
)
def test_it_parses(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["0", "0m", "0d 0h", "366d", "53w", "525601", "8761h"])
def test_it_refuses_durations_out_of_bounds(text):
    with pytest.raises(InvalidDuration) as info:
        parse_duration(text)
    message = str(info.value)
    assert "1 minute" in message or "365 days" in message


def test_it_accepts_both_bounds_exactly():
    assert parse_duration("525600") == MAX_DURATION
    assert parse_duration("1m") == MIN_DURATION


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("abc", "can't read"),
        ("5x", "`x` is not a unit"),
        ("1d 30", "Give every part a unit"),
        ("", "Write a duration like"),
        ("   ", "Write a duration like"),
        ("-5m", "can't read"),
        ("1.5h", "can't read"),
        ("9" * 40, "at most 365 days"),
        ("1" * 10 + "m", "at most 365 days"),
        ("9" * 5000, "too long for a duration"),  # past Python's int() digit limit
        ("1" + " " * 200 + "m", "too long for a duration"),
    ],
)
def test_it_refuses_garbage_with_a_helpful_message(text, hint):
    with pytest.raises(InvalidDuration) as info:
        parse_duration(text)
    assert hint in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0000000001d", timedelta(days=1)),
        ("0" * 60 + "90", timedelta(minutes=90)),
        ("00001d 0000012h", timedelta(days=1, hours=12)),
        ("0000000365d", timedelta(days=365)),
    ],
)
def test_it_counts_the_value_not_the_digits(text, expected):
    assert parse_duration(text) == expected


def test_it_still_refuses_a_long_value_past_the_limit_by_its_value():
    with pytest.raises(InvalidDuration, match="at most 365 days"):
        parse_duration("0000000366d")


@pytest.mark.parametrize("text", ["١٢", "١٢m", "𝟏𝟐h", "１２ｈ", "１２", "1²h", "²", "12h ٣m", "৩d"])
def test_it_refuses_digits_other_than_ascii_saying_to_use_0_to_9(text):
    with pytest.raises(InvalidDuration) as info:
        parse_duration(text)
    assert "digits 0-9" in str(info.value)


def test_it_refuses_non_strings():
    with pytest.raises(InvalidDuration):
        parse_duration(90)  # type: ignore[arg-type]


def test_it_keeps_echoed_input_short():
    with pytest.raises(InvalidDuration) as info:
        parse_duration("?" * 500)
    assert len(str(info.value)) < 200


def test_it_is_an_application_error():
    assert issubclass(InvalidDuration, ApplicationError)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(days=1, hours=12, minutes=30), "1d 12h 30m"),
        (timedelta(minutes=90), "1h 30m"),
        (timedelta(days=2), "2d"),
        (timedelta(hours=5), "5h"),
        (timedelta(minutes=1), "1m"),
        (timedelta(seconds=59), "59s"),
        (timedelta(seconds=0), "0s"),
        (timedelta(seconds=-30), "0s"),
        (timedelta(minutes=61, seconds=59), "1h 1m"),
    ],
)
def test_it_formats(value, expected):
    assert format_duration(value) == expected


@pytest.mark.parametrize("text", ["90", "1d 12h 30m", "2w", "365d", "1m"])
def test_it_round_trips_through_format(text):
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


_duration_like = st.lists(
    st.one_of(
        st.text(alphabet="0123456789", min_size=1, max_size=12),
        st.sampled_from(["m", "h", "d", "w", "min", "hours", "days", "weeks", "x", "", ","]),
        st.text(alphabet=" \t,", min_size=0, max_size=3),
    ),
    max_size=8,
).map("".join)


def _returns_bounded_or_refuses(text: str) -> None:
    try:
        result = parse_duration(text)
    except ApplicationError:
        return
    assert isinstance(result, timedelta)
    assert MIN_DURATION <= result <= MAX_DURATION


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_it_never_crashes_on_arbitrary_text(text):
    _returns_bounded_or_refuses(text)


@settings(max_examples=500, deadline=None)
@given(_duration_like)
def test_it_never_crashes_on_duration_like_text(text):
    _returns_bounded_or_refuses(text)
