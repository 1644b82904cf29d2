"""The engine's baton: one sweep run holds it at a time, hands it to one successor, and a dead
holder's hold runs out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from timers.selectors import sweep_baton_holder
from timers.services.relay import sweep_baton_drop, sweep_baton_pass, sweep_baton_renew, sweep_baton_take

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
HOLD = timedelta(seconds=10)


def take(holder: str, *, token: str = "", at: float = 0) -> bool:
    return sweep_baton_take(name="timers", holder=holder, hold=HOLD, token=token, now=NOW + timedelta(seconds=at))


def test_it_lets_one_run_hold_the_baton():
    assert sweep_baton_holder(name="timers") is None
    assert take("run-1")
    assert not take("watchdog", at=5)  # a run started by the schedule meanwhile ends at once
    assert sweep_baton_renew(name="timers", holder="run-1", hold=HOLD, now=NOW + timedelta(seconds=8))
    assert not take("watchdog", at=15)  # renewed at 8 s: held until 18 s
    assert take("watchdog", at=18.5)  # run-1 died: its hold ran out
    assert not sweep_baton_renew(name="timers", holder="run-1", hold=HOLD, now=NOW + timedelta(seconds=19))
    assert sweep_baton_holder(name="timers") == "watchdog"


def test_it_hands_the_baton_to_the_run_with_the_token_only():
    assert take("run-1")
    assert sweep_baton_pass(name="timers", holder="run-1", token="next:abc", hold=timedelta(seconds=60), now=NOW)

    assert not take("watchdog", at=1)
    assert not take("run-x", token="next:other", at=1)
    assert take("run-2", token="next:abc", at=1)
    assert not take("run-3", token="next:abc", at=2)  # a token is good once
    assert not sweep_baton_pass(name="timers", holder="run-1", token="next:def", hold=HOLD, now=NOW)  # no longer run-1's


def test_it_frees_a_baton_whose_successor_could_not_be_queued():
    assert take("run-1")
    assert sweep_baton_pass(name="timers", holder="run-1", token="next:abc", hold=timedelta(seconds=60), now=NOW)
    assert sweep_baton_drop(name="timers", holder="next:abc")
    assert take("watchdog", at=1)
