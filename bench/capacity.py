"""Capacity: the highest sustained message rate at which the whole product keeps bot replies
under 250 ms p99 with nothing failing, for each way of running it, and the DAU that is.

    .venv/bin/python bench/capacity.py                      # every setup, one after the other
    .venv/bin/python bench/capacity.py --setup sqlite       # one: sqlite | postgres | scaled
    [--step-seconds 20] [--start-rate 10] [--max-rate 640] [--bisect 2] [--discord-limits off|on]

Setups (each a fresh database of its own, dropped afterwards; no shared server is touched):
  sqlite    the default: one SQLite file, the file cache; web + one worker cluster + one bot
  postgres  PostgreSQL (a database on DATABASE_URL's server, default 127.0.0.1:5432) and
            Redis (REDIS_URL, default db 10); web + one cluster + one bot
  scaled    a primary and its streaming replica (deploy/replica.sh, ports 7900/7901),
            PgBouncer in transaction mode in front of the primary (deploy/pgbouncer.sh,
            port 7902), Redis; web + two clusters + two bot shards (SHARD_COUNT=2)

The load, through the fake Discord's gateway, in Discord's shape: per message sent, 60 %
chat (no reply), 20 % custom-command hits, 15 % cookie gives (`<@member>++`), 5 % `/timer
show`; timers expiring at a tenth of the message rate (a role removal and a notice each); a
dashboard/API read (cookie balances and command list through the API with a token, readiness)
for every tenth message. After an unmeasured warm-up (``--warmup-seconds`` at the start rate: the
first sight of each member writes its directory row and balance), a step sends at one rate for
``--step-seconds`` and then waits 5 s
for the last answers; it passes when the replies to command hits and cookie gives have a p99
under 250 ms and nothing failed (every message answered, every expiry done, no web error, no
traceback in a log). Rates double from ``--start-rate`` until a step fails, then bisect.

Discord's limits (``--discord-limits``): ``off`` (the default) measures the product: the fake
advertises buckets that never fill (``FakeDiscord(unlimited=True)``) and the product's own hold
on Discord's global limit (50 requests/s per bot token, ``DISCORD_GLOBAL_RATE_LIMIT``) is raised
out of reach. ``on`` measures what Discord allows one bot token on this load: the fake enforces
Discord's limits (global 50/s, per-route buckets with fixed windows, ``tests/fake_discord/ratelimits.py``)
and the product holds itself to them. (With the fake's plain default headers, which claim a fresh
one-second window on every answer, the product's limiter never sees a window end while a channel
is busy, and every setup fell off at the same 60 messages/s.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get("CAPACITY_DB", "gh9_capacity")  # on the shared server (postgres) or the pair (scaled)
# The scaled setup's primary, replica and PgBouncer: the first three of GUILDHALL_REPLICA_PORTS.
_FIRST_PORT = int(os.environ.get("GUILDHALL_REPLICA_PORTS", "7900-7909").partition("-")[0])
PORTS = {"primary": _FIRST_PORT, "replica": _FIRST_PORT + 1, "pgbouncer": _FIRST_PORT + 2}
P99_LIMIT_MS = 250.0
MESSAGES_PER_MEMBER_PER_DAY = 20
PEAK_TO_AVERAGE = 4  # the busiest hour's rate over the day's average
SETTLE_SECONDS = 5.0


def dau(rate: float) -> int:
    """Daily active members whose peak traffic is ``rate`` messages a second."""
    return int(rate * 86_400 / (MESSAGES_PER_MEMBER_PER_DAY * PEAK_TO_AVERAGE))


# --- the environment of each setup, made before Django starts in the child --------------------
def setup_env(name: str, work: Path, discord_limits: str = "off") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DATABASE_REPLICA_URL")}
    # Inherited by the web, the clusters and the bots; "on" keeps Discord's 50 requests/s.
    env["DISCORD_GLOBAL_RATE_LIMIT"] = "50" if discord_limits == "on" else "1000000"
    if name == "sqlite":
        env.update(GUILDHALL_DATA_DIR=str(work / "data"), CACHE_DIR=str(work / "cache"))
        (work / "data").mkdir(parents=True, exist_ok=True)
    elif name == "postgres":
        server = os.environ.get("CAPACITY_PG", "postgres://postgres@127.0.0.1:5432")
        subprocess.run(["psql", server + "/postgres", "-qc", f"DROP DATABASE IF EXISTS {BENCH_DB}"], check=True)
        subprocess.run(["psql", server + "/postgres", "-qc", f"CREATE DATABASE {BENCH_DB}"], check=True)
        env.update(DATABASE_URL=f"{server}/{BENCH_DB}", REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/10"))
    elif name == "scaled":
        pair = work / "pair"
        subprocess.run(
            ["bash", "deploy/replica.sh", "pair", "--dir", str(pair), "--primary-port", str(PORTS["primary"]),
             "--replica-port", str(PORTS["replica"]), "--database", BENCH_DB],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            ["bash", "deploy/pgbouncer.sh", "start", "--dir", str(work / "pgbouncer"), "--port", str(PORTS["pgbouncer"]),
             "--pg-port", str(PORTS["primary"]), "--pool-size", "20"],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        env.update(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{PORTS['pgbouncer']}/{BENCH_DB}",
            DATABASE_POOLER="pgbouncer",
            DATABASE_DIRECT_URL=f"postgres://postgres@127.0.0.1:{PORTS['primary']}/{BENCH_DB}",
            DATABASE_REPLICA_URL=f"postgres://postgres@127.0.0.1:{PORTS['replica']}/{BENCH_DB}",
            REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/10"),
        )
    else:
        raise SystemExit(f"unknown setup {name!r}: sqlite, postgres or scaled")
    return env


def teardown_env(name: str, work: Path) -> None:
    if name == "postgres":
        server = os.environ.get("CAPACITY_PG", "postgres://postgres@127.0.0.1:5432")
        subprocess.run(["psql", server + "/postgres", "-qc", f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)"])
    elif name == "scaled":
        subprocess.run(["bash", "deploy/pgbouncer.sh", "stop", "--dir", str(work / "pgbouncer")], cwd=ROOT)
        subprocess.run(["bash", "deploy/replica.sh", "stop", "--dir", str(work / "pair")], cwd=ROOT)
    shutil.rmtree(work, ignore_errors=True)


# --- the child: one setup, stepped -------------------------------------------------------------
@dataclass
class Step:
    rate: float
    sent: int = 0
    replies: list[float] = field(default_factory=list)
    unanswered: int = 0
    expiries_due: int = 0
    expiries_left: int = 0
    web_reads: int = 0
    errors: list[str] = field(default_factory=list)
    p99_hits: float = 0.0  # custom-command replies (no database)
    p99_gives: float = 0.0  # cookie replies (a write each)
    too_many: int = 0  # 429s the fake sent (only with --discord-limits on)
    rest_per_s: float = 0.0  # REST requests the fake answered a second during the step

    @property
    def p99(self) -> float:
        from tests.bots.sweeper_fixtures import percentile

        return percentile(self.replies, 0.99) if self.replies else float("inf")

    @property
    def passed(self) -> bool:
        return self.p99 < P99_LIMIT_MS and not self.errors and not self.unanswered and not self.expiries_left


class Load:
    """One step's traffic at ``rate`` messages a second, with its web reads and its expiring timers."""

    def __init__(self, fake, web_url: str, api_key: str, rate: float, seconds: float, seq: int) -> None:
        self.fake, self.web_url, self.api_key = fake, web_url, api_key
        self.rate, self.seconds, self.seq = rate, seconds, seq
        self.hits: dict[str, int] = {}  # token -> trigger snowflake
        self.gives: dict[int, int] = {}  # receiver -> trigger snowflake (one give per receiver a step)
        self.errors: list[str] = []
        self.sent = 0
        self.web_reads = 0

    def run(self) -> None:
        from bench.soak import chatters

        rng = random.Random(self.seq)
        gs = list(self.fake.guilds.values())
        pools = {g.id: rng.sample(chatters(g), len(chatters(g))) for g in gs}
        interval, start = 1.0 / self.rate, time.monotonic()
        reader = threading.Thread(target=self._reads, args=(start + self.seconds,), daemon=True)
        reader.start()
        n = 0
        while time.monotonic() < start + self.seconds:
            g = gs[n % len(gs)]
            author = chatters(g)[rng.randrange(len(chatters(g)))]
            kind = rng.random()
            try:
                if kind < 0.60:
                    self.fake.send_message(g.id, g.text_channel.id, author, f"chatting about thing {n}, nothing to see")
                elif kind < 0.80:
                    token = f"{self.seq}-{n}"
                    sent = self.fake.send_message(g.id, g.text_channel.id, author, f"!!soak {token}")
                    self.hits[token] = int(sent["id"])
                elif kind < 0.95 and pools[g.id]:
                    receiver = pools[g.id].pop()
                    if receiver == author:
                        receiver = pools[g.id].pop() if pools[g.id] else None
                    if receiver is not None:
                        sent = self.fake.send_message(g.id, g.text_channel.id, author, f"thanks <@{receiver}>++")
                        self.gives[receiver] = int(sent["id"])
                else:
                    self.fake.send_slash(g.id, g.text_channel.id, author, "timer", [("show", {})])
            except Exception as exc:
                self.errors.append(f"send: {exc!r}")
            self.sent += 1
            n += 1
            pause = start + n * interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        reader.join(15)

    def _reads(self, until: float) -> None:
        import requests

        session = requests.Session()
        headers = {"Authorization": f"Bearer {self.api_key}"}
        guild_ids = list(self.fake.guilds)
        period, n = 10.0 / self.rate, 0
        while time.monotonic() < until:
            g = guild_ids[n % len(guild_ids)]
            path = ("/health/ready", f"/api/v1/guilds/{g}/cookies/balances", f"/api/v1/guilds/{g}/commands")[n % 3]
            n += 1
            try:
                response = session.get(self.web_url + path, headers=headers, timeout=10)
                if response.status_code != 200:
                    self.errors.append(f"GET {path}: {response.status_code}")
            except Exception as exc:
                self.errors.append(f"GET {path}: {exc!r}")
            self.web_reads += 1
            time.sleep(period)


