"""``manage.py move_database``: a community's database moved SQLite ↔ PostgreSQL, compared, then used.

The source is the test database (SQLite on the default run, PostgreSQL on the CI's
PostgreSQL run), filled through the services. Targets are a SQLite file in ``tmp_path``
and a PostgreSQL database each test creates at 127.0.0.1:5432 and drops, so both
directions run on both CI runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import dj_database_url
import psycopg
import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule, Task
from django_q.tasks import async_task

from commands.models import CookieLedger, CustomCommand
from commands.services import (
    command_alias_add,
    command_cooldown_take,
    command_create,
    command_update,
    command_uses_record,
    cookie_give,
    cookie_set,
    guild_settings_update,
)
from ops.api_tokens import api_token_check, api_token_create
from ops.models import HealthSnapshot, SweepRun
from ops.moves import database_move
from ops.moves.databases import SOURCE_ALIAS, database_alias, endpoint_from_alias, source_settings
from ops.moves.values import canonical
from timers.models import TimedRole, TimerState
from timers.services import allowed_role_add, report_set, timer_add, timer_clear, timer_pause, timer_set, timer_warnings_set
from timers.services.sweeps import sweep_claim_expiries, sweep_record_expiries

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(settings.BASE_DIR)  # the project as this test run imports it
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
GUILD = 900000000000000001
ROLE, OTHER_ROLE, CHANNEL = 910000000000000001, 910000000000000002, 920000000000000001
MEMBERS = [930000000000000000 + i for i in range(1, 9)]
BIG = 9_223_372_036_854_775_807  # a snowflake column's largest value
PASSWORD = "correct horse battery staple 42"


# --- databases -----------------------------------------------------------------------


def _admin(sql: str) -> None:
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture
def pg_target():
    """A fresh, empty PostgreSQL database; dropped afterwards."""
    name = f"ghd_move_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    yield f"{PG_SERVER}/{name}"
    for alias in list(connections.settings):
        if connections.settings[alias].get("NAME") == name:
            connections[alias].close()
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_target(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'moved.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def target_url(request):
    """Each test with this fixture runs once per target engine."""
    return request.getfixturevalue("sqlite_target" if request.param == "sqlite" else "pg_target")


def source_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def move(url: str, *args: str) -> str:
    out = io.StringIO()
    call_command("move_database", "--to", url, *args, stdout=out)
    return out.getvalue()


class Opened:
    """The target opened as a plain Django alias (not through ops.moves), for independent reads."""

    def __init__(self, url: str, alias: str = "moved") -> None:
        config = dj_database_url.parse(url)
        self.cm = database_alias(alias, config)

    def __enter__(self):
        return self.cm.__enter__()

    def __exit__(self, *exc):
        return self.cm.__exit__(*exc)


def concrete_models():
    return [m for m in apps.get_models(include_auto_created=True) if not m._meta.proxy and m._meta.managed]


def rows_of(alias: str) -> dict[str, list[tuple]]:
    """Every row of every table, every column, as the ORM reads it (sorted by primary key)."""
    tables = {}
    for model in concrete_models():
        names = [f.attname for f in model._meta.local_concrete_fields]
        values = list(model._base_manager.using(alias).values_list(*names))
        pk = names.index(model._meta.pk.attname)
        tables[model._meta.db_table] = sorted(values, key=lambda row: str(row[pk]).zfill(40))
    return tables


def target_state(url: str) -> str:
    """A fingerprint of the whole target database (or 'absent'), to prove a refusal changed nothing."""
    config = dj_database_url.parse(url)
    if config["ENGINE"].endswith("sqlite3"):
        path = Path(config["NAME"])
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"
    try:
        conn = psycopg.connect(url, connect_timeout=5)
    except psycopg.OperationalError:
        return "unreachable"
    with conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        return json.dumps(
            {
                t: conn.execute(f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM \"{t}\" t").fetchone()[0]
                for t in tables
            }
        )


# --- a community, filled through the services ---------------------------------------


def fill_community() -> dict:
    """Commands, cookies, timers in every state, settings, tokens, schedules, users and a login."""
    now = timezone.now()
    guild_settings_update(guild_id=GUILD, prefix="?", cookie_daily_cap=None, public_leaderboard=True)
    hello = command_create(guild_id=GUILD, name="hello", template="Hi {user}! ☕ «quoted»\nsecond line", author_id=MEMBERS[0])
    command_alias_add(guild_id=GUILD, name="hello", alias="hi")
    command_alias_add(guild_id=GUILD, name="hello", alias="hey")
    slow = command_create(
        guild_id=GUILD, name="slow", template="{random: a | b | c}", author_id=BIG, cooldown_seconds=30, cooldown_scope="channel"
    )
    command_update(guild_id=GUILD, name="slow", template="{random: a | b}", editor_id=MEMBERS[1])
    command_cooldown_take(command_pk=slow.pk, name="slow", seconds=30, scope="channel", member_id=MEMBERS[1], channel_id=CHANNEL)
    command_create(guild_id=GUILD, name="off", template="{args}", author_id=None, enabled=False, note="imported, needs review")
    command_uses_record(counts={hello.pk: 41, slow.pk: 1}, at=now - timedelta(microseconds=1))

    for i, receiver in enumerate(MEMBERS[1:]):
        cookie_give(guild_id=GUILD, giver_id=MEMBERS[0], receiver_id=receiver, message_id=BIG - i, now=now - timedelta(hours=i))
    cookie_give(guild_id=GUILD, giver_id=MEMBERS[2], receiver_id=MEMBERS[1], delta=-1, now=now)
    cookie_set(guild_id=GUILD, member_id=MEMBERS[3], balance=-5, actor_id=MEMBERS[0])

    timer_warnings_set(guild_id=GUILD, minutes=[120, 30, 5])
    allowed_role_add(guild_id=GUILD, role_id=ROLE, actor_id=MEMBERS[0])
    allowed_role_add(guild_id=GUILD, role_id=OTHER_ROLE, actor_id=None)
    day = timedelta(days=1)
    timer_set(guild_id=GUILD, member_id=MEMBERS[1], role_id=ROLE, duration=day, actor_id=MEMBERS[0], channel_id=CHANNEL)
    timer_add(guild_id=GUILD, member_id=MEMBERS[1], role_id=ROLE, duration=timedelta(hours=3), actor_id=MEMBERS[0])
    timer_set(guild_id=GUILD, member_id=MEMBERS[2], role_id=ROLE, duration=day, actor_id=None)
    timer_pause(guild_id=GUILD, member_id=MEMBERS[2], role_id=ROLE, actor_id=MEMBERS[0], duration=timedelta(hours=2))
    timer_set(guild_id=GUILD, member_id=MEMBERS[3], role_id=ROLE, duration=day, actor_id=None)
    timer_clear(guild_id=GUILD, member_id=MEMBERS[3], role_id=ROLE, actor_id=MEMBERS[0])
    past = now - timedelta(days=2)
    timer_set(guild_id=GUILD, member_id=MEMBERS[4], role_id=OTHER_ROLE, duration=day, actor_id=None, now=past)
    claimed = sweep_claim_expiries(owner="tests", now=now)
    sweep_record_expiries(outcomes=[(t.pk, "removed", "role removed ✓") for t in claimed], owner="tests", now=now)
    report_set(guild_id=GUILD, role_id=ROLE, channel_id=CHANNEL, interval_minutes=60, actor_id=MEMBERS[0])
    assert set(TimedRole.objects.values_list("state", flat=True)) == set(TimerState.values)

    call_command("setup_schedules", stdout=io.StringIO())
    async_task("math.floor", 1.5)  # a queued task (django_q_ormq)
    Task.objects.create(
        id=uuid.uuid4().hex,
        name="done",
        func="math.ceil",
        args=(2.5,),
        kwargs={"x": [1]},
        result=3,
        started=now,
        stopped=now,
        success=True,
    )
    SweepRun.objects.create(worker="w-1", started_at=now, finished_at=now, expired=1, latency_p50_ms=12.5)
    HealthSnapshot.objects.create(taken_at=now, vendor="sqlite", database_bytes=BIG, tables={"b": 1, "a": [1.5, "ü"]}, checks={})

    admin = User.objects.create_superuser("alice", "alice@example.org", PASSWORD)
    mods = Group.objects.create(name="mods")
    mods.permissions.add(*Permission.objects.filter(content_type__app_label="commands"))
    member = User.objects.create_user("bob", password=PASSWORD, is_staff=True)
    member.groups.add(mods)
    member.user_permissions.add(Permission.objects.get(codename="view_timedrole"))
    LogEntry.objects.create(
        user=admin,
        content_type=ContentType.objects.get_for_model(Group),
        object_id=str(mods.pk),
        object_repr="mods",
        action_flag=CHANGE,
        change_message=json.dumps([{"changed": {"fields": ["x"]}}]),
    )
    _, key = api_token_create(user=admin, name="ci", created_by=admin)
    assert api_token_check(key).user == admin
    api_token_create(user=admin, name="dashboard reader", created_by=None, lifetime=timedelta(days=7), read_only=True)

    browser = Client()
    assert browser.post("/admin/login/", {"username": "alice", "password": "wrong", "next": "/admin/"}).status_code == 200
    response = browser.post("/admin/login/", {"username": "alice", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302
    return {"key": key, "session": browser.cookies[settings.SESSION_COOKIE_NAME].value}


USE_ON_TARGET = r"""
import json, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
import django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
from django.contrib.auth.models import User
from django.test import Client
from commands.models import CookieLedger, CustomCommand
from commands.services import command_create, cookie_give
from ops.api_tokens import api_token_create
from timers.services import timer_set
from datetime import timedelta
args = json.loads(sys.argv[1])
old_session = Client()
old_session.cookies["sessionid"] = args["session"]
fresh = Client()
login = fresh.post("/admin/login/", {"username": "alice", "password": args["password"], "next": "/admin/"})
api = Client(headers={"Authorization": "Bearer " + args["key"]})
alice = User.objects.get(username="alice")
cookie_give(guild_id=args["guild"], giver_id=1, receiver_id=2)
print("RESULT " + json.dumps({
    "old_session": old_session.get("/admin/").status_code,
    "login": [login.status_code, login.get("Location")],
    "token": api.get(f"/api/v1/guilds/{args['guild']}/commands").status_code,
    "ids": {
        "user": User.objects.create_user("carol").pk,
        "command": command_create(guild_id=args["guild"], name="fresh", template="new", author_id=None).pk,
        "ledger": CookieLedger.objects.latest("pk").pk,
        "timer": timer_set(guild_id=args["guild"], member_id=3, role_id=args["role"], duration=timedelta(hours=1), actor_id=None).timer.pk,
        "token": api_token_create(user=alice, name="after the move", created_by=None)[0].pk,
    },
}))
"""


def use_on_target(url: str, filled: dict, tmp_path: Path) -> dict:
    """Run the product on the target, as ``DATABASE_URL=<target> make run`` would."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        DATABASE_URL=url, SECRET_KEY=settings.SECRET_KEY, CACHE_DIR=str(tmp_path / "cache"), GUILDHALL_DATA_DIR=str(tmp_path)
    )
    arg = json.dumps({"key": filled["key"], "session": filled["session"], "password": PASSWORD, "guild": GUILD, "role": ROLE})
    done = subprocess.run(
        [sys.executable, "-c", USE_ON_TARGET, arg], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


# --- the move ------------------------------------------------------------------------


def test_it_moves_every_table_row_by_row_and_the_product_runs_on_the_target(target_url, tmp_path):
    filled = fill_community()
    before = rows_of("default")
    out = move(target_url)
    assert "every table matches" in out
    for model in concrete_models():
        assert f"copy     {model._meta.db_table}" in out  # a decision printed for every table
    with Opened(target_url):
        after = rows_of("moved")
    assert after.keys() == before.keys()
    for table, rows in before.items():
        assert after[table] == rows, table
    assert before["timers_timedrole"] and before["ops_apitoken"] and before["django_session"] and before["axes_accesslog"]
    assert rows_of("default") == before  # the source is only read

    used = use_on_target(target_url, filled, tmp_path)
    assert used["old_session"] == 200  # a login made before the move still holds
    assert used["login"] == [302, "/admin/"]
    assert used["token"] == 200
    largest = {
        "user": User.objects.order_by("-pk").first().pk,
        "command": CustomCommand.objects.order_by("-pk").first().pk,
        "ledger": CookieLedger.objects.order_by("-pk").first().pk,
        "timer": TimedRole.objects.order_by("-pk").first().pk,
        "token": max(t.pk for t in apps.get_model("ops", "ApiToken").objects.all()),
    }
    for name, new_id in used["ids"].items():
        assert new_id > largest[name], name


def test_it_keeps_the_sources_next_ids_after_deleted_rows(target_url):
    fill_community()
    last = CookieLedger.objects.order_by("-pk").first()
    CookieLedger.objects.filter(pk=last.pk).delete()  # the source's sequence is past the largest id now
    move(target_url)
    with Opened(target_url):
        new = CookieLedger.objects.using("moved").create(
            guild_id=GUILD, receiver_id=1, delta=1, reason="give", created_at=timezone.now()
        )
    assert new.pk == last.pk + 1


def test_it_moves_there_and_back_to_the_same_rows(pg_target, tmp_path):
    fill_community()
    before = rows_of("default")
    move(pg_target)
    back = f"sqlite:///{tmp_path / 'back.sqlite3'}"
    with Opened(pg_target, alias="middle"):
        report = database_move(target_url=back, source_alias="middle")
    assert report.ok and len(report.tables) > 25
    with Opened(back):
        assert rows_of("moved") == before


def test_it_reports_a_table_no_model_owns_and_still_moves(sqlite_target):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE legacy_notes (id integer PRIMARY KEY, body text)")
        cursor.execute("INSERT INTO legacy_notes VALUES (1, 'from an old app')")
    try:
        out = move(sqlite_target)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE legacy_notes")
    assert "skip     legacy_notes  (no installed app's model owns it: not copied)" in out
    assert "migrate  django_migrations" in out
    assert "django_migrations (applied set)" in out and "every table matches" in out


def test_it_exits_non_zero_when_a_table_differs(sqlite_target, monkeypatch):
    from ops.moves import move as move_module

    fill_community()
    real = move_module.copy_table

    def lossy(source, target, spec, **kwargs):
        result = real(source, target, spec, **kwargs)
        if spec.table == "commands_cookieledger":
            with target.cursor() as cursor:  # a row lost on the way
                cursor.execute("DELETE FROM commands_cookieledger WHERE id = (SELECT MIN(id) FROM commands_cookieledger)")
        return result

    monkeypatch.setattr(move_module, "copy_table", lossy)
    out = io.StringIO()
    with pytest.raises(CommandError, match="verification failed: 1 table"):
        call_command("move_database", "--to", sqlite_target, stdout=out)
    line = next(line for line in out.getvalue().splitlines() if line.startswith("commands_cookieledger "))
    assert "MISMATCH" in line and "→" in line


def test_it_shows_progress_with_a_rate(sqlite_target):
    fill_community()
    out = move(sqlite_target, "--batch-size", "2")
    assert "copy commands_cookieledger" in out and "rows/s" in out and "100%" in out


# --- refusals: each changes nothing ---------------------------------------------------


def assert_refused(url: str, match: str, *args: str) -> None:
    source, target = rows_of("default"), target_state(url)
    with pytest.raises(CommandError, match=match):
        move(url, *args)
    assert rows_of("default") == source
    assert target_state(url) == target


def test_it_refuses_a_target_that_holds_data(target_url):
    fill_community()
    move(target_url)
    assert_refused(target_url, "already holds data .*--replace")


def test_it_replaces_only_after_the_typed_confirmation(target_url, monkeypatch):
    fill_community()
    move(target_url)
    command_create(guild_id=GUILD, name="later", template="added after the first move", author_id=None)
    monkeypatch.setattr("builtins.input", lambda: "yes")
    assert_refused(target_url, "not confirmed", "--replace")

    def no_terminal():
        raise EOFError

    monkeypatch.setattr("builtins.input", no_terminal)
    assert_refused(target_url, "not confirmed", "--replace")
    word = Path(dj_database_url.parse(target_url)["NAME"]).name
    monkeypatch.setattr("builtins.input", lambda: word)
    assert "every table matches" in move(target_url, "--replace")
    with Opened(target_url):
        assert CustomCommand.objects.using("moved").filter(name="later").exists()
        assert rows_of("moved") == rows_of("default")


def test_it_replaces_with_yes_without_asking(sqlite_target, monkeypatch):
    fill_community()
    move(sqlite_target)
    monkeypatch.setattr("builtins.input", lambda: pytest.fail("asked although --yes was given"))
    assert "every table matches" in move(sqlite_target, "--replace", "--yes")


def test_it_refuses_a_source_with_unapplied_migrations(target_url):
    fill_community()
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, app, name, applied FROM django_migrations WHERE app = 'timers' ORDER BY id DESC LIMIT 1")
        row = cursor.fetchone()
        cursor.execute("DELETE FROM django_migrations WHERE id = %s", [row[0]])
    try:
        assert_refused(target_url, f"unapplied migration.*timers.{row[2]}")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO django_migrations (id, app, name, applied) VALUES (%s, %s, %s, %s)", list(row))


@pytest.mark.parametrize(
    "url",
    [
        "postgres://postgres@127.0.0.1:1/ghd_nowhere",
        f"{PG_SERVER}/ghd_missing_database",
        "sqlite:////nonexistent-folder/x.sqlite3",
    ],
)
def test_it_refuses_a_target_it_cannot_reach(url):
    fill_community()
    assert_refused(url, "Can't reach the target")
    assert not Path("/nonexistent-folder").exists()


def test_it_refuses_a_target_file_that_is_not_a_database(tmp_path):
    fill_community()
    notes = tmp_path / "notes.sqlite3"
    notes.write_text("not a database, and it stays as it is\n")
    assert_refused(f"sqlite:///{notes}", "Can't reach the target .*not a database")


def test_it_refuses_the_source_itself():
    fill_community()
    url = source_url()
    assert_refused(url, "is the source database itself")
    if connection.vendor == "postgresql":
        assert_refused(url.replace("127.0.0.1", "localhost"), "is the source database itself")


def test_it_refuses_a_url_that_is_not_a_database():
    for url in ("mysql://u@h/db", "not a url", "sqlite://:memory:"):
        with pytest.raises(CommandError, match="URL"):
            move(url)


def test_it_opens_the_source_read_only():
    fill_community()
    with (
        database_alias(SOURCE_ALIAS, source_settings(endpoint_from_alias())) as source,
        pytest.raises(DatabaseError, match=r"(?i)read.?only"),
        source.cursor() as cursor,
    ):
        cursor.execute("UPDATE commands_customcommand SET usage_count = 0")
    assert CustomCommand.objects.filter(usage_count=41).exists()


# --- values compared the same way on both engines -------------------------------------


def test_it_compares_values_from_either_engine_in_one_form():
    from datetime import UTC, datetime
    from uuid import UUID

    from django.db import models

    def same(field, sqlite_value, pg_value):
        fn = canonical(field)
        assert fn(sqlite_value) == fn(pg_value)

    moment = datetime(2026, 12, 1, 10, 0, 0, 120000, tzinfo=UTC)
    same(models.DateTimeField(), "2026-12-01 10:00:00.120000", moment)
    same(models.DateTimeField(), "2026-12-01 10:00:00", moment.replace(microsecond=0))
    same(models.DateTimeField(), "2026-12-01T11:00:00.12+01:00", moment)
    same(models.DateTimeField(), "2026-12-01 10:00:00.120000", "2026-12-01 10:00:00.12+00")  # PostgreSQL's text
    same(models.DateTimeField(), "2026-12-01 10:00:00", "2026-12-01 10:00:00+00")
    same(models.DateTimeField(), "2026-12-01 10:00:00.791000", "2026-12-01 10:00:00.791+00")  # 26 characters too
    same(models.DurationField(), 90_000_001, timedelta(seconds=90, microseconds=1))
    same(models.JSONField(), '{"b": [1, 2], "a": "ü"}', '{"a": "ü", "b": [1, 2]}')
    same(models.BooleanField(), 1, True)
    same(models.UUIDField(), "12345678123456781234567812345678", UUID("12345678-1234-5678-1234-567812345678"))
    same(models.DecimalField(max_digits=6, decimal_places=2), 1.5, __import__("decimal").Decimal("1.50"))
    assert canonical(models.BigIntegerField()) is None  # integers and text need nothing
