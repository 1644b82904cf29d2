"""Discord's rate limits shared across processes (bots.ratelimit) against a fake that enforces them.

Four worker-style processes (tests/bots/role_batch_worker.py: DiscordRest + role_changes,
64 at a time like the timer engine) expire and grant 224 roles at once in six guilds. The
fake enforces Discord's shape (tests.fake_discord.ratelimits): 50 requests/s per token and
a member-roles bucket of 10 per second per guild. With the shared limiter (Redis) the only
429s allowed are the unavoidable ones (first request of a bucket nobody had seen), and the
throughput is at least 90% of the rate the fake's limits allow (see ``allowed_rate``). With
per-process limits instead (what four processes get without Redis) the same fleet draws
many 429s, which is why the limiter is shared. One process without Redis, or with Redis
unreachable, stays inside the limits on its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import discord
import pytest
import redis

from bots.rest import DiscordRest
from tests.bots.conftest import ADMIN, ALICE, BOB, BOT, GUILD_ID, ROOT, BotProcess, bot_env, wait_reply
from tests.fake_discord import FakeDiscord, FakeGuild
from tests.fake_discord.ratelimits import BucketLimit, RateLimits

WORKER = ROOT / "tests" / "bots" / "role_batch_worker.py"
GUILDS = 6
PROCESSES = 4
# 224 changes in all: four and a half seconds' worth at 50/s, so that the rate measured is not
# decided by which side of a window's edge the last few land on.
PER_PROCESS = 56
FIRST_GUILD = 900_000_000_000_000_000
FIRST_MEMBER = 910_000_000_000_000_000
ROLE_PATH = re.compile(r"/guilds/\d+/members/\d+/roles/\d+")
needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (runs on the PG+Redis run)")


def make_guilds() -> list[FakeGuild]:
    guilds = []
    for i in range(GUILDS):
        g = FakeGuild.with_many_members(
            guild_id=FIRST_GUILD + (i << 22), bot_user=BOT, count=PROCESSES * PER_PROCESS, first_user_id=FIRST_MEMBER
        )
        vip = g.role("VIP")
        for user_id in range(FIRST_MEMBER, FIRST_MEMBER + PROCESSES * PER_PROCESS):
            g.members[user_id] = [vip.id] if (user_id - FIRST_MEMBER) % 2 == 0 else []
        guilds.append(g)
    return guilds


def batches(guilds: list[FakeGuild], processes: int) -> list[list[dict]]:
    """Half the processes expire VIP (members holding it), half grant it; every change is distinct."""
    out: list[list[dict]] = [[] for _ in range(processes)]
    counters = [0, 0]  # next even (holding) / odd (not holding) member offset
    for p in range(processes):
        expiring = p % 2 == 0
        for k in range(PER_PROCESS):
            g = guilds[(p * PER_PROCESS + k) % GUILDS]
            parity = 0 if expiring else 1
            offset = 2 * counters[parity] + parity
            counters[parity] += 1
            out[p].append(
                {
                    "op": "remove" if expiring else "add",
                    "guild_id": g.id,
                    "user_id": FIRST_MEMBER + offset,
                    "role_id": g.role("VIP").id,
                }
            )
    return out


def worker_env(fake: FakeDiscord, mode: str, redis_url: str | None, tmp_path: Path, prefix: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(fake.env())
    env.update(
        {
            "DISCORD_RATE_LIMITS": mode,
            "CACHE_KEY_PREFIX": prefix or fresh_prefix(),
            "CACHE_DIR": str(tmp_path / "cache"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def fresh_prefix() -> str:
    """A key prefix of its own: a fresh view of the limits for each run."""
    return f"rltest-{uuid.uuid4().hex[:8]}"


def run_fleet(
    fake: FakeDiscord,
    work: list[list[dict]],
    tmp_path: Path,
    *,
    mode: str,
    redis_url: str | None,
    prefix: str = "",
    meanwhile: Callable[[], None] | None = None,
) -> dict:
    """Start one process per batch, release them at once (then run ``meanwhile``), return what they and the fake saw."""
    env = worker_env(fake, mode, redis_url, tmp_path, prefix)
    procs = []
    try:
        for i, batch in enumerate(work):
            path = tmp_path / f"batch{i}.json"
            path.write_text(json.dumps(batch))
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(WORKER), str(path)],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=open(tmp_path / f"worker{i}.log", "w"),
                    text=True,
                )
            )
        for i, proc in enumerate(procs):
            line = proc.stdout.readline()
            assert line.strip() == "ready", f"worker {i} did not log in:\n{(tmp_path / f'worker{i}.log').read_text()}"
        seen_requests, seen_429s = len(fake.requests), len(fake.rate_limited)
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        if meanwhile is not None:
            meanwhile()
        results = []
        for i, proc in enumerate(procs):
            out, _ = proc.communicate(timeout=90)
            assert proc.returncode == 0, f"worker {i} failed:\n{(tmp_path / f'worker{i}.log').read_text()}"
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    requests = [r for r in fake.requests[seen_requests:] if ROLE_PATH.fullmatch(r["path"])]
    return {"results": results, "requests": requests, "rate_limited": fake.rate_limited[seen_429s:]}


def allowed_rate(limits: RateLimits, guilds: int) -> float:
    """Role changes per second that the fake's limits allow in the steady state: the tighter of
    the global limit and the guilds' member-roles buckets together.

    A fresh window also lets one burst through at once, so a run of a few seconds may beat
    this rate; the floor it sets is what a fleet must keep up without 429s.
    """
    bucket = limits.buckets["member-roles"]
    return min(limits.global_limit / limits.global_window, guilds * bucket.limit / bucket.reset_after)


def figures(run: dict, limits: RateLimits) -> dict:
    done = [r for r in run["requests"] if r["status"] == 204]
    span = max(r["at"] for r in done) - min(r["at"] for r in run["requests"])
    allowed = allowed_rate(limits, GUILDS)
    avoidable = [r for r in run["rate_limited"] if not r["fresh"]]
    return {
        "done": len(done),
        "span_s": round(span, 3),
        "rate": round(len(done) / span, 1),
        "allowed_rate": allowed,
        "ratio": round(len(done) / span / allowed, 3),
        "avoidable_429s": len(avoidable),
        "fresh_429s": len(run["rate_limited"]) - len(avoidable),
    }


def assert_nothing_lost(fake: FakeDiscord, work: list[list[dict]], run: dict) -> None:
    """Every change happened on the fake exactly once, and every process says it was done."""
    wanted = sorted((c["op"], c["guild_id"], c["user_id"]) for batch in work for c in batch)
    happened = sorted(("add" if c["method"] == "PUT" else "remove", c["guild_id"], c["user_id"]) for c in fake.role_changes)
    assert happened == wanted
    assert sum(r["done"] for r in run["results"]) == len(wanted) and all(r["refused"] == 0 for r in run["results"])
    for change in (c for batch in work for c in batch):
        holds = change["role_id"] in fake.member_roles(change["guild_id"], change["user_id"])
        assert holds == (change["op"] == "add"), change


@pytest.fixture
def guilds() -> list[FakeGuild]:
    return make_guilds()


@pytest.fixture
def prefix():
    """A key prefix of the test's own in Redis, and its keys deleted afterwards."""
    chosen = fresh_prefix()
    yield chosen
    url = os.environ.get("REDIS_URL")
    if url:
        client = redis.Redis.from_url(url)
        try:
            for key in client.scan_iter(match=f"{chosen}:*", count=1000):
                client.delete(key)
        finally:
            client.close()


