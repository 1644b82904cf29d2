"""/timer bulk-add, bulk-clear and bulk-cancel end to end: `manage.py runbot` takes the command, a real
`manage.py qcluster` works the job against the fake Discord (its member list, its role routes under
Discord's rate limits), and the one progress message is edited as it goes."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest

from tests.bots.conftest import ADMIN, ALICE, BOB, BOT, GUILD_ID, OTHER_BOT, ROOT, BotProcess, bot_env, wait_reply
from tests.bots.sweeper_fixtures import Cluster, start_clusters, wait_until
from tests.bots.test_runbot_timers import answer_to
from tests.fake_discord import FakeDiscord, FakeGuild
from tests.fake_discord.components import click_button
from tests.fake_discord.ratelimits import BucketLimit, RateLimits
from timers.models import BulkJob, BulkKind, BulkState, TimedRole, TimerEvent, TimerEventKind, TimerState
from timers.services import timer_set
from timers.services.bulk import bulk_job_create

pytestmark = pytest.mark.django_db(transaction=True)
FIRST = 700_000_000_000_000_000
QUEUE = "guildhall-bulk-test"


def many_member_guild(count: int) -> FakeGuild:
    guild = FakeGuild.with_many_members(
        guild_id=GUILD_ID,
        bot_user=BOT,
        count=count,
        first_user_id=FIRST,
        members=[ADMIN, ALICE, BOB, OTHER_BOT],
        admin_ids=[ADMIN.id],
    )
    member_role = guild.role("Member").id
    for member_id in range(FIRST, FIRST + count):
        guild.members[member_id] = [member_role]
    guild.members[OTHER_BOT.id] = [member_role]  # bots never get timers
    return guild


def start(fake: FakeDiscord, tmp_path, **env: str) -> tuple[BotProcess, Cluster]:
    """The bot and one worker cluster, on one q2 queue."""
    settings_env = {"Q_CLUSTER_NAME": QUEUE, "BULK_EDIT_SECONDS": "1"} | env
    bot = BotProcess(bot_env(fake, **settings_env), tmp_path / "runbot.log")
    assert fake.wait_for_ready_sent(30), bot.log()
    fake.wait_for(lambda: "timer" in fake.command_names(), timeout=20, message="slash commands were not synced")
    wait_reply(fake, ADMIN, "!!ping", lambda m: m["content"].startswith("Pong"), process=bot)
    (cluster,) = start_clusters(fake, tmp_path, ["worker"], queue=QUEUE, DISCORD_RATE_LIMITS="local", **settings_env)
    return bot, cluster


def slash(fake: FakeDiscord, user, options) -> dict:
    channel = fake.guilds[GUILD_ID].text_channel.id
    return fake.send_slash(GUILD_ID, channel, user.id, "timer", options)


def progress_edits(fake: FakeDiscord, message_id: int) -> list[str]:
    return [e["content"] for e in fake.edits if int(e["message_id"]) == message_id and "content" in e]


def last_edit(fake: FakeDiscord, message_id: int) -> dict:
    return [e for e in fake.edits if int(e["message_id"]) == message_id][-1]


def last_progress(fake: FakeDiscord, message_id: int) -> str:
    """The progress message's latest text ('' before its first edit)."""
    return (progress_edits(fake, message_id) or [""])[-1]


def job_finished(job_id: int) -> bool:
    return BulkJob.objects.get(pk=job_id).state in (BulkState.DONE, BulkState.CANCELLED, BulkState.FAILED)


def enqueue(cluster: Cluster, func: str, *args: object) -> None:
    code = f"from django_q.tasks import async_task; async_task({func!r}, *{args!r})"
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=cluster.env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def guild():
    return many_member_guild(1200)


@pytest.fixture
def fake(guild):
    # Discord's shape: 50 requests/s per token, the member-role routes one bucket per guild.
    limits = RateLimits(buckets={"member-roles": BucketLimit(50, 1.0)})
    with FakeDiscord(guilds=[guild], bot_user=BOT, rate_limits=limits) as running:
        yield running


