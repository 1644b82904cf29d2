"""The read replica on a real streaming pair (deploy/replica.sh), with the product in subprocesses.

Where a statement ran is read from each server's pg_stat_statements; where a read was served is
also seen in its data: with the replica's replay paused, a list from the replica still shows the
old value while a read that must see its own write shows the new one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path

import pytest
import requests

from tests.scale.conftest import ROOT, SCRIPT, ReplicaPair, Web, _port_free, manage, product_env

pytestmark = pytest.mark.postgres

GUILD = 100000000000000001
PASSWORD = "replica-pw-123"
PIN_COOKIE = "guildhall_primary"

SEED = f"""
from datetime import timedelta
from django.contrib.auth.models import User
from commands.services import command_alias_add, command_create, cookie_give, guild_settings_update
from ops.api_tokens import api_token_create
from timers.services import timer_set

user = User.objects.create_superuser("ops", password="{PASSWORD}")
_, key = api_token_create(user=user, name="replica tests", created_by=None)
guild_settings_update(guild_id={GUILD}, public_leaderboard=True)
for name in ("hello", "hello2"):
    command_create(guild_id={GUILD}, name=name, template="v1", author_id=1)
command_alias_add(guild_id={GUILD}, name="hello", alias="hi")
for giver in range(10, 14):
    cookie_give(guild_id={GUILD}, giver_id=giver, receiver_id=500)
cookie_give(guild_id={GUILD}, giver_id=10, receiver_id=501)
timer_set(guild_id={GUILD}, member_id=500, role_id=900, duration=timedelta(days=2), actor_id=1)
print(key)
"""

# (what, path, the table whose reads must run on the replica): every lag-tolerant read site.
READS = [
    ("admin list of commands", "/admin/commands/customcommand/", "commands_customcommand"),
    ("admin list of cookie counts", "/admin/commands/cookiebalance/", "commands_cookiebalance"),
    ("admin list of the ledger", "/admin/commands/cookieledger/", "commands_cookieledger"),
    ("admin list of timers", "/admin/timers/timedrole/", "timers_timedrole"),
    ("admin list of guild settings", "/admin/commands/guildsettings/", "commands_guildsettings"),
    ("staff leaderboard", f"/admin/ops/leaderboard/{GUILD}/", "commands_cookiebalance"),
    ("public leaderboard", f"/leaderboard/{GUILD}/", "commands_cookiebalance"),
    ("API commands list", f"/api/v1/guilds/{GUILD}/commands", "commands_customcommand"),
    ("API cookie counts", f"/api/v1/guilds/{GUILD}/cookies/balances", "commands_cookiebalance"),
    ("API leaderboard", f"/api/v1/guilds/{GUILD}/cookies/leaderboard", "commands_cookiebalance"),
    ("API ledger", f"/api/v1/guilds/{GUILD}/cookies/ledger", "commands_cookieledger"),
    ("API timers list", f"/api/v1/timers?guild_id={GUILD}", "timers_timedrole"),
    ("export of cookie counts", f"/admin/ops/exports/cookie-balances.csv?guild={GUILD}", "commands_cookiebalance"),
    ("export of commands (with aliases)", f"/admin/ops/exports/commands.jsonl?guild={GUILD}", "commands_commandalias"),
]


def selects(table: str) -> str:
    return f'SELECT%FROM "{table}"%'


class Product:
    def __init__(self, pair: ReplicaPair, base: Path, key: str) -> None:
        self.pair, self.base, self.key = pair, base, key

    def env(self, **extra: str) -> dict[str, str]:
        return product_env(self.pair, str(self.base / "data"), **extra)

    def web(self, name: str, **extra: str) -> Web:
        return Web(self.env(**extra), self.base / f"{name}.log")


@pytest.fixture(scope="module")
def product(replica_pair: ReplicaPair, tmp_path_factory) -> Product:
    base = tmp_path_factory.mktemp("replica-product")
    env = product_env(replica_pair, str(base / "data"))
    env.pop("DATABASE_REPLICA_URL")
    # The product runs with DEBUG off, as in production: its static files are collected once.
    collecting = subprocess.Popen(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"], cwd=ROOT, env=env, stderr=subprocess.PIPE
    )
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    key = manage(env, code=SEED).strip().splitlines()[-1]
    assert collecting.wait(timeout=120) == 0, collecting.stderr.read() if collecting.stderr else ""
    replica_pair.caught_up()
    return Product(replica_pair, base, key)


@pytest.fixture(scope="module")
def web(product: Product) -> Iterator[Web]:
    """Falls back quickly: 2 s of lag at most, the verdict checked every half second."""
    server = product.web("web", REPLICA_MAX_LAG_S="2", REPLICA_CHECK_INTERVAL_S="0.5")
    yield server
    server.stop()


def api(product: Product) -> requests.Session:
    """An API client with a token that keeps no cookies (as scripts usually don't)."""
    session = requests.Session()
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    session.headers["Authorization"] = f"Bearer {product.key}"
    return session


def staff(web: Web) -> requests.Session:
    """A browser logged in to the admin."""
    session = requests.Session()
    session.get(web.url + "/admin/login/", timeout=10)
    answer = session.post(
        web.url + "/admin/login/?next=/admin/",
        data={"username": "ops", "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"], "next": "/admin/"},
        headers={"Referer": web.url + "/admin/login/"},
        timeout=10,
    )
    assert answer.ok and "sessionid" in session.cookies, answer.text[:300]
    session.cookies.set(PIN_COOKIE, None)  # the login was a write: forget the pin it set
    return session


