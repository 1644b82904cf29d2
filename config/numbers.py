"""Whole numbers from people: the one place that reads them from text and checks them in services.

``str.isdigit()`` and ``\\d`` accept ``²``, ``١٢`` and ``𝟏𝟐``, and ``int()`` then either raises
or reads a number nobody typed; here only ASCII 0-9 count. ``bool`` is an ``int`` in Python
(``True == 1``), so services that take a count refuse it explicitly.
"""

from __future__ import annotations

import re

ASCII_INTEGER = re.compile(r"-?[0-9]+")
MAX_DIGITS = 40  # beyond any id or count we keep; longer text is refused before int() reads it
ASCII_DIGITS_HELP = "Use the digits 0-9."


def parse_int(text: object, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
    """The integer ``text`` spells in ASCII digits (an optional leading ``-``), within bounds; else None.

    Surrounding spaces are ignored; anything else (``²``, ``１２``, ``1e3``, ``+1``, ``1_000``) is None.
    """
    if not isinstance(text, str):
        return None
    cleaned = text.strip()
    if len(cleaned) > MAX_DIGITS or not ASCII_INTEGER.fullmatch(cleaned):
        return None
    value = int(cleaned)
    if minimum is not None and value < minimum:
        return None
    if maximum is not None and value > maximum:
        return None
    return value


def is_int(value: object, *, minimum: int | None = None, maximum: int | None = None) -> bool:
    """True when ``value`` is an ``int`` (not a ``bool``) within bounds; for services' argument checks."""
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    if minimum is not None and value < minimum:
        return False
    return maximum is None or value <= maximum


def has_non_ascii_digit(text: str) -> bool:
    """True when ``text`` holds a digit other than 0-9 (``²``, ``١``, ``𝟏``, ``１``), to say why it was refused."""
    return any(c.isdigit() or c.isdecimal() or c.isnumeric() for c in text if not "0" <= c <= "9")
