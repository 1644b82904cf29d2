"""Fault drills: PostgreSQL restarted under load, Redis stopped and brought back.

Each drill runs the product as in production (gunicorn, and ``manage.py runbot`` against the
fake Discord) on a PostgreSQL cluster and a Redis server this module starts itself on ports of
its own (GUILDHALL_FAULT_PG_PORTS, default 5470-5479; GUILDHALL_FAULT_REDIS_PORTS, 6470-6479),
never the shared ones, and stops at the end whatever happened.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import requests

from tests.bots.conftest import ADMIN, BOT, GUILD_ID, BotProcess
from tests.fake_discord import FakeDiscord, FakeGuild
from tests.scale.conftest import Web, free_port

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
DATABASE = "guildhall"
API = f"/api/v1/guilds/{GUILD_ID}/commands"

pytestmark = [pytest.mark.postgres]


def _ports(variable: str, default: str) -> list[int]:
    first, _, last = os.environ.get(variable, default).partition("-")
    found = []
    for port in range(int(first), int(last or first) + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
    if not found:
        pytest.fail(f"no free port in {variable} ({first}-{last})")
    return found


def _as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)


@dataclass
class Cluster:
    directory: str
    port: int

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def ctl(self, *args: str) -> None:
        done = _as_postgres([str(PG_BIN / "pg_ctl"), "-D", f"{self.directory}/data", "-w", "-t", "60", *args])
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        self.ctl("-l", f"{self.directory}/postgres.log", "-o", options, "start")

    def stop(self) -> None:
        self.ctl("-m", "fast", "stop")

    def sql(self, query: str, params: list | None = None) -> list[tuple]:
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=DATABASE, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    directory = tempfile.mkdtemp(prefix="guildhall-faults-pg-", dir="/tmp")
    os.chmod(directory, 0o755)
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    found = Cluster(directory, _ports("GUILDHALL_FAULT_PG_PORTS", "5470-5479")[0])
    made = _as_postgres([str(PG_BIN / "initdb"), "-D", f"{directory}/data", "-U", "postgres", "-A", "trust", "--no-sync"])
    assert made.returncode == 0, made.stdout + made.stderr
    try:
        found.start()
        with psycopg.connect(host="127.0.0.1", port=found.port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        yield found
    finally:
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", f"{directory}/data", "-m", "immediate", "stop"])
        shutil.rmtree(directory, ignore_errors=True)


class Redis:
    def __init__(self, directory: str, port: int) -> None:
        self.directory, self.port = directory, port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # With an append-only file, as a production Redis keeps its keys over a restart: a
        # version key written before the outage is still there after it, so only the
        # database stamp can tell the bot about a change made meanwhile.
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"]
            + ["--appendfsync", "always", "--dir", self.directory, "--logfile", f"{self.directory}/redis.log"],
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
            if done.stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise AssertionError("redis-server did not answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Redis]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed (apt-get install redis-server)")
    directory = tempfile.mkdtemp(prefix="guildhall-faults-redis-", dir="/tmp")
    found = Redis(directory, _ports("GUILDHALL_FAULT_REDIS_PORTS", "6470-6479")[0])
    found.start()
    try:
        yield found
    finally:
        found.stop()
        shutil.rmtree(directory, ignore_errors=True)


class ProductionWeb(Web):
    """gunicorn as the Procfile runs it: two sync workers."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            [gunicorn, "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--timeout", "60"],
            cwd=ROOT,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                assert self.process.poll() is None, f"gunicorn exited:\n{log.read_text()}"
                try:
                    requests.get(self.url + "/health", timeout=5)
                    return
                except requests.RequestException:
                    time.sleep(0.1)
            raise AssertionError(f"gunicorn did not answer in 30 s:\n{log.read_text()}")
        except BaseException:
            self.stop()  # never left running
            raise


@dataclass
class Product:
    env: dict[str, str]
    web: Web
    bot: BotProcess
    fake: FakeDiscord
    key: str
    data_dir: str
    logs: list[Path] = field(default_factory=list)

    def api(self, method: str, path: str = "", timeout: float = 15, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.key}"}
        return requests.request(method, self.web.url + API + path, headers=headers, timeout=timeout, **kwargs)

    def say(self, content: str, match, timeout: float = 20) -> dict:
        """Post ``content`` as the admin in #general; the bot's first new message that ``match``es."""
        guild = self.fake.guilds[GUILD_ID]
        seen = len(self.fake.messages)
        self.fake.send_message(GUILD_ID, guild.text_channel.id, ADMIN.id, content)
        try:
            return self.fake.wait_for(lambda: next((m for m in self.fake.messages[seen:] if match(m)), None), timeout=timeout)
        except AssertionError:
            if os.environ.get("FAULTS_DEBUG"):
                import signal

                self.bot.proc.send_signal(signal.SIGABRT)
                time.sleep(1)
            raise AssertionError(f"no reply to {content!r}\n--- bot log\n{self.bot.log()[-6000:]}") from None


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