@needs_redis
def test_it_keeps_four_processes_inside_discords_limits_together(guilds, tmp_path, prefix):
    limits = RateLimits()
    work = batches(guilds, PROCESSES)
    with FakeDiscord(guilds=guilds, bot_user=BOT, rate_limits=limits) as fake:
        run = run_fleet(fake, work, tmp_path, mode="shared", redis_url=os.environ["REDIS_URL"], prefix=prefix)
        numbers = figures(run, limits)
        print(f"shared limiter, {PROCESSES} processes: {numbers}")
        assert_nothing_lost(fake, work, run)
    assert numbers["avoidable_429s"] == 0, run["rate_limited"]
    assert numbers["ratio"] >= 0.9, numbers


def test_it_shows_four_processes_limiting_on_their_own_drawing_429s(guilds, tmp_path):
    limits = RateLimits()
    work = batches(guilds, PROCESSES)
    with FakeDiscord(guilds=guilds, bot_user=BOT, rate_limits=limits) as fake:
        run = run_fleet(fake, work, tmp_path, mode="local", redis_url=None)
        numbers = figures(run, limits)
        print(f"per-process limits, {PROCESSES} processes: {numbers}")
        assert_nothing_lost(fake, work, run)  # discord.py waits the 429s out: slower, nothing lost
    # Each process keeps 50/s on its own, so together they offer ~4x what the token may send.
    assert numbers["avoidable_429s"] >= 50, numbers


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_it_shares_the_limits_between_the_bot_and_the_workers(guilds, tmp_path, prefix):
    """runbot's replies and two workers' role changes count in the same window: the bot's client is hooked too."""
    chat = FakeGuild.typical(guild_id=GUILD_ID, bot_user=BOT, members=[ADMIN, ALICE, BOB], admin_ids=[ADMIN.id])
    limits = RateLimits()
    work = batches(guilds, 2)
    redis_url = os.environ["REDIS_URL"]
    pings = 30
    with FakeDiscord(guilds=[chat, *guilds], bot_user=BOT, rate_limits=limits) as fake:
        env = bot_env(fake, CACHE_KEY_PREFIX=prefix, DISCORD_RATE_LIMITS="shared", REDIS_URL=redis_url)
        bot = BotProcess(env, tmp_path / "runbot.log")
        try:
            assert fake.wait_for_ready_sent(30), bot.log()
            wait_reply(fake, ADMIN, "!!ping", lambda m: m["content"].startswith("Pong"), timeout=20, process=bot)
            seen = len(fake.messages)

            def chatter() -> None:  # members talk to the bot while the workers run
                for i in range(pings):
                    fake.send_message(GUILD_ID, chat.text_channel.id, (ALICE, BOB)[i % 2].id, "!!ping")

            run = run_fleet(fake, work, tmp_path, mode="shared", redis_url=redis_url, prefix=prefix, meanwhile=chatter)
            fake.wait_for(
                lambda: sum(m["content"].startswith("Pong") for m in fake.messages[seen:]) >= pings,
                timeout=30,
                message="the bot's replies",
            )
            assert_nothing_lost(fake, work, run)
            limited = fake.rate_limited
        finally:
            bot.stop()
    print(f"runbot + 2 workers: {len(run['requests'])} role requests, {pings} replies, 429s: {limited}")
    assert [r for r in limited if not r["fresh"]] == []


