"""The worker SIGKILL drill: `manage.py runworker` killed mid-sweep three times in a row.

A backlog of due expiries and due warnings; each time, the worker whose sweep run holds
the engine's baton is killed with SIGKILL (sentinel and workers at once, as a lost machine
would be) at a different point: in the middle of an expiry batch, in the middle of a
warning batch, and in the middle of expiries again (each time while a 429 holds one request
of the batch up). Four workers share the queue: the next run, on one still alive, starts
once the dead run's baton runs out (relay.HOLD, 10 s) and takes over the dead run's claims
once their leases end (SWEEP_LEASE_SECONDS). In the end every due timer expired exactly once
(one role removal recorded, one expiry event, the notice line never twice) and every
warning was sent at most once: Discord keeps one message per nonce, and the warning
posted by a killed run is posted again under the same nonce. Both engines: on SQLite, the
embedded default, a kill can land inside a write transaction, which SQLite rolls back.
"""

from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from django_q.tasks import async_task

from bots.tasks import SWEEP_TASK
from tests.bots.conftest import BOT, GUILD_ID
from tests.bots.sweeper_fixtures import Cluster, baton_pid, removals, role_path, start_clusters, wait_until
from tests.fake_discord import FakeDiscord, FakeGuild
from timers.models import ExpiryOutcome, SweepBaton, TimedRole, TimerEvent, TimerEventKind, TimerState

EXPIRING = 700  # due now: members FIRST_MEMBER …
WARNED = 300  # a warning due (60 min before an end 30 min away): the next members
FIRST_MEMBER = 310_000_000_000_000_000
LEASE_SECONDS = 3  # a killed run's claims are free after this


@pytest.fixture
def crowd() -> FakeGuild:
    """A guild whose EXPIRING + WARNED members each hold VIP."""
    guild = FakeGuild.with_many_members(guild_id=GUILD_ID, bot_user=BOT, count=EXPIRING + WARNED, first_user_id=FIRST_MEMBER)
    vip = guild.role("VIP").id
    for member_id in range(FIRST_MEMBER, FIRST_MEMBER + EXPIRING + WARNED):
        guild.members[member_id] = [vip]
    return guild


@pytest.fixture
def crowd_fake(crowd):
    with FakeDiscord(guilds=[crowd], bot_user=BOT) as running:
        yield running