def test_it_gives_1200_holders_a_timed_role_editing_one_progress_message_without_avoidable_429s(fake, guild, tmp_path):
    vip, member_role = guild.role("VIP"), guild.role("Member")
    bot, cluster = start(fake, tmp_path)
    try:
        interaction = slash(fake, ADMIN, [("bulk-add", {"role": vip.id, "time": "30d", "holders-of": member_role.id})])
        answer = answer_to(fake, interaction)
        assert "Bulk add #" in answer["content"] and "counting" in answer["content"]
        job = BulkJob.objects.get()
        wait_until(lambda: job_finished(job.pk), 180, "the bulk add did not finish", [cluster])
        job.refresh_from_db()
        assert (job.state, job.total, job.done_count, job.skipped_count, job.failed_count) == (BulkState.DONE, 1200, 1200, 0, 0)
        given = Counter(c["user_id"] for c in fake.role_changes if c["method"] == "PUT" and c["role_id"] == vip.id)
        assert set(given) == set(range(FIRST, FIRST + 1200)) and set(given.values()) == {1}
        assert all("bulk job" in c["reason"] for c in fake.role_changes)
        assert TimedRole.objects.filter(role_id=vip.id, state=TimerState.ACTIVE).count() == 1200
        sets = TimerEvent.objects.filter(kind=TimerEventKind.SET, detail=f"bulk job {job.pk}")
        assert sets.count() == 1200
        timer = TimedRole.objects.filter(role_id=vip.id).first()
        assert timedelta(days=29, hours=23) < timer.expires_at - timer.created_at <= timedelta(days=30, seconds=5)
        # One message, edited: the last edit says it all.
        assert job.message_id is not None
        edits = progress_edits(fake, job.message_id)
        assert edits and "1,200 of 1,200" in edits[-1] and "Done" in edits[-1], edits[-3:]
        assert any(" of 1,200" in e and "1,200 of 1,200" not in e for e in edits)  # it showed progress on the way
        assert len(edits) < 200  # throttled
        assert [r for r in fake.rate_limited if not r["fresh"]] == []
        assert fake.unhandled == []
        puts = [r["at"] for r in fake.requests if r["method"] == "PUT" and r["status"] == 204]
        # The figure, not a check (the shared 2-core machine's speed varies): role changes a second.
        print(f"bulk add: {len(puts)} role PUTs in {puts[-1] - puts[0]:.1f} s, {len(puts) / (puts[-1] - puts[0]):.1f}/s")
    finally:
        cluster.stop()
        bot.stop()


@pytest.fixture
def small_guild():
    return many_member_guild(60)


def test_it_clears_every_live_timer_of_a_role_and_cancels_a_job_mid_way(tmp_path, small_guild):
    guild = small_guild
    vip = guild.role("VIP")
    # Slow role changes (10 a second), so that a cancel lands mid-way.
    limits = RateLimits(buckets={"member-roles": BucketLimit(10, 1.0)})
    with FakeDiscord(guilds=[guild], bot_user=BOT, rate_limits=limits) as fake:
        bot, cluster = start(fake, tmp_path)
        try:
            answer_to(
                fake, slash(fake, ADMIN, [("bulk-add", {"role": vip.id, "time": "2h", "holders-of": guild.role("Member").id})])
            )
            job = BulkJob.objects.get()
            wait_until(lambda: BulkJob.objects.get(pk=job.pk).done_count >= 15, 60, "the bulk add never started", [cluster])
            busy = answer_to(fake, slash(fake, ADMIN, [("bulk-clear", {"role": vip.id})]))
            assert f"#{job.pk}" in busy["content"] and "bulk-cancel" in busy["content"]
            cancelled = answer_to(fake, slash(fake, ADMIN, [("bulk-cancel", {})]))
            assert f"#{job.pk}" in cancelled["content"]
            wait_until(lambda: job_finished(job.pk), 30, "the cancel was not honoured", [cluster])
            job.refresh_from_db()
            assert job.state == BulkState.CANCELLED and 15 <= job.done_count < 60
            timed = TimedRole.objects.filter(role_id=vip.id, state=TimerState.ACTIVE).count()
            assert timed == job.done_count
            # The job's end is saved before its last edit of the message is sent: wait for the edit.
            wait_until(
                lambda: f"Cancelled by <@{ADMIN.id}>." in last_progress(fake, job.message_id),
                15,
                "the progress message never said cancelled",
                [cluster],
            )

            # bulk-clear takes every one of them back.
            answer = answer_to(fake, slash(fake, ADMIN, [("bulk-clear", {"role": vip.id})]))
            assert "Bulk clear #" in answer["content"]
            clear = BulkJob.objects.exclude(pk=job.pk).get()
            wait_until(lambda: job_finished(clear.pk), 60, "the bulk clear did not finish", [cluster])
            clear.refresh_from_db()
            assert (clear.state, clear.total, clear.done_count) == (BulkState.DONE, timed, timed)
            assert not TimedRole.objects.filter(role_id=vip.id, state__in=[TimerState.ACTIVE, TimerState.PAUSED]).exists()
            assert TimerEvent.objects.filter(kind=TimerEventKind.CLEAR, detail=f"bulk job {clear.pk}").count() == timed
            holders = [m for m in range(FIRST, FIRST + 60) if vip.id in fake.member_roles(GUILD_ID, m)]
            assert holders == []
            assert f"{timed:,} of {timed:,}" in progress_edits(fake, clear.message_id)[-1]
            assert last_edit(fake, clear.message_id)["components"] == []  # no Cancel button once done

            # The progress message's Cancel button: refused to a member without Manage Roles, honoured for an admin.
            # (60 holders at 10 role changes a second: still under way when the button is clicked)
            answer_to(
                fake, slash(fake, ADMIN, [("bulk-add", {"role": vip.id, "time": "1h", "holders-of": guild.role("Member").id})])
            )
            third = BulkJob.objects.exclude(pk__in=[job.pk, clear.pk]).get()
            wait_until(
                lambda: BulkJob.objects.get(pk=third.pk).message_id, 10, "the progress message was not recorded", [cluster]
            )
            third.refresh_from_db()
            button = f"guildhall:bulk-cancel:{third.pk}"
            refused = answer_to(fake, click_button(fake, GUILD_ID, third.message_id, ALICE.id, button))
            assert "Manage Roles" in refused["content"]
            assert not BulkJob.objects.get(pk=third.pk).cancel_requested
            honoured = answer_to(fake, click_button(fake, GUILD_ID, third.message_id, ADMIN.id, button))
            assert f"#{third.pk}" in honoured["content"]
            wait_until(lambda: job_finished(third.pk), 30, "the button's cancel was not honoured", [cluster])
            third.refresh_from_db()
            assert third.state == BulkState.CANCELLED and third.done_count < 60
            # Cancelled before or while a worker held it: either way the message ends saying so, without the button.
            wait_until(
                lambda: any("Cancelled" in e for e in progress_edits(fake, third.message_id)),
                15,
                "message not updated",
                [cluster],
            )
            assert last_edit(fake, third.message_id)["components"] == []
            assert [r for r in fake.rate_limited if not r["fresh"]] == []
        finally:
            cluster.stop()
            bot.stop()