def replica_check(web: Web) -> dict:
    body = requests.get(web.url + "/health/ready", timeout=10).json()
    return body["checks"]["replica:lag"][0]


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.2)


def test_it_serves_every_lag_tolerant_read_from_the_replica(product, web):
    browser, client = staff(web), api(product)
    wait_for(lambda: replica_check(web)["status"] == "pass", 10, "the replica passes")
    for what, path, table in READS:
        product.pair.statements_reset()
        session = client if path.startswith("/api/") else browser
        answer = session.get(web.url + path, timeout=10)
        assert answer.status_code == 200, f"{what}: {answer.status_code} {answer.text[:300]}"
        assert product.pair.calls("replica", selects(table)) > 0, f"{what} did not read {table} on the replica"
        assert product.pair.calls("primary", selects(table)) == 0, f"{what} read {table} on the primary"
        # Sessions, users and tokens (who asks) are read on the primary.
        assert product.pair.calls("replica", selects("django_session")) == 0
    connected = product.pair.sql("replica", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'guildhall-replica'")
    assert connected[0][0] >= 1


def test_it_keeps_writes_and_reads_of_own_writes_on_the_primary(product):
    # Lag is tolerated here (10 minutes), so a paused replica stays in use and serves old data.
    tolerant = product.web("tolerant", REPLICA_MAX_LAG_S="600", REPLICA_CHECK_INTERVAL_S="0.5")
    pair, client = product.pair, api(product)
    commands = f"{tolerant.url}/api/v1/guilds/{GUILD}/commands"
    try:
        browser = staff(tolerant)
        # A process reads from the primary until its first check of the replica is done.
        wait_for(lambda: replica_check(tolerant)["status"] == "pass", 10, "the replica passes")
        pair.sql("replica", "SELECT pg_wal_replay_pause()")
        pair.statements_reset()

        # A write through the API, answered with what it stored (read back on the primary).
        changed = client.patch(f"{commands}/hello", json={"template": "v2"}, timeout=10)
        assert changed.status_code == 200 and changed.json()["template"] == "v2", changed.text[:300]
        assert pair.calls("primary", 'UPDATE "commands_customcommand"%') >= 1
        # A token client keeps no cookie; its token is pinned in the shared cache instead, so its
        # list shows its write (from the primary) while everyone else's still comes from the replica.
        pair.statements_reset()
        listed = {c["name"]: c["template"] for c in client.get(commands, timeout=10).json()["items"]}
        assert listed == {"hello": "v2", "hello2": "v1"}
        assert pair.calls("replica", selects("commands_customcommand")) == 0
        others = {c["name"]: c["template"] for c in browser.get(commands, timeout=10).json()["items"]}
        assert others == {"hello": "v1", "hello2": "v1"}
        assert pair.calls("replica", selects("commands_customcommand")) >= 1

        # A browser that writes reads from the primary afterwards (the pin cookie)...
        changed = browser.patch(
            f"{commands}/hello2", json={"template": "v3"}, headers={"X-CSRFToken": browser.cookies["csrftoken"]}, timeout=10
        )
        assert changed.status_code == 200, changed.text[:300]
        assert browser.cookies.get(PIN_COOKIE) == "1"
        listed = {c["name"]: c["template"] for c in browser.get(commands, timeout=10).json()["items"]}
        assert listed == {"hello": "v2", "hello2": "v3"}
        page = browser.get(f"{tolerant.url}/admin/commands/customcommand/?q={GUILD}", timeout=10)
        assert page.status_code == 200
        # ...and from the replica again once the pin is gone.
        browser.cookies.set(PIN_COOKIE, None)
        listed = {c["name"]: c["template"] for c in browser.get(commands, timeout=10).json()["items"]}
        assert listed == {"hello": "v1", "hello2": "v1"}

        # The bot's settings reload after a change, and a service's read-modify-write, see the change.
        out = manage(
            product.env(REPLICA_MAX_LAG_S="600"),
            code=f"""
import asyncio
from bots.guild_cache import GuildCache
from commands.selectors import cookie_balance, cookie_leaderboard
from commands.models import CustomCommand
from commands.services import cookie_give, guild_settings_update
from config.database import lag_tolerant_alias
from config.replicas import replica_health
replica_health(wait=True)  # this process's first check (until then it reads from the primary)
guild_settings_update(guild_id={GUILD}, prefix="?")
# A row read from the replica is saved on the primary (the router), not refused as read-only.
row = CustomCommand.objects.using(lag_tolerant_alias()).get(guild_id={GUILD}, name="hello")
print("READ_FROM", row._state.db, row.template)
row.note = "saved"
row.save(update_fields=["note"])
print("NOTE", CustomCommand.objects.get(pk=row.pk).note)
cache = GuildCache()
cookie_give(guild_id={GUILD}, giver_id=20, receiver_id=501)
print("ALIAS", lag_tolerant_alias())
print("PREFIX", asyncio.run(cache.settings({GUILD})).prefix)
print("BALANCE", cookie_balance(guild_id={GUILD}, member_id=501))
print("BOARD", dict((s.member_id, s.balance) for s in cookie_leaderboard(guild_id={GUILD}))[501])
""",
        )
        lines = dict(line.split(" ", 1) for line in out.splitlines() if line.split(" ")[0].isupper())
        assert lines["ALIAS"] == "replica"  # the replica was fit for lag-tolerant reads...
        assert lines["READ_FROM"] == "replica v1" and lines["NOTE"] == "saved"
        assert lines["PREFIX"] == "?"  # ...yet the reload saw the new prefix (primary)
        assert lines["BALANCE"] == "2"  # the give read and wrote the count on the primary
        assert lines["BOARD"] == "1"  # while the leaderboard came from the paused replica
        assert pair.calls("replica", selects("commands_guildsettings")) == 0
    finally:
        pair.sql("replica", "SELECT pg_wal_replay_resume()")
        tolerant.stop()
        # The token's pin lasts this server's 600 s lag limit: the next tests start without it.
        manage(product.env(), code="from django.core.cache import cache; cache.clear()")
    pair.caught_up()


def test_it_falls_back_to_the_primary_while_the_replica_is_down(product):
    # Checked every 3 s: the replica goes away while this process still holds it fit.
    drill = product.web("drill", REPLICA_MAX_LAG_S="2", REPLICA_CHECK_INTERVAL_S="3")
    pair, client = product.pair, api(product)
    balances = f"{drill.url}/api/v1/guilds/{GUILD}/cookies/balances"
    try:
        browser = staff(drill)
        wait_for(lambda: replica_check(drill)["status"] == "pass", 10, "the replica passes")
        assert client.get(balances, timeout=10).status_code == 200  # a replica connection is open
        pair.script("down")
        try:
            started = time.monotonic()
            answer = client.get(balances, timeout=10)
            assert answer.status_code == 200, answer.text[:300]
            assert time.monotonic() - started < 3, "a read waited on the dead replica"
            # The read failed on the replica, and was answered again from the primary.
            assert f"answering {balances.removeprefix(drill.url)} from the primary" in drill.log.read_text()
            check = replica_check(drill)
            assert check["status"] == "warn" and "does not answer" in check["output"], check
            assert str(pair.replica_port) not in check["output"]  # the address is logged, not shown without login
            assert requests.get(drill.url + "/health/ready", timeout=10).status_code == 200  # warn, not fail
            pair.statements_reset(("primary",))
            for path in (balances, f"{drill.url}/admin/commands/cookiebalance/", f"{drill.url}/leaderboard/{GUILD}/"):
                started = time.monotonic()
                session = client if "/api/" in path else browser
                assert session.get(path, timeout=10).status_code == 200, path
                assert time.monotonic() - started < 1, f"{path} waited on the dead replica"
            assert pair.calls("primary", selects("commands_cookiebalance")) >= 3
        finally:
            pair.script("up")
        wait_for(lambda: replica_check(drill)["status"] == "pass", 10, "the replica passes again")
        pair.statements_reset()
        assert client.get(balances, timeout=10).status_code == 200
        assert pair.calls("replica", selects("commands_cookiebalance")) >= 1
        assert pair.calls("primary", selects("commands_cookiebalance")) == 0
    finally:
        drill.stop()


def test_it_falls_back_while_the_replica_lags_and_returns_when_it_catches_up(product, web):
    pair, client = product.pair, api(product)
    balances = f"{web.url}/api/v1/guilds/{GUILD}/cookies/balances"
    wait_for(lambda: replica_check(web)["status"] == "pass", 10, "the replica passes")
    # An idle primary: the last replayed transaction grows older than the 2 s limit, yet the
    # replica has everything the primary wrote, so it is 0 s behind and stays in use.
    pair.caught_up()
    idle = pair.sql("replica", "SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8")[0][0]
    time.sleep(max(0.0, 2.6 - idle))
    check = replica_check(web)
    assert check["status"] == "pass" and check["observedValue"] == 0.0, check
    assert pair.sql("replica", "SELECT now() - pg_last_xact_replay_timestamp() > interval '2 s'")[0][0]
    pair.sql("replica", "SELECT pg_wal_replay_pause()")
    try:
        pair.sql("primary", "UPDATE commands_cookiebalance SET balance = 77 WHERE guild_id = %s AND member_id = 500", [GUILD])
        check = wait_for(lambda: (c := replica_check(web))["status"] == "warn" and c, 8, "the lag is reported")
        assert "behind the primary" in check["output"] and check["observedValue"] > 2, check
        pair.statements_reset()
        counts = {row["member_id"]: row["balance"] for row in client.get(balances, timeout=10).json()["items"]}
        assert counts[str(500)] == 77  # the primary's, not the paused replica's
        assert pair.calls("replica", selects("commands_cookiebalance")) == 0
    finally:
        pair.sql("replica", "SELECT pg_wal_replay_resume()")
    wait_for(lambda: replica_check(web)["status"] == "pass", 10, "the replica passes once it caught up")
    pair.statements_reset()
    counts = {row["member_id"]: row["balance"] for row in client.get(balances, timeout=10).json()["items"]}
    assert counts[str(500)] == 77
    assert pair.calls("replica", selects("commands_cookiebalance")) >= 1


def test_it_says_how_to_use_the_script(replica_pair):
    shown = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=10)
    assert shown.returncode == 0 and "pg_basebackup -R" in shown.stdout
    refused = subprocess.run([str(SCRIPT), "pair", "--dir", replica_pair.directory], capture_output=True, text=True, timeout=10)
    assert refused.returncode == 2 and "--primary-port" in refused.stderr
    status = subprocess.run([str(SCRIPT), "status", "--dir", replica_pair.directory], capture_output=True, text=True, timeout=10)
    assert "WAL receiver: streaming" in status.stdout


