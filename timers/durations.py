"""Durations as members type them: ``90``, ``90m``, ``24h``, ``1d``, ``2w``, ``1d 12h 30m``."""

from __future__ import annotations

import re
from datetime import timedelta

from config.numbers import has_non_ascii_digit
from timers.errors import InvalidDuration

MIN_DURATION = timedelta(minutes=1)
MAX_DURATION = timedelta(days=365)
_UNIT_MINUTES = {
    "m": 1,
    "min": 1,
    "mins": 1,
    "minute": 1,
    "minutes": 1,
    "h": 60,
    "hr": 60,
    "hrs": 60,
    "hour": 60,
    "hours": 60,
    "d": 1440,
    "day": 1440,
    "days": 1440,
    "w": 10080,
    "wk": 10080,
    "week": 10080,
    "weeks": 10080,
}
# ASCII digits only: ``\d`` would also read ``١٢`` and ``𝟏𝟐`` as 12.
_TOKEN = re.compile(r"([0-9]+)\s*([a-z]*)\s*,?\s*")
MAX_TEXT = 100  # `1d 12h 30m` is 10; anything this long is not a duration someone typed
_HELP = "Write a duration like `90` (minutes), `90m`, `24h`, `1d`, `2w` or `1d 12h 30m`."


def parse_duration(text: str) -> timedelta:
    """The duration ``text`` names, from 1 minute to 365 days, or InvalidDuration."""
    if not isinstance(text, str):
        raise InvalidDuration(_HELP)
    cleaned = text.strip().lower()
    if not cleaned:
        raise InvalidDuration(_HELP)
    if len(cleaned) > MAX_TEXT:
        raise InvalidDuration(f"That is too long for a duration. {_HELP}")
    if has_non_ascii_digit(cleaned):
        raise InvalidDuration(f"Write a duration with the digits 0-9. {_HELP}")
    minutes = 0
    position = 0
    tokens = 0
    bare = False
    while position < len(cleaned):
        match = _TOKEN.match(cleaned, position)
        if match is None:
            raise InvalidDuration(f"I can't read `{text.strip()[:40]}` as a duration. {_HELP}")
        amount, unit = int(match.group(1)), match.group(2)
        if unit and unit not in _UNIT_MINUTES:
            raise InvalidDuration(f"`{unit[:20]}` is not a unit I know. {_HELP}")
        bare = bare or not unit
        minutes += amount * _UNIT_MINUTES.get(unit, 1)
        tokens += 1
        position = match.end()
    if bare and tokens > 1:
        raise InvalidDuration(f"Give every part a unit, like `1d 12h 30m`. {_HELP}")
    if minutes < MIN_DURATION.total_seconds() // 60:
        raise InvalidDuration("A duration must be at least 1 minute.")
    if minutes > MAX_DURATION.total_seconds() // 60:
        raise InvalidDuration("A duration can be at most 365 days.")
    return timedelta(minutes=minutes)


def format_duration(value: timedelta) -> str:
    """A short human form: ``1d 12h 30m``; under a minute shows seconds."""
    seconds = max(0, int(value.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    return " ".join(p for p in parts if p)