def test_it_refuses_bad_input_and_members_without_permission(tmp_path, small_guild):
    guild = small_guild
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake:
        bot = BotProcess(bot_env(fake, Q_CLUSTER_NAME=QUEUE), tmp_path / "runbot.log")
        try:
            assert fake.wait_for_ready_sent(30), bot.log()
            fake.wait_for(lambda: "timer" in fake.command_names(), timeout=20)
            vip, moderator = guild.role("VIP"), guild.role("Moderator")
            cases = [
                (ALICE, [("bulk-add", {"role": vip.id, "time": "1d"})], "Manage Roles"),
                (ADMIN, [("bulk-add", {"role": vip.id, "time": "soon"})], "duration"),
                (ADMIN, [("bulk-add", {"role": vip.id, "time": "400d"})], "365 days"),
                (ADMIN, [("bulk-add", {"role": moderator.id, "time": "1d"})], "above my highest role"),
                (ADMIN, [("bulk-clear", {"role": moderator.id})], "above my highest role"),
                (ADMIN, [("bulk-cancel", {})], "No bulk change"),
                (ALICE, [("bulk-cancel", {})], "Manage Roles"),
            ]
            for user, options, expected in cases:
                answer = answer_to(fake, slash(fake, user, options))
                assert expected in answer["content"], (options, answer)
            # The prefix forms say the same.
            reply = wait_reply(fake, ADMIN, f"!!timer bulk-add <@&{vip.id}> never", lambda m: "duration" in m["content"])
            assert "duration" in reply["content"]
            reply = wait_reply(fake, ALICE, f"!!timer bulk-clear <@&{vip.id}>", lambda m: "Manage Roles" in m["content"])
            reply = wait_reply(fake, ADMIN, "!!timer bulk-cancel x", lambda m: "job's number" in m["content"])
            assert not BulkJob.objects.exists() and fake.role_changes == []
            assert fake.unhandled == []
        finally:
            bot.stop()


