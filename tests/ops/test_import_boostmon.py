"""manage.py import_boostmon: BoostMon's role_timers and timer_allowed_roles (--dsn, --csv) and data.json (--json)."""

from __future__ import annotations

import csv
import json
import os
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.bots.conftest import ALICE, BOB, GUILD_ID, fake, guild
from tests.bots.sweeper_fixtures import Clock, discord_fake, engine_connections_closed, sweep_at
from timers.models import AllowedRole, PauseKind, TimedRole, TimerEvent, TimerEventKind, TimerState

pytestmark = pytest.mark.django_db(transaction=True)

G = 812_345_678_901_234_567
NULL_GUILD = 812_345_678_901_234_999
ROLE, OTHER_ROLE = 700000000000000001, 700000000000000002
CHANNEL = 600000000000000001
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
COLUMNS = [
    "id",
    "user_id",
    "role_id",
    "expires_at",
    "warn_channel_id",
    "paused",
    "paused_at",
    "paused_remaining_ms",
    "warnings_sent",
    "guild_id",
    "pause_type",
    "pause_expires_at",
    "issued_by",
    "created_at",
    "updated_at",
]
SCHEMA = """
CREATE TABLE role_timers (
  id SERIAL PRIMARY KEY, user_id TEXT NOT NULL, role_id TEXT NOT NULL, expires_at BIGINT NOT NULL,
  warn_channel_id TEXT, paused BOOLEAN NOT NULL DEFAULT FALSE, paused_at BIGINT, paused_remaining_ms BIGINT,
  warnings_sent JSONB NOT NULL DEFAULT '{}'::jsonb, guild_id TEXT, pause_type TEXT, pause_expires_at BIGINT,
  issued_by TEXT, created_at TIMESTAMPTZ DEFAULT NOW(), updated_at TIMESTAMPTZ DEFAULT NOW(),
  UNIQUE (user_id, role_id));
CREATE TABLE timer_allowed_roles (guild_id TEXT NOT NULL, role_id TEXT NOT NULL, role_name TEXT, PRIMARY KEY (guild_id, role_id));
"""


def ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def at(millis: int) -> datetime:
    return EPOCH + timedelta(milliseconds=millis)


def rows_of(now_ms: int) -> list[dict]:
    """BoostMon's rows as its db.js writes them: ids skip, a paused row's expires_at is stale."""
    base: dict[str, Any] = {
        "warn_channel_id": None,
        "paused": False,
        "paused_at": None,
        "paused_remaining_ms": None,
        "warnings_sent": {},
    }
    base |= {"guild_id": str(G), "pause_type": None, "pause_expires_at": None, "issued_by": "500000000000000001"}
    minute = 60_000
    return [
        base
        | {"id": 1, "user_id": "100000000000000001", "role_id": str(ROLE), "expires_at": now_ms + 30 * minute + 123}
        | {"warn_channel_id": str(CHANNEL), "warnings_sent": {"60": True}},
        base
        | {"id": 4, "user_id": "100000000000000002", "role_id": str(ROLE), "expires_at": now_ms - 300 * minute}
        | {"paused": True, "paused_at": now_ms - 400 * minute, "paused_remaining_ms": 2 * 60 * minute + 7}
        | {"pause_type": "user", "pause_expires_at": now_ms + 60 * minute + 5, "warnings_sent": {"60": True}},
        base
        | {"id": 5, "user_id": "100000000000000003", "role_id": str(ROLE), "expires_at": now_ms}
        | {"paused": True, "paused_remaining_ms": 90 * minute, "pause_type": "global"},
        base | {"id": 9, "user_id": "100000000000000004", "role_id": str(ROLE), "expires_at": now_ms - minute},
        base
        | {"id": 10, "user_id": "100000000000000005", "role_id": str(ROLE), "expires_at": now_ms + 90 * minute, "guild_id": None},
    ]