@pytest.fixture
def workers(crowd_fake, tmp_path):
    """Four `runworker`s, started side by side: one for each kill, and one to finish."""
    # On the test process's own queue and key, so that the test queues sweep runs itself (no process per run).
    started = start_clusters(
        crowd_fake,
        tmp_path,
        [f"worker-{n}" for n in range(1, 5)],
        queue=settings.Q_CLUSTER["name"],
        command="runworker",
        SECRET_KEY=settings.SECRET_KEY,
        SWEEP_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    yield started
    with ThreadPoolExecutor() as pool:  # side by side; the one left mid-run gets 5 s before SIGKILL
        list(pool.map(lambda worker: worker.stop(timeout=5), started))


def queue_sweep_run() -> None:
    async_task(SWEEP_TASK, 60)


def backlog(guild: FakeGuild) -> None:
    now = timezone.now()
    vip, channel = guild.role("VIP").id, guild.channel("bot-log").id
    due = [
        TimedRole(
            guild_id=GUILD_ID,
            member_id=FIRST_MEMBER + i,
            role_id=vip,
            state=TimerState.ACTIVE,
            expires_at=now - timedelta(minutes=10) + timedelta(milliseconds=i),
            warn_channel_id=channel,
            warnings_sent=[60, 10, 1],
            next_warn_at=None,
        )
        for i in range(EXPIRING)
    ]
    ends, general = now + timedelta(minutes=30), guild.channel("general").id
    warned = [
        TimedRole(
            guild_id=GUILD_ID,
            member_id=FIRST_MEMBER + EXPIRING + i,
            role_id=vip,
            state=TimerState.ACTIVE,
            expires_at=ends + timedelta(milliseconds=i),
            warn_channel_id=general,
            warnings_sent=[],
            next_warn_at=ends + timedelta(milliseconds=i) - timedelta(minutes=60),
        )
        for i in range(WARNED)
    ]
    TimedRole.objects.bulk_create(due + warned, batch_size=1000)


def warning_posts(fake: FakeDiscord) -> Counter:
    """Warning messages on Discord, per member."""
    return Counter(int(m["content"].split("<@", 1)[1].split(">", 1)[0]) for m in fake.messages if m["content"].startswith("⏳"))


def expired_count() -> int:
    return TimedRole.objects.filter(state=TimerState.EXPIRED).count()


def warned_count() -> int:
    return TimerEvent.objects.filter(kind=TimerEventKind.WARN).count()


def held_up(fake: FakeDiscord, method: str, path: str) -> bool:
    """Whether the fake has answered that request with a 429 (its batch can't finish for a while)."""
    return any(r["method"] == method and r["path"] == path and r["status"] == 429 for r in fake.requests)


def sweep_until_killed(fake: FakeDiscord, alive: list[Cluster], mid_sweep, what: str) -> Cluster:
    """Queue a sweep run once the baton is free, wait until ``mid_sweep()``, SIGKILL the worker running it."""
    wait_until(lambda: not SweepBaton.objects.filter(held_until__gte=timezone.now()).exists(), 20, "the baton to be free")
    queue_sweep_run()
    running = lambda: next((w for w in alive if (pid := baton_pid()) is not None and w.owns(pid)), None)  # noqa: E731
    wait_until(running, 20, "a run of the live workers holding the baton", alive)
    doomed = running()
    wait_until(mid_sweep, 30, f"the sweep to be {what}", alive)
    doomed.kill()
    return doomed


@pytest.mark.django_db(transaction=True)
def test_every_due_timer_expires_once_and_every_warning_is_sent_at_most_once_across_three_kills(crowd_fake, crowd, workers):
    fake = crowd_fake
    backlog(crowd)
    vip, general = crowd.role("VIP").id, crowd.channel("general").id
    alive = list(workers)
    # Each kill lands while a batch waits on one request that a 429 holds up for 2 s.
    first = role_path(GUILD_ID, FIRST_MEMBER + 150, vip)  # in the first expiry batch
    warning = f"/channels/{general}/messages"  # the first warning post
    later = role_path(GUILD_ID, FIRST_MEMBER + 450, vip)  # in the third expiry batch
    kills = [
        ("in an expiry batch", "DELETE", first, lambda: held_up(fake, "DELETE", first)),
        (
            "in a warning batch",
            "POST",
            warning,
            lambda: held_up(fake, "POST", warning) and sum(warning_posts(fake).values()) >= 50,
        ),
        ("in expiries again", "DELETE", later, lambda: held_up(fake, "DELETE", later)),
    ]
    seen = []
    for what, method, path, mid_sweep in kills:
        fake.rate_limit_next(method, re.escape(path), retry_after=2.0)
        doomed = sweep_until_killed(fake, alive, mid_sweep, what)
        seen.append((what, len(removals(fake)), expired_count(), sum(warning_posts(fake).values()), warned_count()))
        # Killed with work in flight: claims held by the dead run, due work left.
        assert TimedRole.objects.filter(state=TimerState.ACTIVE).exclude(lease_owner="", warn_lease_owner="").exists(), seen
        alive.remove(doomed)
    assert seen[0][2] < seen[0][1] and seen[2][2] < seen[2][1], seen  # roles taken whose timers were not yet recorded
    assert seen[1][4] < seen[1][3], seen  # warnings posted that were not yet recorded

    sweep_done = lambda: expired_count() == EXPIRING and warned_count() == WARNED  # noqa: E731
    wait_until(lambda: not SweepBaton.objects.filter(held_until__gte=timezone.now()).exists(), 20, "the baton to be free")
    queue_sweep_run()
    wait_until(sweep_done, 40, "the backlog worked off after three kills", alive)

    due = TimedRole.objects.filter(member_id__lt=FIRST_MEMBER + EXPIRING)
    assert due.filter(state=TimerState.EXPIRED, outcome=ExpiryOutcome.REMOVED).count() == EXPIRING
    expiries = TimerEvent.objects.filter(kind=TimerEventKind.EXPIRE)
    assert expiries.count() == EXPIRING
    assert not expiries.values("timer_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert set(removals(fake)) == {role_path(GUILD_ID, m, vip) for m in range(FIRST_MEMBER, FIRST_MEMBER + EXPIRING)}
    assert all(fake.member_roles(GUILD_ID, m) == set() for m in range(FIRST_MEMBER, FIRST_MEMBER + EXPIRING))
    notices = Counter(line for m in fake.messages if not m["content"].startswith("⏳") for line in m["content"].split("\n"))
    assert set(notices.values()) == {1}, notices.most_common(3)  # an expiry notice never twice

    # Every warning recorded once, and on Discord once: the repeats of killed runs kept their nonces.
    warned = TimedRole.objects.filter(member_id__gte=FIRST_MEMBER + EXPIRING)
    assert warned.filter(state=TimerState.ACTIVE).count() == WARNED
    assert all(60 in t.warnings_sent for t in warned)
    warn_events = TimerEvent.objects.filter(kind=TimerEventKind.WARN)
    assert not warn_events.values("timer_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    posts = warning_posts(fake)
    assert set(posts) == set(range(FIRST_MEMBER + EXPIRING, FIRST_MEMBER + EXPIRING + WARNED))
    assert set(posts.values()) == {1}, posts.most_common(3)
    assert [c for c in fake.role_changes if c["method"] != "DELETE"] == []
    assert fake.unhandled == []