GIVE_REPLY = re.compile(r"<@(\d+)> has -?\d+ :cookie:")


def measure(fake, load: Load, seen: int) -> tuple[list[float], int]:
    """Reply latencies (ms, from the snowflakes) of this step's hits and gives, and how many were never answered."""
    from bench.soak import snowflake_ms

    hit_ms, give_ms = {}, {}
    for m in fake.messages[seen:]:
        content = m["content"]
        if content.startswith("soak "):
            token = content[5:]
            if token in load.hits and token not in hit_ms:
                hit_ms[token] = snowflake_ms(m["id"]) - snowflake_ms(load.hits[token])
        elif (found := GIVE_REPLY.match(content)) is not None:
            receiver = int(found.group(1))
            if receiver in load.gives and receiver not in give_ms:
                give_ms[receiver] = snowflake_ms(m["id"]) - snowflake_ms(load.gives[receiver])
    unanswered = len(load.hits) - len(hit_ms) + len(load.gives) - len(give_ms)
    return list(hit_ms.values()), list(give_ms.values()), unanswered


def _p99(values: list[float]) -> float:
    from tests.bots.sweeper_fixtures import percentile

    return percentile(values, 0.99) if values else float("nan")


def seed_timers(fake, rate: float, seconds: float, seq: int) -> int:
    """Timers of members holding VIP that expire during the step: a tenth of the message rate."""
    from datetime import timedelta

    from django.utils import timezone

    from timers.models import TimedRole, TimerState

    count = max(1, int(rate * seconds / 10))
    now, rows = timezone.now(), []
    gs = list(fake.guilds.values())
    for i in range(count):
        g = gs[i % len(gs)]
        member = 700_000_000_000_000_000 + seq * 100_000 + i
        vip = g.role("VIP").id
        fake.add_member(g.id, _holder(member), [vip])
        rows.append(
            TimedRole(guild_id=g.id, member_id=member, role_id=vip, state=TimerState.ACTIVE,
                      expires_at=now + timedelta(seconds=1 + seconds * i / count),
                      warn_channel_id=g.channel("bot-log").id, warnings_sent=[60, 10, 1])
        )  # fmt: skip
    TimedRole.objects.bulk_create(rows)
    return count