def bad_rows(now_ms: int) -> list[dict]:
    good = rows_of(now_ms)[0]
    return [
        good | {"id": 11, "user_id": "abc"},
        good | {"id": 12, "user_id": "100000000000000006", "pause_type": "weird"},
        good | {"id": 13, "user_id": "100000000000000007", "warnings_sent": ["10"]},
        good | {"id": 14, "user_id": "100000000000000008", "paused": True, "paused_remaining_ms": None, "paused_at": None},
        good | {"id": 15},  # the same member and role as row 1
    ]


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_boostmon", *args, stdout=out)
    return out.getvalue()


def write_csv(path, rows) -> str:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            values = {k: ("" if v is None else v) for k, v in row.items()}
            values["paused"] = "t" if row["paused"] else "f"
            values["warnings_sent"] = json.dumps(row["warnings_sent"])
            writer.writerow(values | {"created_at": "2026-11-30 10:00:00+00", "updated_at": "2026-11-30 10:00:00+00"})
    return str(path)


def timer(member: int, guild: int = G) -> TimedRole:
    return TimedRole.objects.get(guild_id=guild, member_id=member, role_id=ROLE)


def check_mapped(now_ms: int) -> None:
    active = timer(100000000000000001)
    assert active.state == TimerState.ACTIVE
    assert active.expires_at == at(now_ms + 30 * 60_000 + 123)  # to the millisecond
    assert active.warn_channel_id == CHANNEL and active.issued_by_id == 500000000000000001
    assert active.warnings_sent == [60]  # sent stays sent
    assert active.next_warn_at == active.expires_at - timedelta(minutes=10)  # the next is the 10-minute one
    paused = timer(100000000000000002)
    assert (paused.state, paused.expires_at, paused.pause_kind) == (TimerState.PAUSED, None, PauseKind.MEMBER)
    assert paused.paused_remaining == timedelta(hours=2, milliseconds=7)  # not the stale expires_at
    assert paused.pause_until == at(now_ms + 60 * 60_000 + 5)
    global_pause = timer(100000000000000003)
    assert (global_pause.pause_kind, global_pause.pause_until) == (PauseKind.GLOBAL, None)
    past_due = timer(100000000000000004)
    assert past_due.state == TimerState.ACTIVE and past_due.expires_at == at(now_ms - 60_000)
    assert past_due.next_warn_at is None
    events = TimerEvent.objects.filter(timer__guild_id=G, kind=TimerEventKind.IMPORT)
    assert events.count() == TimedRole.objects.filter(guild_id=G).count()
    assert "imported from BoostMon (row id 1" in events.get(timer=active).detail


def test_it_maps_a_csv_export_exactly_and_a_second_run_changes_nothing(tmp_path):
    now_ms = ms(timezone.now())
    path = write_csv(tmp_path / "role_timers.csv", rows_of(now_ms))
    output = run("--csv", path, "--guild", str(NULL_GUILD))
    check_mapped(now_ms)
    assert timer(100000000000000005, guild=NULL_GUILD).expires_at == at(now_ms + 90 * 60_000)
    assert "timers: 5 imported, 0 updated, 0 unchanged, 0 refused" in output
    before = list(TimedRole.objects.order_by("pk").values())
    again = run("--csv", path, "--guild", str(NULL_GUILD))
    assert "timers: 0 imported, 0 updated, 5 unchanged, 0 refused" in again and "Nothing to change" in again
    assert list(TimedRole.objects.order_by("pk").values()) == before
    assert TimerEvent.objects.count() == 5