_TOKEN = """
from django.contrib.auth.models import User
from ops.api_tokens import api_token_create
user, _ = User.objects.get_or_create(username="drill", defaults={"is_staff": True, "is_superuser": True})
print("KEY", api_token_create(user=user, name="fault drill", created_by=None)[1])
"""


@pytest.fixture
def product(cluster, redis_server, tmp_path) -> Iterator[Product]:
    guild = FakeGuild.typical(guild_id=GUILD_ID, bot_user=BOT, members=[ADMIN], admin_ids=[ADMIN.id])
    data_dir = tempfile.mkdtemp(prefix="guildhall-faults-data-")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_REPLICA_URL", "DISCORD_TOKEN")}
    env.update(
        DATABASE_URL=cluster.url,
        REDIS_URL=redis_server.url,
        GUILDHALL_DATA_DIR=data_dir,
        SECRET_KEY="fault-drills-" + "x" * 40,
        DEBUG="0",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
    )
    env.pop("DATABASE_POOLER", None)
    env.pop("DATABASE_DIRECT_URL", None)
    _manage(env, "migrate", "--noinput", "-v", "0")
    cluster.sql("TRUNCATE commands_customcommand, commands_commandalias, commands_guildsettings CASCADE")
    key = next(line.split()[1] for line in _manage(env, "shell", "-c", _TOKEN).splitlines() if line.startswith("KEY "))
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake:
        bot = BotProcess({**env, **fake.env(ready_timeout=0.1)}, tmp_path / "runbot.log")
        web = None
        try:
            assert fake.wait_for_ready_sent(40), bot.log()
            web = ProductionWeb(env, tmp_path / "web.log")
            yield Product(env, web, bot, fake, key, data_dir)
        finally:
            if web is not None:
                web.stop()
            bot.stop()
            shutil.rmtree(data_dir, ignore_errors=True)


def _reply_is(text: str):
    return lambda m: m.get("content") == text


