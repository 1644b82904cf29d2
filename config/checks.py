"""The levels every check reports (database health, /health/ready, status): pass, warn, fail.

Kept below the apps so that ops' database checks and readiness endpoint, and anything
else that grades itself, share one vocabulary and one ordering.
"""

from __future__ import annotations

from collections.abc import Iterable

PASS, WARN, FAIL = "pass", "warn", "fail"
_RANK = {PASS: 0, WARN: 1, FAIL: 2}


def worst(statuses: Iterable[str]) -> str:
    """The most severe of some statuses (pass when there are none)."""
    return max(statuses, key=_RANK.__getitem__, default=PASS)


def level(value: float | None, *, warn: float, fail: float, higher_is_worse: bool = True) -> str:
    """pass/warn/fail for a number against two limits; ``None`` (not measurable) passes."""
    if value is None:
        return PASS
    if higher_is_worse:
        return FAIL if value >= fail else WARN if value >= warn else PASS
    return FAIL if value <= fail else WARN if value <= warn else PASS