def test_a_worker_killed_mid_job_and_restarted_sets_every_timer_exactly_once(tmp_path):
    count = 400
    guild = many_member_guild(count)
    vip, member_role = guild.role("VIP"), guild.role("Member")
    with FakeDiscord(
        guilds=[guild], bot_user=BOT, rate_limits=RateLimits(buckets={"member-roles": BucketLimit(40, 1.0)})
    ) as fake:
        bot, first = start(fake, tmp_path, BULK_LEASE_SECONDS="3")
        second = None
        try:
            wait_reply(
                fake, ADMIN, f"!!timer bulk-add <@&{vip.id}> 7d <@&{member_role.id}>", lambda m: "Bulk add #" in m["content"]
            )
            job = BulkJob.objects.get()
            wait_until(lambda: BulkJob.objects.get(pk=job.pk).done_count >= 100, 60, "the job never got going", [first])
            first.kill()  # SIGKILL, mid-job
            killed_at = BulkJob.objects.get(pk=job.pk)
            assert killed_at.state == BulkState.RUNNING and killed_at.done_count < count
            (second,) = start_clusters(
                fake, tmp_path, ["worker2"], queue=QUEUE, BULK_LEASE_SECONDS="3", DISCORD_RATE_LIMITS="local"
            )
            wait_until(
                lambda: BulkJob.objects.get(pk=job.pk).lease_until is None or job_lease_over(job.pk), 10, "lease", [second]
            )
            enqueue(second, "bots.bulk.bulk_jobs_resume")  # the one-minute watchdog's run
            wait_until(lambda: job_finished(job.pk), 120, "the restarted worker did not finish the job", [second])
            job.refresh_from_db()
            assert (job.state, job.done_count, job.total) == (BulkState.DONE, count, count)
            sets = Counter(
                TimerEvent.objects.filter(kind=TimerEventKind.SET, detail=f"bulk job {job.pk}").values_list(
                    "timer__member_id", flat=True
                )
            )
            assert set(sets) == set(range(FIRST, FIRST + count)) and set(sets.values()) == {1}
            puts = Counter(c["user_id"] for c in fake.role_changes if c["method"] == "PUT" and c["role_id"] == vip.id)
            assert set(puts) == set(range(FIRST, FIRST + count))
            repeated = [m for m, n in puts.items() if n > 1]
            assert len(repeated) <= 1 and all(puts[m] == 2 for m in repeated)  # at most the one in flight at the kill
            wait_until(lambda: "400 of 400" in last_progress(fake, job.message_id), 15, "no final progress edit")
        finally:
            for cluster in (first, second):
                if cluster is not None:
                    cluster.stop()
            bot.stop()


def job_lease_over(job_id: int) -> bool:
    from django.utils import timezone

    lease = BulkJob.objects.get(pk=job_id).lease_until
    return lease is None or lease < timezone.now()


def test_a_conversion_sends_no_role_request_keeps_running_timers_and_a_refusal_stops_the_job(tmp_path):
    count = 50
    guild = many_member_guild(count)
    vip, member_role, moderator = guild.role("VIP"), guild.role("Member"), guild.role("Moderator")
    for member_id in range(FIRST, FIRST + count):
        guild.members[member_id] = [member_role.id, vip.id]  # VIP held for good, as before timers
    already = list(range(FIRST, FIRST + 5))
    for member_id in already:
        timer_set(guild_id=GUILD_ID, member_id=member_id, role_id=vip.id, duration=timedelta(hours=3), actor_id=ADMIN.id)
    before = dict(TimedRole.objects.filter(member_id__in=already).values_list("member_id", "expires_at"))
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake:
        bot, cluster = start(fake, tmp_path)
        try:
            answer_to(fake, slash(fake, ADMIN, [("bulk-add", {"role": vip.id, "time": "7d"})]))
            job = BulkJob.objects.get()
            wait_until(lambda: job_finished(job.pk), 60, "the conversion did not finish", [cluster])
            job.refresh_from_db()
            assert (job.state, job.total, job.done_count, job.skipped_count) == (BulkState.DONE, count, count - 5, 5)
            assert fake.role_changes == []  # every member held the role already
            assert dict(TimedRole.objects.filter(member_id__in=already).values_list("member_id", "expires_at")) == before
            assert TimedRole.objects.filter(role_id=vip.id, state=TimerState.ACTIVE).count() == count
            wait_until(
                lambda: "50 of 50" in last_progress(fake, job.message_id) and "5 skipped" in last_progress(fake, job.message_id),
                15,
                "no final progress edit",
            )

            # Started on the dashboard for a role above the bot's: Discord refuses, and the job stops saying why.
            refused = bulk_job_create(
                guild_id=GUILD_ID,
                kind=BulkKind.ADD,
                role_id=moderator.id,
                seconds=3600,
                holders_of_role_id=member_role.id,
                actor_id=None,
            )
            enqueue(cluster, "bots.bulk.bulk_jobs_resume")  # the one-minute watchdog's run
            wait_until(lambda: job_finished(refused.pk), 60, "the refused job did not stop", [cluster])
            refused.refresh_from_db()
            assert refused.state == BulkState.FAILED and "may not change that role" in refused.detail
            assert not TimedRole.objects.filter(role_id=moderator.id).exists()
            assert fake.role_changes == []
        finally:
            cluster.stop()
            bot.stop()