@pytest.mark.parametrize("redis_url", [None, "redis://127.0.0.1:9/0"], ids=["no-redis", "redis-unreachable"])
def test_it_keeps_one_process_inside_the_limits_without_redis(guilds, tmp_path, redis_url):
    limits = RateLimits()
    work = [[c for batch in batches(guilds, 2) for c in batch]]  # 112 changes in one process
    with FakeDiscord(guilds=guilds, bot_user=BOT, rate_limits=limits) as fake:
        run = run_fleet(fake, work, tmp_path, mode="shared", redis_url=redis_url)
        numbers = figures(run, limits)
        print(f"one process, {redis_url or 'no Redis'}: {numbers}")
        assert_nothing_lost(fake, work, run)
    assert numbers["avoidable_429s"] == 0, run["rate_limited"]
    assert numbers["ratio"] >= 0.9, numbers


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of the test's own on a free port (the test stops it mid-run)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = subprocess.Popen([*args, "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.05)
        client.close()
        yield server, url
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(5)


def test_it_falls_back_to_the_process_when_redis_stops_mid_run(guilds, tmp_path, own_redis):
    server, url = own_redis
    limits = RateLimits()
    work = [[c for batch in batches(guilds, 2) for c in batch]]

    def stop_redis() -> None:
        time.sleep(1.0)  # about half of the batch is through
        server.kill()
        server.wait(5)

    with FakeDiscord(guilds=guilds, bot_user=BOT, rate_limits=limits) as fake:
        run = run_fleet(fake, work, tmp_path, mode="shared", redis_url=url, meanwhile=stop_redis)
        numbers = figures(run, limits)
        print(f"one process, Redis stopped after 1 s: {numbers}")
        assert_nothing_lost(fake, work, run)
    assert "limiting in this process for now" in (tmp_path / "worker0.log").read_text()
    assert numbers["avoidable_429s"] == 0, run["rate_limited"]
    assert numbers["ratio"] >= 0.9, numbers


