"""Bulk jobs' services: creation and its refusals, claims by lease, exactly-once steps, cancel and finish."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import GUILD, OTHER_GUILD
from tests.timers.shortcuts import ACTOR, MEMBER, OTHER_MEMBER, OTHER_ROLE, ROLE, THIRD_MEMBER, set_timer
from timers.errors import InvalidDuration, RoleNotAllowed
from timers.models import AllowedRole, BulkJob, BulkKind, BulkState, TimedRole, TimerEvent, TimerEventKind, TimerState
from timers.services.bulk import (
    BulkJobError,
    BulkJobNotFound,
    BulkLeaseLost,
    bulk_job_cancel,
    bulk_job_claim,
    bulk_job_create,
    bulk_job_finish,
    bulk_job_progress_message,
    bulk_job_release,
    bulk_job_step,
    bulk_jobs_claimable,
)

pytestmark = pytest.mark.django_db
DAY = 86400


def add_job(**kwargs) -> BulkJob:
    args = {"guild_id": GUILD, "kind": BulkKind.ADD, "role_id": ROLE, "seconds": 30 * DAY, "actor_id": ACTOR} | kwargs
    return bulk_job_create(**args)


def test_it_creates_a_bulk_add_for_the_holders_of_the_role_itself_by_default():
    job = add_job()
    assert (job.state, job.holders_of_role_id, job.seconds, job.cursor) == (BulkState.PENDING, ROLE, 30 * DAY, 0)
    assert add_job(guild_id=OTHER_GUILD, holders_of_role_id=OTHER_ROLE).holders_of_role_id == OTHER_ROLE


@pytest.mark.parametrize("seconds", [None, 0, 30, 400 * DAY, True])
def test_it_refuses_a_bulk_add_without_a_valid_duration(seconds):
    with pytest.raises((InvalidDuration, BulkJobError)):
        add_job(seconds=seconds)
    assert not BulkJob.objects.exists()


def test_it_refuses_a_role_off_the_allowed_list_and_a_second_job_in_the_server():
    AllowedRole.objects.create(guild_id=GUILD, role_id=OTHER_ROLE)
    with pytest.raises(RoleNotAllowed):
        add_job()
    first = add_job(role_id=OTHER_ROLE)
    with pytest.raises(BulkJobError, match=f"#{first.pk}.*bulk-cancel"):
        bulk_job_create(guild_id=GUILD, kind=BulkKind.CLEAR, role_id=ROLE, actor_id=ACTOR)
    assert BulkJob.objects.count() == 1


def test_it_hands_a_job_to_one_claimant_until_its_lease_runs_out():
    job = add_job()
    assert bulk_job_claim(owner="a", job_id=job.pk).lease_owner == "a"
    assert bulk_job_claim(owner="b", job_id=job.pk) is None
    assert bulk_jobs_claimable() == []
    later = timezone.now() + timedelta(minutes=5)
    assert bulk_jobs_claimable(now=later) == [job.pk]
    assert bulk_job_claim(owner="b", job_id=job.pk, now=later).lease_owner == "b"
    with pytest.raises(BulkLeaseLost):  # the first worker woke up: it must stop, not write
        bulk_job_step(job_id=job.pk, owner="a", member_id=MEMBER, outcome="apply")


def test_it_sets_each_members_timer_once_with_the_cursor_and_names_the_job():
    job = add_job()
    bulk_job_claim(owner="w", job_id=job.pk)
    bulk_job_step(job_id=job.pk, owner="w", member_id=MEMBER, outcome="apply")
    again = bulk_job_step(job_id=job.pk, owner="w", member_id=MEMBER, outcome="apply")  # a restarted worker's repeat
    assert (again.cursor, again.done_count) == (MEMBER, 1)
    timer = TimedRole.objects.get(member_id=MEMBER, role_id=ROLE)
    assert timer.state == TimerState.ACTIVE and timer.issued_by_id == ACTOR
    events = list(TimerEvent.objects.filter(timer=timer).values_list("kind", "detail"))
    assert events == [(TimerEventKind.SET, f"bulk job {job.pk}")]


def test_it_skips_members_who_already_have_a_live_timer_and_keeps_it():
    set_timer(timedelta(hours=2), member=OTHER_MEMBER, now=timezone.now())
    before = TimedRole.objects.get(member_id=OTHER_MEMBER).expires_at
    job = add_job()
    bulk_job_claim(owner="w", job_id=job.pk)
    after = bulk_job_step(job_id=job.pk, owner="w", member_id=OTHER_MEMBER, outcome="apply")
    assert (after.done_count, after.skipped_count) == (0, 1)
    assert TimedRole.objects.get(member_id=OTHER_MEMBER).expires_at == before


def test_it_clears_live_timers_and_counts_ended_ones_as_skipped():
    for member in (MEMBER, OTHER_MEMBER):
        set_timer(timedelta(hours=2), member=member, now=timezone.now())
    job = bulk_job_create(guild_id=GUILD, kind=BulkKind.CLEAR, role_id=ROLE, actor_id=ACTOR)
    bulk_job_claim(owner="w", job_id=job.pk)
    bulk_job_step(job_id=job.pk, owner="w", member_id=MEMBER, outcome="apply")
    bulk_job_step(job_id=job.pk, owner="w", member_id=OTHER_MEMBER, outcome="fail", detail="500")
    done = bulk_job_step(job_id=job.pk, owner="w", member_id=THIRD_MEMBER, outcome="apply")
    assert (done.done_count, done.failed_count, done.skipped_count) == (1, 1, 1)
    assert TimedRole.objects.get(member_id=MEMBER).state == TimerState.CLEARED
    assert TimedRole.objects.get(member_id=OTHER_MEMBER).state == TimerState.ACTIVE
    finished = bulk_job_finish(job_id=job.pk, owner="w", state=BulkState.DONE)
    assert (finished.state, finished.total, finished.lease_owner) == (BulkState.DONE, 3, "")


def test_it_cancels_a_waiting_job_at_once_and_a_running_one_at_its_next_member():
    waiting = add_job()
    assert bulk_job_cancel(guild_id=GUILD, actor_id=ACTOR).state == BulkState.CANCELLED
    with pytest.raises(BulkJobNotFound):
        bulk_job_cancel(guild_id=GUILD)
    running = add_job()
    assert running.pk != waiting.pk
    bulk_job_claim(owner="w", job_id=running.pk)
    asked = bulk_job_cancel(guild_id=GUILD, job_id=running.pk, actor_id=ACTOR)
    assert (asked.state, asked.cancel_requested) == (BulkState.RUNNING, True)
    step = bulk_job_step(job_id=running.pk, owner="w", member_id=MEMBER, outcome="skip")
    assert step.cancel_requested
    assert bulk_job_finish(job_id=running.pk, owner="w", state=BulkState.CANCELLED).state == BulkState.CANCELLED


def test_it_lets_another_worker_go_on_after_a_release():
    job = add_job()
    bulk_job_claim(owner="a", job_id=job.pk)
    assert bulk_job_release(job_id=job.pk, owner="a")
    assert bulk_job_claim(owner="b", job_id=job.pk).lease_owner == "b"


def test_a_job_cancelled_before_any_worker_took_it_has_its_progress_message_updated(django_capture_on_commit_callbacks):
    job = add_job()
    bulk_job_progress_message(job_id=job.pk, channel_id=11, message_id=22)
    with django_capture_on_commit_callbacks() as queued:
        bulk_job_cancel(guild_id=GUILD, actor_id=ACTOR)
    assert len(queued) == 1  # bots.bulk.bulk_job_show: no worker will edit it otherwise
    running = add_job()
    bulk_job_progress_message(job_id=running.pk, channel_id=11, message_id=23)
    bulk_job_claim(owner="w", job_id=running.pk)
    with django_capture_on_commit_callbacks() as queued:
        bulk_job_cancel(guild_id=GUILD, actor_id=ACTOR)
    assert queued == []  # its worker says so itself