def test_it_makes_a_replica_of_a_given_primary_and_removes_only_that(replica_pair, tmp_path_factory):
    first, _, last = os.environ.get("GUILDHALL_REPLICA_PORTS", "5460-5469").partition("-")
    taken = (replica_pair.primary_port, replica_pair.replica_port)
    port = next(p for p in range(int(first), int(last or first) + 1) if p not in taken and _port_free(p))
    directory = tempfile.mkdtemp(prefix="guildhall-replica-", dir=os.environ.get("GUILDHALL_REPLICA_TMP", "/tmp"))
    os.chmod(directory, 0o755)
    made = subprocess.run(
        [str(SCRIPT), "replica", "--dir", directory, "--port", str(port), "--primary-port", str(replica_pair.primary_port)]
        + ["--database", "guildhall"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    try:
        assert made.returncode == 0, made.stderr
        assert made.stdout.strip().splitlines()[-1] == f"DATABASE_REPLICA_URL=postgres://postgres@127.0.0.1:{port}/guildhall"
        senders = replica_pair.sql("primary", "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
        assert senders[0][0] == 2
    finally:
        stopped = subprocess.run([str(SCRIPT), "stop", "--dir", directory], capture_output=True, text=True, timeout=90)
    assert stopped.returncode == 0, stopped.stderr
    assert not os.path.exists(directory)
    # The primary it copied is still up, with its own replica.
    streaming = lambda: replica_pair.sql("primary", "SELECT count(*) FROM pg_stat_replication")[0][0] == 1  # noqa: E731
    wait_for(streaming, 10, "the primary streams to its own replica only")
    assert replica_pair.sql("replica", "SELECT status FROM pg_stat_wal_receiver") == [("streaming",)]
