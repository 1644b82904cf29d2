"""Tiny readers for settings that come from the environment.

Each raises ImproperlyConfigured naming the variable when its value is malformed, so a
bad deployment stops at start-up with a line that says what to fix.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from config.numbers import parse_int

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envstr(name: str, default: str = "") -> str:
    """The variable's value, or ``default`` when it is unset."""
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    """A boolean: 1/true/yes/on or 0/false/no/off (any case)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}")


def envint(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer, optionally bounded."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = parse_int(raw)
    if value is None:
        raise ImproperlyConfigured(f"{name} must be an integer in digits 0-9, not {raw!r}")
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, not {value}")
    return value


def envfloat(name: str, default: float, *, minimum: float | None = None) -> float:
    """A number, optionally bounded below."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def envlist(name: str, default: list[str]) -> list[str]:
    """A comma-separated list; blanks are dropped."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def envintlist(name: str) -> list[int] | None:
    """A comma-separated list of integers, or None when unset (e.g. SHARD_IDS)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    values = [parse_int(item) for item in raw.split(",") if item.strip()]
    if any(value is None for value in values):
        raise ImproperlyConfigured(f"{name} must be a comma-separated list of integers, not {raw!r}")
    return [value for value in values if value is not None]