def test_it_refuses_rows_without_a_guild_unless_given_and_reports_bad_rows_by_id(tmp_path):
    now_ms = ms(timezone.now())
    output = run("--csv", write_csv(tmp_path / "t.csv", rows_of(now_ms) + bad_rows(now_ms)))
    check_mapped(now_ms)
    assert not TimedRole.objects.filter(member_id=100000000000000005).exists()
    for expected in (
        "refused timers row id 10 (line 6): guild_id is NULL; give --guild ID to import it",
        "refused timers row id 11 (line 7): user_id is 'abc', not a Discord id",
        "refused timers row id 12 (line 8): pause_type 'weird' is not user, global or NULL",
        "refused timers row id 13 (line 9): warnings_sent is ['10']",
        "refused timers row id 14 (line 10): a paused timer without paused_remaining_ms",
        "refused timers row id 15 (line 11): a second timer for member 100000000000000001",
        "timers: 4 imported, 0 updated, 0 unchanged, 6 refused",
    ):
        assert expected in output, expected


def test_it_writes_nothing_on_a_dry_run(tmp_path):
    now_ms = ms(timezone.now())
    path = write_csv(tmp_path / "t.csv", rows_of(now_ms))
    output = run("--csv", path, "--guild", str(NULL_GUILD), "--dry-run")
    assert "timers: 5 would be imported" in output and "Dry run: nothing was written." in output
    assert not TimedRole.objects.exists() and not TimerEvent.objects.exists()


def test_it_reads_the_older_data_json(tmp_path):
    now_ms = ms(timezone.now())
    data = {
        "100000000000000001": {
            "roles": {
                str(ROLE): {"expiresAt": now_ms + 5 * 60_000 + 1, "warnChannelId": str(CHANNEL), "warningsSent": {"10": True}},
                str(OTHER_ROLE): {"expiresAt": now_ms, "paused": True, "paused_at": now_ms, "paused_remaining_ms": 3_600_001},
            }
        },
        "100000000000000002": {"roles": {str(ROLE): {"warningsSent": {}}}},
        "100000000000000003": "nonsense",
    }
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data))
    output = run("--json", str(path))
    assert "guild_id is NULL; give --guild ID" in output and not TimedRole.objects.exists()
    output = run("--json", str(path), "--guild", str(G))
    running = timer(100000000000000001)
    assert running.expires_at == at(now_ms + 5 * 60_000 + 1) and running.warnings_sent == [60, 10]
    assert running.next_warn_at == running.expires_at - timedelta(minutes=1)
    frozen = TimedRole.objects.get(member_id=100000000000000001, role_id=OTHER_ROLE)
    assert frozen.paused_remaining == timedelta(milliseconds=3_600_001)
    assert "refused timers member 100000000000000002 role" in output and "expires_at is missing" in output
    assert "refused timers member 100000000000000003: no `roles` object" in output