class Load:
    """API writes (one new command each) and /health/ready probes, in threads, recorded."""

    def __init__(self, product: Product) -> None:
        self.product = product
        self.writes: list[tuple[float, str, int | None, float, str]] = []  # at, name, status, seconds, body
        self.probes: list[tuple[float, int | None, str, float]] = []  # at, status, database check, seconds
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._write), threading.Thread(target=self._probe)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _write(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            name, started = f"load{i}", time.monotonic()
            try:
                response = self.product.api("POST", json={"name": name, "template": f"reply {i}"}, timeout=20)
                status, body = response.status_code, response.text[:300]
            except requests.RequestException as exc:
                status, body = None, type(exc).__name__
            self.writes.append((started, name, status, time.monotonic() - started, body))
            time.sleep(0.05)

    def _probe(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                response = requests.get(self.product.web.url + "/health/ready", timeout=10)
                body = response.json()
                status, verdict = response.status_code, body["checks"]["database:responseTime"][0]["status"]
            except (requests.RequestException, ValueError):
                status, verdict = None, "no answer"
            self.probes.append((started, status, verdict, time.monotonic() - started))
            time.sleep(0.2)


def test_postgresql_restarted_under_load(product: Product, cluster: Cluster):
    assert product.api("POST", json={"name": "hello", "template": "Hello from memory"}).status_code == 201
    product.say("!!hello", _reply_is("Hello from memory"))
    # A command with a cooldown takes its cooldown in the database on every use.
    assert product.api("POST", json={"name": "slow", "template": "Slowly"}).status_code == 201
    assert product.api("PATCH", "/slow", json={"cooldown_seconds": 1}).status_code == 200
    product.say("!!cookies", lambda m: "cookie" in m.get("content", "").lower())
    time.sleep(2.5)  # the bots use a change within 2 s
    product.say("!!slow", _reply_is("Slowly"))
    with Load(product) as load:
        time.sleep(2)
        down_at = time.monotonic()
        cluster.stop()
        time.sleep(1)
        # Members meanwhile: a cached command still answers; one that needs the database gets a
        # short apology, not silence and not a traceback.
        product.say("!!hello", _reply_is("Hello from memory"))
        apology = product.say("!!cookies", lambda m: m.get("content", "").startswith("Sorry"))["content"]
        assert product.say("!!slow", lambda m: m.get("content") in ("Slowly", apology))["content"] == apology
        time.sleep(max(0.0, 8 - (time.monotonic() - down_at)))
        up_at = time.monotonic()
        cluster.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(at > up_at and verdict == "pass" for at, _, verdict, _ in load.probes):
            time.sleep(0.2)
        time.sleep(2)
    assert len(apology) < 120 and "Traceback" not in apology and "Error" not in apology, apology

    during = [p for p in load.probes if down_at + 0.5 < p[0] < up_at]
    assert during, load.probes
    assert all(status == 503 and verdict == "fail" for _, status, verdict, _ in during), during
    assert max(seconds for *_, seconds in during) < 2.0, during
    assert any(p[0] > up_at and p[1] == 200 and p[2] == "pass" for p in load.probes), load.probes[-10:]

    # Every write the API acknowledged is in the database; the others were refused politely and
    # fast (a 503 with Retry-After, never a 500 or a hang), and writes work again afterwards.
    acknowledged = {name for _, name, status, _, _ in load.writes if status == 201}
    stored = {row[0] for row in cluster.sql("SELECT name FROM commands_customcommand WHERE guild_id = %s", [GUILD_ID])}
    assert acknowledged <= stored, acknowledged - stored
    refused = [w for w in load.writes if w[2] != 201]
    assert refused, "no write met the outage"
    assert all(status == 503 for _, _, status, _, _ in refused), refused
    assert all("Traceback" not in body for *_, body in refused)
    waits = sorted(w[3] for w in refused)
    assert waits[len(waits) // 2] < 1.0 and waits[-1] < 5.0, refused  # no hanging: fast, at worst one pool wait (3 s)
    assert any(w[0] > up_at and w[2] == 201 for w in load.writes), load.writes[-5:]

    # The bot recovered by itself too.
    product.say("!!cookies", lambda m: "cookie" in m.get("content", "").lower() and not m["content"].startswith("Sorry"))
    assert product.bot.proc.poll() is None and product.web.process.poll() is None


def test_redis_stopped_and_brought_back(product: Product, redis_server: Redis):
    assert product.api("POST", json={"name": "greet", "template": "v1"}).status_code == 201
    product.say("!!greet", _reply_is("v1"))
    redis_server.stop()
    try:
        # Pages and the API still serve; the bot answers from its process cache.
        assert requests.get(product.web.url + "/health", timeout=5).status_code == 200
        assert product.api("GET").status_code == 200
        product.say("!!greet", _reply_is("v1"))
        # A change while Redis is down: saved and reported saved (never a 500 after the commit).
        changed = product.api("PATCH", "/greet", json={"template": "v2"})
        assert changed.status_code == 200, changed.text
        assert product.api("POST", json={"name": "created", "template": "new"}).status_code == 201
        assert product.api("GET", "/greet").json()["template"] == "v2"
    finally:
        redis_server.start()
    # The invalidation missed during the outage heals by itself, within the database check's
    # bound (10 s) plus the cache check's (2 s): Redis kept its old version key over the restart.
    back = time.monotonic()
    product.fake.wait_for(
        lambda: product.say("!!greet", lambda m: m.get("content") in ("v1", "v2"))["content"] == "v2",
        timeout=20,
        interval=0.5,
        message="the bot to use the change made while Redis was down",
    )
    assert time.monotonic() - back < 15
    # And the shared cache carries the next change again, within its 2 s check.
    assert product.api("PATCH", "/greet", json={"template": "v3"}).status_code == 200
    changed_at = time.monotonic()
    product.fake.wait_for(
        lambda: product.say("!!greet", lambda m: m.get("content") in ("v2", "v3"))["content"] == "v3",
        timeout=10,
        interval=0.2,
    )
    assert time.monotonic() - changed_at < 5

    # An outage the bot never noticed (no message while Redis was down): the version key it
    # compares came back unchanged, so only the database stamp tells it, within 10 s + 2 s.
    redis_server.stop()
    try:
        assert product.api("PATCH", "/greet", json={"template": "v4"}).status_code == 200
    finally:
        redis_server.start()
    back = time.monotonic()
    product.fake.wait_for(
        lambda: product.say("!!greet", lambda m: m.get("content") in ("v3", "v4"))["content"] == "v4",
        timeout=20,
        interval=0.5,
        message="the bot to find the change through the database stamp",
    )
    assert time.monotonic() - back < 15
    assert "Traceback" not in product.web.log.read_text()
