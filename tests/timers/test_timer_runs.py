"""A change that gives a timer a new run starts it clean, and no run may hold more than 10 years."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import GUILD
from tests.timers.shortcuts import (
    ACTOR,
    NOW,
    ROLE,
    add_time,
    event_kinds,
    hours,
    minutes,
    pause,
    remove_time,
    resume,
    set_timer,
    stored,
)
from timers.errors import InvalidDuration
from timers.models import ExpiryOutcome, TimedRole, TimerState
from timers.selectors import timers_due_expiry
from timers.services import timer_auto_resume, timer_pause_all, timer_resume_all
from timers.services.sweeps import sweep_claim_expiries, sweep_record_expiries

pytestmark = pytest.mark.django_db


def failing_timer(failures: int = 5) -> TimedRole:
    """A one-hour timer whose role removal failed ``failures`` times after it ran out."""
    timer = set_timer(hours(1)).timer
    at = NOW + hours(1)
    for _ in range(failures):
        TimedRole.objects.filter(pk=timer.pk).update(lease_until=None)  # skip the back-off wait
        (claimed,) = sweep_claim_expiries(owner="worker", now=at)
        sweep_record_expiries(outcomes=[(claimed.pk, ExpiryOutcome.FAILED_RETRY, "503 0: down")], owner="worker", now=at)
        at += minutes(1)
    row = stored(timer)
    assert (row.state, row.attempts, row.outcome) == (TimerState.ACTIVE, failures, ExpiryOutcome.FAILED_RETRY)
    assert row.lease_until is not None  # backing off: no worker may claim it until then
    return row


def _set(at):
    set_timer(hours(2), now=at)


def _add(at):
    add_time(hours(2), now=at)


def _remove_to_now(at):
    # Time added back, then all of it removed again: a new run that is due at once.
    add_time(hours(2), now=at)
    remove_time(hours(5), now=at)


def _pause_then_resume(at):
    add_time(hours(2), now=at)
    pause(now=at)
    resume(now=at + minutes(1))


def _pause_all_then_resume_all(at):
    add_time(hours(2), now=at)
    timer_pause_all(guild_id=GUILD, role_id=ROLE, actor_id=ACTOR, now=at)
    assert timer_resume_all(guild_id=GUILD, role_id=ROLE, actor_id=ACTOR, now=at + minutes(1)) == 1


def _auto_resume(at):
    add_time(hours(2), now=at)
    pause(now=at, duration=minutes(10))
    assert timer_auto_resume(now=at + minutes(11)) == 1


@pytest.mark.parametrize(
    "new_run",
    [_set, _add, _remove_to_now, _pause_then_resume, _pause_all_then_resume_all, _auto_resume],
    ids=["set", "add", "remove-to-now", "resume", "resume-all", "auto-resume"],
)
def test_it_starts_a_new_run_clean_after_failed_removals(new_run):
    timer = failing_timer()
    at = NOW + hours(1) + minutes(6)

    new_run(at)

    row = stored(timer)
    assert row.state == TimerState.ACTIVE
    assert (row.lease_until, row.lease_owner, row.warn_lease_until, row.warn_lease_owner) == (None, "", None, "")
    assert (row.attempts, row.outcome, row.outcome_detail) == (0, "", "")
    # At its new expiry it is claimed at once, and one failure is one attempt of six, not the last.
    (claimed,) = sweep_claim_expiries(owner="next", now=row.expires_at)
    sweep_record_expiries(outcomes=[(claimed.pk, ExpiryOutcome.FAILED_RETRY, "503 0: down")], owner="next", now=row.expires_at)
    after = stored(timer)
    assert (after.state, after.attempts, after.outcome) == (TimerState.ACTIVE, 1, ExpiryOutcome.FAILED_RETRY)


def test_it_caps_a_timer_at_ten_years_and_changes_nothing():
    timer = set_timer(timedelta(days=365)).timer
    for _ in range(9):
        add_time(timedelta(days=365))  # up to the cap is fine
    assert stored(timer).expires_at == NOW + timedelta(days=3650)

    with pytest.raises(InvalidDuration, match="at most 10 years"):
        add_time(timedelta(minutes=1))

    assert stored(timer).expires_at == NOW + timedelta(days=3650)
    assert event_kinds(timer).count("add") == 9


def test_it_caps_a_paused_timer_at_ten_years_too():
    set_timer(timedelta(days=365))
    timer = pause().timer
    for _ in range(9):
        add_time(timedelta(days=365))

    with pytest.raises(InvalidDuration, match="at most 10 years"):
        add_time(timedelta(days=2))

    assert stored(timer).paused_remaining == timedelta(days=3650)
    assert timers_due_expiry(now=NOW + timedelta(days=4000)).count() == 0  # paused: never due