def _holder(member_id: int):
    from tests.fake_discord import FakeUser

    return FakeUser(id=member_id, name=f"holder{member_id % 100_000}")


def log_errors(paths: list[Path], offsets: dict[Path, int]) -> list[str]:
    found = []
    for path in paths:
        text = path.read_text(errors="replace") if path.exists() else ""
        new, offsets[path] = text[offsets.get(path, 0) :], len(text)
        found += [f"{path.name}: {line[:200]}" for line in new.splitlines() if "Traceback" in line or " ERROR " in line]
    return found


def child(name: str, args) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import _setup  # noqa: F401  (Django set-up, on this setup's environment)
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from bench.soak import SoakConfig, prepare
    from bench.soak import guilds as soak_guilds
    from ops.api_tokens import api_token_create
    from tests.api.conftest import grant
    from tests.bots.conftest import BOT, BotProcess, bot_env
    from tests.bots.shard_fixtures import Shards
    from tests.bots.sweeper_fixtures import start_clusters
    from tests.fake_discord import FakeDiscord
    from tests.scale.conftest import Web
    from timers.models import TimedRole, TimerState

    call_command("migrate", verbosity=0)
    work = Path(tempfile.mkdtemp(prefix=f"guildhall-capacity-{name}-"))
    scaled = name == "scaled"
    config = SoakConfig(timers=0)
    results: list[Step] = []
    from tests.fake_discord.ratelimits import RateLimits

    limits = {"rate_limits": RateLimits()} if args.discord_limits == "on" else {"unlimited": True}
    with FakeDiscord(guilds=soak_guilds(config), bot_user=BOT, **limits) as fake:
        prepare(fake, config)
        user = grant(User.objects.create_user("capacity", is_staff=True),
                     "commands.view_cookiebalance", "commands.view_customcommand")  # fmt: skip
        _, key = api_token_create(user=user, name="capacity", created_by=None)
        env = bot_env(fake)
        processes, clusters, web, shards = [], [], None, None
        try:
            web = Web(env, work / "web.log", workers=2)
            clusters = start_clusters(fake, work, ["cap-a", "cap-b"] if scaled else ["cap-a"], queue="guildhall-capacity")
            if scaled:
                shards = Shards(fake, work)
                for shard_id in range(2):
                    shards.start(shard_id)
                processes = shards.all
            else:
                processes = [BotProcess(env, work / "runbot.log")]
            if not fake.wait_for_ready_sent(60, count=len(processes)):
                raise SystemExit("the bot never identified")
            for g in fake.guilds.values():  # every guild answers before the first step
                fake.wait_for(lambda g=g: _pinged(fake, g), timeout=60, interval=1.0, message="ping")
            clusters[0].enqueue_sweep(10)
            logs = [work / "web.log", *(c.log_path for c in clusters), *(p.log_path for p in processes)]
            offsets: dict[Path, int] = {}
            log_errors(logs, offsets)

            def step(rate: float, seq: int, warmup: bool = False) -> Step:
                result = Step(rate)
                result.expiries_due = seed_timers(fake, rate, args.step_seconds, seq)
                seen, limited, asked = len(fake.messages), len(fake.rate_limited), len(fake.requests)
                load = Load(fake, web.url, key, rate, args.step_seconds, seq)
                load.run()
                result.too_many = len(fake.rate_limited) - limited
                result.rest_per_s = (len(fake.requests) - asked) / args.step_seconds
                time.sleep(SETTLE_SECONDS)
                result.sent, result.web_reads = load.sent, load.web_reads
                hits, gives, result.unanswered = measure(fake, load, seen)
                result.replies = hits + gives
                result.p99_hits, result.p99_gives = _p99(hits), _p99(gives)
                result.expiries_left = TimedRole.objects.filter(state=TimerState.ACTIVE).count()
                result.errors = load.errors + log_errors(logs, offsets)
                if result.expiries_left:  # let the backlog finish before the next step
                    wait_until = time.monotonic() + 60
                    while TimedRole.objects.filter(state=TimerState.ACTIVE).exists() and time.monotonic() < wait_until:
                        time.sleep(0.5)
                print(json.dumps({"setup": name, "warmup" if warmup else "step": step_dict(result)}), flush=True)
                return result

            rate, seq, best, worst = args.start_rate, 0, None, None
            if args.warmup_seconds:  # first sight of every member (directory rows, balances): not the sustained rate
                saved, args.step_seconds = args.step_seconds, args.warmup_seconds
                seq += 1
                step(args.start_rate, seq, warmup=True)
                args.step_seconds = saved
            while rate <= args.max_rate:
                seq += 1
                results.append(step(rate, seq))
                if not results[-1].passed:
                    worst = rate
                    break
                best = rate
                rate *= 2
            for _ in range(args.bisect if best is not None and worst is not None else 0):
                seq += 1
                middle = round((best + worst) / 2)
                results.append(step(middle, seq))
                best, worst = (middle, worst) if results[-1].passed else (best, middle)
        finally:
            for p in processes:
                p.stop()
            for c in clusters:
                c.stop()
            if web is not None:
                web.stop()
            if os.environ.get("CAPACITY_KEEP_LOGS"):  # a directory: the processes' logs are copied there
                shutil.copytree(work, Path(os.environ["CAPACITY_KEEP_LOGS"]) / name, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("*.sqlite3*", "cache"))  # fmt: skip
            shutil.rmtree(work, ignore_errors=True)
    passed = [r.rate for r in results if r.passed]
    print(json.dumps({"setup": name, "sustained": max(passed, default=0)}), flush=True)