# --- the fake's enforcement, as discord.py sees it --------------------------------------------
def rest_against(fake: FakeDiscord, settings) -> None:
    settings.DISCORD_API_BASE, settings.DISCORD_TOKEN = fake.api_base, fake.token
    settings.DISCORD_RATE_LIMITS = "off"  # discord.py alone: what the fake does, not what the limiter avoids


def raw(fake: FakeDiscord, calls: list[tuple[str, str]]) -> list[tuple[int, dict, object]]:
    """Send ``calls`` (method, path) one after another with the bot token: (status, headers, body) each."""

    async def go() -> list[tuple[int, dict, object]]:
        out = []
        async with aiohttp.ClientSession(headers={"Authorization": f"Bot {fake.token}"}) as session:
            for method, path in calls:
                async with session.request(method, fake.api_base + path) as response:
                    body = await response.json() if response.content_type == "application/json" else await response.text()
                    out.append((response.status, dict(response.headers), body))
        return out

    return asyncio.run(go())


def test_it_sends_discords_headers_and_429s_and_marks_the_unavoidable_one(guilds):
    g, vip = guilds[0], guilds[0].role("VIP").id
    member = f"/guilds/{g.id}/members/{FIRST_MEMBER + 1}/roles/{vip}"
    limits = RateLimits(buckets={"member-roles": BucketLimit(2, 30.0)})
    with FakeDiscord(guilds=guilds, bot_user=BOT, rate_limits=limits) as fake:
        answers = raw(fake, [("PUT", member), ("PUT", member), ("PUT", member), ("DELETE", member), ("GET", "/users/@me")])
        limited = fake.rate_limited
    statuses = [status for status, _, _ in answers]
    assert statuses == [204, 204, 429, 429, 200]
    for _, headers, _ in answers:
        assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Reset-After"} <= set(headers)
    (_, first, _), (_, second, _), (_, third, body), (_, fourth, _), (_, other, _) = answers
    assert (first["X-RateLimit-Remaining"], second["X-RateLimit-Remaining"], third["X-RateLimit-Remaining"]) == ("1", "0", "0")
    assert first["X-RateLimit-Bucket"] == fourth["X-RateLimit-Bucket"] != other["X-RateLimit-Bucket"]  # PUT and DELETE share
    assert third["X-RateLimit-Scope"] == "user" and third["Via"] and body["global"] is False and 29 < body["retry_after"] <= 30
    # The PUT's 429 could have been avoided (its bucket was known); the DELETE's first request could not.
    assert [(r["method"], r["fresh"], r["bucket"]) for r in limited] == [
        ("PUT", False, "member-roles"),
        ("DELETE", True, "member-roles"),
    ]


def test_it_limits_a_token_to_its_global_rate(guilds):
    with FakeDiscord(guilds=guilds, bot_user=BOT, rate_limits=RateLimits(global_limit=3)) as fake:
        answers = raw(fake, [("GET", "/users/@me")] * 4 + [("GET", f"/guilds/{guilds[0].id}")])
        limited = fake.rate_limited
    assert [status for status, _, _ in answers] == [200, 200, 200, 429, 429]
    _, headers, body = answers[3]
    assert headers["X-RateLimit-Scope"] == "global" and headers["X-RateLimit-Global"] == "true"
    assert body["global"] is True and 0 < body["retry_after"] <= 1
    assert [r["global"] for r in limited] == [True, True]


def test_it_bans_a_token_past_the_invalid_request_ceiling(guilds, settings):
    g = guilds[0]
    moderator = g.role("Moderator")  # above the bot: every change is a 403
    with FakeDiscord(guilds=guilds, bot_user=BOT, rate_limits=RateLimits(invalid_ceiling=5, ban_seconds=60)) as fake:
        rest_against(fake, settings)

        async def refused_five_times() -> discord.HTTPException:
            async with DiscordRest() as rest:
                for i in range(5):
                    with pytest.raises(discord.Forbidden):
                        await rest.http.add_role(g.id, FIRST_MEMBER + i, moderator.id)
                with pytest.raises(discord.HTTPException) as banned:
                    await rest.http.get_guild(g.id)
                return banned.value

        banned = asyncio.run(refused_five_times())
        limited = fake.rate_limited
    assert banned.status == 429 and "blocked from accessing our API" in banned.text
    assert [r["banned"] for r in limited] == [True]