@pytest.fixture
def boostmon_dsn():
    """A scratch PostgreSQL database with BoostMon's schema, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    name = f"ghe_boostmon_{os.getpid()}"
    try:
        admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("GUILDHALL_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is needed for --dsn: {exc}")
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is needed for --dsn: {exc}")
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        with psycopg.connect(dsn) as conn:
            conn.execute(SCHEMA)
        yield dsn
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_it_reads_boostmons_database_with_its_allowed_roles(boostmon_dsn, tmp_path):
    import psycopg
    from psycopg.types.json import Jsonb

    now_ms = ms(timezone.now())
    with psycopg.connect(boostmon_dsn) as conn:
        for row in rows_of(now_ms):
            values = [Jsonb(row[c]) if c == "warnings_sent" else row[c] for c in COLUMNS[:13]]
            conn.execute(f"INSERT INTO role_timers ({', '.join(COLUMNS[:13])}) VALUES ({', '.join(['%s'] * 13)})", values)
        conn.execute(
            "INSERT INTO timer_allowed_roles VALUES (%s, %s, 'Booster'), (%s, %s, 'VIP')",
            [str(G), str(ROLE), str(G), str(OTHER_ROLE)],
        )
    output = run("--dsn", boostmon_dsn)
    check_mapped(now_ms)
    assert "refused timers row id 10: guild_id is NULL" in output
    assert set(AllowedRole.objects.filter(guild_id=G).values_list("role_id", flat=True)) == {ROLE, OTHER_ROLE}
    assert "allowed roles: 2 imported" in output and "timers: 4 imported" in output
    # The same rows read from a CSV export are the same import: nothing changes.
    again = run("--csv", write_csv(tmp_path / "t.csv", rows_of(now_ms)[:4]))
    assert "timers: 0 imported, 0 updated, 4 unchanged" in again
    assert "allowed roles: 0 imported, 0 updated, 2 unchanged" in run("--dsn", boostmon_dsn)


def test_it_refuses_an_unreachable_database():
    with pytest.raises(Exception, match="Can't connect to BoostMon's database"):
        run("--dsn", "postgresql://postgres@127.0.0.1:1/nowhere")


def test_the_sweep_removes_past_due_roles_at_once_and_never_resends_a_sent_warning(discord_fake, guild, tmp_path):
    fake = discord_fake
    vip, channel = guild.role("VIP"), guild.channel("bot-log")
    now = timezone.now()
    now_ms = ms(now)
    for member in (ALICE, BOB):
        fake.set_member_roles(GUILD_ID, member.id, [vip.id])
    row = {"paused": False, "paused_at": None, "paused_remaining_ms": None, "guild_id": str(GUILD_ID), "pause_type": None}
    row |= {"pause_expires_at": None, "issued_by": None, "role_id": str(vip.id), "warn_channel_id": str(channel.id)}
    rows = [
        row | {"id": 1, "user_id": str(ALICE.id), "expires_at": now_ms + 30 * 60_000, "warnings_sent": {"60": True}},
        row
        | {"id": 2, "user_id": str(BOB.id), "expires_at": now_ms - 60_000, "warnings_sent": {"60": True, "10": True, "1": True}},
    ]
    run("--csv", write_csv(tmp_path / "t.csv", rows))
    clock = Clock(base=now)
    sweep_at(clock, timedelta(seconds=1))
    assert timer_state(BOB.id, vip.id) == TimerState.EXPIRED
    assert vip.id not in fake.member_roles(GUILD_ID, BOB.id)  # removed within the first pass
    assert [m for m in fake.messages if "ends" in m["content"]] == []  # the 60-minute warning was sent by BoostMon
    sweep_at(clock, timedelta(minutes=20, seconds=1))
    warnings = [m for m in fake.messages if f"<@{ALICE.id}>, your" in m["content"]]
    assert len(warnings) == 1 and warnings[0]["channel_id"] == channel.id  # the 10-minute one, once
    assert "0 imported, 0 updated, 2 unchanged" in run("--csv", str(tmp_path / "t.csv"))  # an expired one stays expired
    assert TimedRole.objects.filter(member_id=BOB.id).count() == 1


def timer_state(member_id: int, role_id: int) -> str:
    return TimedRole.objects.filter(member_id=member_id, role_id=role_id).latest("pk").state


def test_it_updates_a_timer_untouched_since_its_import_and_leaves_one_changed_here(tmp_path):
    from timers.services import timer_set

    now_ms = ms(timezone.now())
    rows = rows_of(now_ms)[:2]
    run("--csv", write_csv(tmp_path / "t.csv", rows))
    timer_set(guild_id=G, member_id=100000000000000002, role_id=ROLE, duration=timedelta(hours=1), actor_id=None)
    rows[0] = rows[0] | {"expires_at": now_ms + 45 * 60_000 + 1}
    rows[1] = rows[1] | {"paused_remaining_ms": 1}
    output = run("--csv", write_csv(tmp_path / "t.csv", rows))
    assert "timers: 0 imported, 1 updated, 0 unchanged, 1 refused" in output
    assert timer(100000000000000001).expires_at == at(now_ms + 45 * 60_000 + 1)
    assert "row id 4 (line 3): member 100000000000000002 already has a live timer" in output
    assert timer(100000000000000002).state == TimerState.ACTIVE  # the one set here stays as it was
