"""The activity log's services on the real database: an entry exists exactly when its change committed,
what each service writes, and the poster's claims (leases, the per-guild lock, the kept outcomes)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commands.services import command_create, command_delete, command_update, cookie_reset, cookie_set
from guilds.log_selectors import log_guilds_pending, log_texts_named
from guilds.models import Guild, LogEntry, LogSettings, Member, PostOutcome, Role
from guilds.services.log import (
    POST_LEASE,
    POST_RETRY,
    log_channel_set,
    log_claim,
    log_entries_prune,
    log_mark_posted,
    log_mark_unpostable,
    log_record,
    log_release,
)
from timers.errors import TimerError
from timers.models import ExpiryOutcome
from timers.services import (
    timer_add,
    timer_auto_resume,
    timer_clear,
    timer_pause,
    timer_pause_all,
    timer_remove,
    timer_resume,
    timer_resume_all,
    timer_set,
)
from timers.services.sweeps import sweep_claim_expiries, sweep_record_expiries

pytestmark = pytest.mark.django_db(transaction=True)
G, OTHER = 111_111_111_111_111_111, 222_222_222_222_222_222
ALICE, BOB, ROLE, CHANNEL = 1039, 2040, 777, 555


def entries(guild_id: int = G) -> list[LogEntry]:
    return list(LogEntry.objects.filter(guild_id=guild_id).order_by("pk"))


def kinds(guild_id: int = G) -> list[str]:
    return [e.kind for e in entries(guild_id)]


def set_alice(duration=timedelta(days=30), now=None):
    return timer_set(guild_id=G, member_id=ALICE, role_id=ROLE, duration=duration, actor_id=BOB, now=now)


# --- what the services write --------------------------------------------------------------------
def test_it_records_a_timer_set_with_who_asked():
    set_alice()
    (entry,) = entries()
    assert entry.kind == "timer.set" and not entry.failed
    assert (entry.actor_id, entry.member_id, entry.role_id) == (BOB, ALICE, ROLE)
    assert entry.text == f"<@{ALICE}>'s <@&{ROLE}> timer set to 30d by <@{BOB}>"
    assert entry.posted_at is None


def test_it_records_every_kind_of_timer_change():
    now = timezone.now()
    set_alice(now=now)
    timer_add(guild_id=G, member_id=ALICE, role_id=ROLE, duration=timedelta(hours=2), actor_id=BOB, now=now)
    timer_remove(guild_id=G, member_id=ALICE, role_id=ROLE, duration=timedelta(hours=1), actor_id=BOB, now=now)
    timer_pause(guild_id=G, member_id=ALICE, role_id=ROLE, actor_id=BOB, duration=timedelta(hours=1), now=now)
    timer_resume(guild_id=G, member_id=ALICE, role_id=ROLE, actor_id=BOB, now=now)
    timer_clear(guild_id=G, member_id=ALICE, role_id=ROLE, actor_id=BOB)
    assert kinds() == ["timer.set", "timer.add", "timer.remove", "timer.pause", "timer.resume", "timer.clear"]
    assert "paused for 1h by" in entries()[3].text
    assert entries()[1].text.endswith("extended by 2h by <@2040>")


def test_it_records_pause_all_and_resume_all_once_per_batch_and_auto_resumes_per_timer():
    now = timezone.now()
    for member in range(10, 15):
        timer_set(guild_id=G, member_id=member, role_id=ROLE, duration=timedelta(days=1), actor_id=BOB, now=now)
    LogEntry.objects.all().delete()
    assert timer_pause_all(guild_id=G, role_id=ROLE, actor_id=BOB, now=now) == 5
    assert timer_resume_all(guild_id=G, role_id=ROLE, actor_id=BOB, now=now) == 5
    assert [e.text for e in entries()] == [
        f"5 <@&{ROLE}> timer(s) paused by <@{BOB}> (pause-all)",
        f"5 <@&{ROLE}> timer(s) resumed by <@{BOB}> (resume-all)",
    ]
    timer_pause(guild_id=G, member_id=10, role_id=ROLE, actor_id=BOB, duration=timedelta(minutes=5), now=now)
    assert timer_auto_resume(now=now + timedelta(minutes=6)) == 1
    assert entries()[-1].kind == "timer.auto_resume" and entries()[-1].actor_id is None


@pytest.mark.parametrize(
    ("outcome", "failed", "words"),
    [
        (ExpiryOutcome.REMOVED, False, "the role was removed"),
        (ExpiryOutcome.MEMBER_GONE, False, "away from the server"),
        (ExpiryOutcome.FORBIDDEN, True, "I may not remove the role"),
        (ExpiryOutcome.ROLE_GONE, True, "no longer exists"),
    ],
)
def test_it_records_an_expiry_and_its_failures_with_the_reason(outcome, failed, words):
    now = timezone.now()
    set_alice(duration=timedelta(minutes=1), now=now - timedelta(minutes=2))
    (claimed,) = sweep_claim_expiries(owner="w1", now=now)
    sweep_record_expiries(outcomes=[(claimed.pk, outcome, "403 Missing Permissions")], owner="w1", now=now)
    entry = entries()[-1]
    assert entry.kind == ("timer.expire_failed" if failed else "timer.expire")
    assert entry.failed is failed and words in entry.text
    assert ("403 Missing Permissions" in entry.text) is failed


def test_it_logs_a_failed_removal_only_once_it_gives_up():
    now = timezone.now()
    set_alice(duration=timedelta(minutes=1), now=now - timedelta(minutes=2))
    (claimed,) = sweep_claim_expiries(owner="w1", now=now)
    sweep_record_expiries(outcomes=[(claimed.pk, ExpiryOutcome.FAILED_RETRY, "502")], owner="w1", now=now)
    assert kinds() == ["timer.set"]  # a retry to come is not a failure yet
    later = now
    for _ in range(6):
        later += timedelta(minutes=10)
        for timer in sweep_claim_expiries(owner="w1", now=later):
            sweep_record_expiries(outcomes=[(timer.pk, ExpiryOutcome.FAILED_RETRY, "502 Bad Gateway")], owner="w1", now=later)
    assert kinds() == ["timer.set", "timer.expire_failed"]
    assert "failed after every retry: 502 Bad Gateway" in entries()[-1].text


def test_a_whole_batch_of_expiries_is_recorded_in_one_insert():
    now = timezone.now()
    for member in range(100, 300):
        timer_set(guild_id=G, member_id=member, role_id=ROLE, duration=timedelta(minutes=1), actor_id=BOB, now=now)
    claimed = sweep_claim_expiries(owner="w1", now=now + timedelta(minutes=2))
    outcomes = [(t.pk, ExpiryOutcome.REMOVED, "") for t in claimed]
    with CaptureQueriesContext(connection) as queries:
        sweep_record_expiries(outcomes=outcomes, owner="w1", now=now + timedelta(minutes=2))
    inserts = [q["sql"] for q in queries if "guilds_logentry" in q["sql"]]
    # One statement for the batch (SQLite splits it by its limit on parameters: a few).
    assert 1 <= len(inserts) <= 3 and all(sql.startswith("INSERT") for sql in inserts)
    assert LogEntry.objects.filter(kind="timer.expire").count() == 200


def test_it_records_cookie_set_and_reset_by_admins():
    cookie_set(guild_id=G, member_id=ALICE, balance=12, actor_id=BOB)
    cookie_set(guild_id=G, member_id=BOB, balance=3, actor_id=BOB)
    cookie_set(guild_id=G, member_id=ALICE, balance=12, actor_id=BOB)  # no change, no entry
    cookie_reset(guild_id=G, actor_id=BOB, member_id=ALICE)
    cookie_reset(guild_id=G, actor_id=BOB)
    assert [e.text for e in entries()] == [
        f"<@{ALICE}>'s cookies set to 12 (was 0) by <@{BOB}>",
        f"<@{BOB}>'s cookies set to 3 (was 0) by <@{BOB}>",
        f"<@{ALICE}>'s cookies reset to 0 (was 12) by <@{BOB}>",
        f"Cookies of 1 member(s) reset to 0 by <@{BOB}>",
    ]


def test_it_records_commands_created_edited_and_deleted():
    command_create(guild_id=G, name="hello", template="hi {user}", author_id=BOB)
    command_update(guild_id=G, name="hello", template="hey {user}", cooldown_seconds=5, editor_id=ALICE)
    command_update(guild_id=G, name="hello")  # nothing given, nothing changed
    command_delete(guild_id=G, name="hello", actor_id=BOB)
    assert [e.text for e in entries()] == [
        f"Command `hello` created by <@{BOB}>",
        f"Command `hello` edited (reply, cooldown) by <@{ALICE}>",
        f"Command `hello` deleted by <@{BOB}>",
    ]


# --- exactly when the change committed ----------------------------------------------------------
def test_a_rolled_back_change_leaves_no_entry():
    with pytest.raises(RuntimeError), transaction.atomic():
        set_alice()
        cookie_set(guild_id=G, member_id=ALICE, balance=5, actor_id=BOB)
        raise RuntimeError("the caller's transaction fails after the change")
    assert not LogEntry.objects.exists()


def test_a_refused_change_leaves_no_entry():
    set_alice()
    timer_pause(guild_id=G, member_id=ALICE, role_id=ROLE, actor_id=BOB)
    with pytest.raises(TimerError):
        timer_pause(guild_id=G, member_id=ALICE, role_id=ROLE, actor_id=BOB)
    assert kinds() == ["timer.set", "timer.pause"]


def test_an_entry_that_cannot_be_written_takes_its_change_with_it():
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        set_alice()
        log_record(guild_id=G, kind="timer.set", text="x")
        raise Boom
    from timers.models import TimedRole

    assert not TimedRole.objects.exists() and not LogEntry.objects.exists()


# --- names --------------------------------------------------------------------------------------
def test_it_names_members_roles_and_channels_from_the_directory_and_keeps_unknown_mentions():
    Guild.objects.create(guild_id=G, name="My Server")
    Member.objects.create(guild_id=G, user_id=ALICE, username="alice", global_name="Alice")
    Member.objects.create(guild_id=OTHER, user_id=BOB, username="bob_elsewhere")  # another guild: not used
    Role.objects.create(guild_id=G, role_id=ROLE, name="Booster")
    set_alice()
    log_channel_set(guild_id=G, channel_id=CHANNEL, actor_id=ALICE)
    texts = list(log_texts_named(entries()).values())
    assert texts[0] == f"Alice (@alice)'s @Booster timer set to 30d by <@{BOB}>"
    assert texts[1] == f"Log channel set to <#{CHANNEL}> by Alice (@alice)"


# --- claims for posting ---------------------------------------------------------------------------
def test_entries_of_a_guild_without_a_log_channel_are_kept_not_posted():
    set_alice()
    assert log_guilds_pending(now=timezone.now()) == [G]
    claim = log_claim(guild_id=G)
    assert claim.entries == [] and claim.channel_id is None
    (entry,) = entries()
    assert entry.post_outcome == PostOutcome.NO_CHANNEL and entry.posted_at is not None
    assert log_guilds_pending(now=timezone.now()) == []


def test_a_claim_leases_the_oldest_entries_and_a_second_poster_gets_none():
    log_channel_set(guild_id=G, channel_id=CHANNEL, actor_id=BOB)
    for member in range(5):
        timer_set(guild_id=G, member_id=member + 1, role_id=ROLE, duration=timedelta(days=1), actor_id=BOB)
    now = timezone.now()
    first = log_claim(guild_id=G, now=now, limit=4)
    assert first.channel_id == CHANNEL and [e.pk for e in first.entries] == [e.pk for e in entries()][:4]
    assert log_claim(guild_id=G, now=now).entries == []  # the guild is being posted: nobody else takes any of it
    assert log_guilds_pending(now=now) == [G]  # (the last two wait, unleased)
    log_mark_posted(entry_ids=[e.pk for e in first.entries], now=now)
    second = log_claim(guild_id=G, now=now)
    assert [e.pk for e in second.entries] == [e.pk for e in entries()][4:]  # the channel setting's entry and five timers
    assert LogEntry.objects.filter(post_outcome=PostOutcome.POSTED).count() == 4


def test_a_dead_posters_claim_is_taken_again_after_its_lease_and_a_release_frees_it_at_once():
    log_channel_set(guild_id=G, channel_id=CHANNEL, actor_id=BOB)
    now = timezone.now()
    claimed = log_claim(guild_id=G, now=now).entries
    assert log_claim(guild_id=G, now=now + POST_LEASE - timedelta(seconds=1)).entries == []
    assert [e.pk for e in log_claim(guild_id=G, now=now + POST_LEASE + timedelta(seconds=1)).entries] == [claimed[0].pk]
    log_release(entry_ids=[claimed[0].pk])
    assert len(log_claim(guild_id=G, now=now + POST_LEASE + timedelta(seconds=2)).entries) == 1


def test_a_channel_the_bot_may_not_post_in_keeps_entries_until_it_is_set_again_or_an_hour_passed():
    log_channel_set(guild_id=G, channel_id=CHANNEL, actor_id=BOB)
    now = timezone.now()
    claim = log_claim(guild_id=G, now=now)
    log_mark_unpostable(guild_id=G, channel_id=CHANNEL, entry_ids=[e.pk for e in claim.entries], outcome="forbidden", now=now)
    assert LogSettings.objects.get(guild_id=G).post_error == "forbidden"
    set_alice()
    assert log_claim(guild_id=G, now=now + timedelta(minutes=5)).entries == []  # not tried: kept at once
    assert entries()[-1].post_outcome == PostOutcome.FORBIDDEN
    set_alice()
    assert len(log_claim(guild_id=G, now=now + POST_RETRY + timedelta(seconds=1)).entries) == 1  # tried again later
    log_channel_set(guild_id=G, channel_id=CHANNEL + 1, actor_id=BOB)
    assert LogSettings.objects.get(guild_id=G).post_error == ""


def test_turning_the_log_channel_off_keeps_entries_and_says_so_in_the_log():
    log_channel_set(guild_id=G, channel_id=CHANNEL, actor_id=BOB)
    log_channel_set(guild_id=G, channel_id=None, actor_id=BOB)
    assert [e.text for e in entries()] == [f"Log channel set to <#{CHANNEL}> by <@{BOB}>", f"Log channel set to off by <@{BOB}>"]
    log_claim(guild_id=G)
    assert {e.post_outcome for e in entries()} == {PostOutcome.NO_CHANNEL}


def test_retention_prunes_old_entries_only():
    set_alice()
    set_alice()
    old = entries()[0]
    LogEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=91))
    assert log_entries_prune(cutoff=timezone.now() - timedelta(days=90), batch=1) == 1
    assert [e.pk for e in entries()] == [entries()[0].pk] and entries()[0].pk != old.pk


def test_the_retention_run_prunes_the_log_after_retention_log_days(settings, tmp_path):
    from ops.retention.runs import Cutoffs, retention_run

    settings.BACKUP_DIR = tmp_path
    set_alice()
    set_alice()
    old, young = entries()
    LogEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=91))
    settings.RETENTION_LOG_DAYS = 0  # keeps the log
    assert not retention_run(cutoffs=Cutoffs(timers=None, ledger=None)).error
    assert len(entries()) == 2
    settings.RETENTION_LOG_DAYS = 90
    assert not retention_run(cutoffs=Cutoffs(timers=None, ledger=None), dry_run=True).error
    assert len(entries()) == 2  # a dry run deletes nothing
    assert not retention_run(cutoffs=Cutoffs(timers=None, ledger=None)).error
    assert [e.pk for e in entries()] == [young.pk]