def _pinged(fake, g) -> bool:
    from bench.soak import chatters

    before = len(fake.messages)
    fake.send_message(g.id, g.text_channel.id, chatters(g)[0], "!!ping")
    time.sleep(0.5)
    return any(m["content"].startswith("Pong") for m in fake.messages[before:])


def step_dict(s: Step) -> dict:
    return {
        "rate": s.rate, "sent": s.sent, "p99_ms": s.p99, "p99_hits_ms": s.p99_hits, "p99_gives_ms": s.p99_gives,
        "replies": len(s.replies), "unanswered": s.unanswered,
        "expiries": s.expiries_due, "expiries_left": s.expiries_left, "web_reads": s.web_reads,
        "errors": s.errors[:5], "n_errors": len(s.errors), "passed": s.passed, "429s": s.too_many,
        "rest_per_s": s.rest_per_s,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--setup", choices=["sqlite", "postgres", "scaled"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--step-seconds", type=float, default=20)
    parser.add_argument("--start-rate", type=float, default=10)
    parser.add_argument("--max-rate", type=float, default=640)
    parser.add_argument("--bisect", type=int, default=2)
    parser.add_argument("--discord-limits", choices=["off", "on"], default="off")
    parser.add_argument("--warmup-seconds", type=float, default=10)
    args = parser.parse_args()
    if args.child:
        child(args.setup, args)
        return
    names = [args.setup] if args.setup else ["sqlite", "postgres", "scaled"]
    rows = []
    for name in names:
        work = Path(tempfile.mkdtemp(prefix=f"guildhall-capacity-env-{name}-"))
        work.chmod(0o755)  # the clusters and PgBouncer run as the postgres user
        try:
            env = setup_env(name, work, args.discord_limits)
            argv = [sys.executable, str(Path(__file__)), "--child", "--setup", name, "--step-seconds",
                    str(args.step_seconds), "--start-rate", str(args.start_rate), "--max-rate", str(args.max_rate),
                    "--bisect", str(args.bisect), "--discord-limits", args.discord_limits,
                    "--warmup-seconds", str(args.warmup_seconds)]  # fmt: skip
            proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
            sustained, steps = 0.0, []
            assert proc.stdout is not None
            for line in proc.stdout:
                if not line.startswith("{"):
                    continue
                data = json.loads(line)
                if "warmup" in data:
                    print(f"{name}: warm-up at {data['warmup']['rate']:g}/s, p99 {data['warmup']['p99_ms']:.0f} ms", flush=True)
                elif "step" in data:
                    s = data["step"]
                    steps.append(s)
                    print(f"{name}: {s['rate']:g}/s sent {s['sent']} p99 {s['p99_ms']:.0f} ms (hits {s['p99_hits_ms']:.0f},"
                          f" gives {s['p99_gives_ms']:.0f}) unanswered {s['unanswered']}"
                          f" expiries left {s['expiries_left']} REST {s['rest_per_s']:.0f}/s 429s {s['429s']}"
                          f" errors {s['n_errors']} {s['errors'][:2]} -> "
                          f"{'pass' if s['passed'] else 'FAIL'}", flush=True)  # fmt: skip
                else:
                    sustained = data["sustained"]
            proc.wait()
            at = next((s for s in steps if s["rate"] == sustained), None)
            rows.append([name, f"{sustained:g}", f"{at['p99_ms']:.0f}" if at else "—", f"{dau(sustained):,}",
                         " ".join(f"{s['rate']:g}{'✔' if s['passed'] else '✘'}" for s in steps)])  # fmt: skip
        finally:
            teardown_env(name, work)
    sys.path.insert(0, str(ROOT / "bench"))
    from _setup import print_table

    print_table(
        f"Capacity, {args.step_seconds:g} s steps, replies p99 < {P99_LIMIT_MS:g} ms, Discord's limits {args.discord_limits}"
        f" — {os.cpu_count()} cores (shared)",
        ["setup", "sustained messages/s", "reply p99 ms there", f"DAU ({MESSAGES_PER_MEMBER_PER_DAY}/member/day, peak {PEAK_TO_AVERAGE}x)",
         "steps (messages/s)"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
