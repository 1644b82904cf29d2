"""Reconciliation of one guild at shard ready: how long, how many requests, and how fast they went.

A fake guild of ``--members`` members (Discord's rate limits enforced by the fake) with
``--timers`` live timers: half hold their role, a quarter had it taken away by hand, a
quarter of the members have left; ``--untimed`` members hold the role with no timer.
`manage.py runbot` starts, reconciles at ready, and the fake's recordings give the
member-list pages and role grants with their times.

    .venv/bin/python bench/reconcile.py [--members 20000] [--timers 400] [--untimed 50]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta

if "DATABASE_URL" not in os.environ:  # the bench and the bot share one throw-away SQLite file
    os.environ["GUILDHALL_DATA_DIR"] = tempfile.mkdtemp(prefix="guildhall-bench-")

import _setup  # noqa: F401  (Django set-up)
from _setup import ROOT, machine, print_table

from tests.fake_discord import FakeDiscord, FakeGuild, FakeUser
from tests.fake_discord.ratelimits import RateLimits

GUILD_ID = 732_345_678_901_234_567
BOT = FakeUser(id=732_345_678_900_000_001, name="Guildhall", bot=True)
ADMIN = FakeUser(id=732_345_678_900_000_002, name="admin")


def max_per_second(stamps: list[float]) -> int:
    """The most requests in any one-second window."""
    best, start = 0, 0
    for end, at in enumerate(stamps):
        while at - stamps[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--timers", type=int, default=400)
    parser.add_argument("--untimed", type=int, default=50)
    args = parser.parse_args()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=os.environ, check=True)

    from timers.models import TimedRole, TimerReconcile
    from timers.services import timer_set

    TimerReconcile.objects.filter(guild_id=GUILD_ID).delete()
    TimedRole.objects.filter(guild_id=GUILD_ID).delete()
    guild = FakeGuild.with_many_members(
        guild_id=GUILD_ID, bot_user=BOT, count=args.members, members=[ADMIN], admin_ids=[ADMIN.id]
    )
    vip = guild.role("VIP").id
    plain = sorted(uid for uid in guild.members if uid not in (BOT.id, ADMIN.id))
    timed, untimed = plain[: args.timers], plain[args.timers : args.timers + args.untimed]
    for i, member_id in enumerate(timed):
        timer_set(guild_id=GUILD_ID, member_id=member_id, role_id=vip, duration=timedelta(days=2), actor_id=ADMIN.id)
        if i % 4 < 2:
            guild.members[member_id].append(vip)  # holds it
        elif i % 4 == 3:
            guild.members.pop(member_id)  # left while no bot was running
    for member_id in untimed:
        guild.members[member_id].append(vip)

    with FakeDiscord(guilds=[guild], bot_user=BOT, rate_limits=RateLimits()) as fake:
        env = {**os.environ, **fake.env(ready_timeout=0.1)}
        proc = subprocess.Popen([sys.executable, "manage.py", "runbot"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        try:
            fake.wait_for_ready_sent(60)
            started = time.monotonic()
            record = fake.wait_for(
                lambda: TimerReconcile.objects.filter(guild_id=GUILD_ID, finished_at__isnull=False).first(), timeout=600
            )
            took = time.monotonic() - started
        finally:
            proc.terminate()
            proc.wait(15)
        requests = fake.requests
        limited = len(fake.rate_limited)
    pages = [
        r
        for r in requests
        if r["method"] == "GET" and f"/guilds/{GUILD_ID}/members" in r["path"] and "/members/" not in r["path"]
    ]
    grants = [r for r in requests if r["method"] == "PUT" and "/roles/" in r["path"]]
    paced = sorted(r["at"] for r in pages + grants)
    span = paced[-1] - paced[0] if len(paced) > 1 else 0.0
    rows = [
        [
            f"{args.members:,}",
            f"{args.timers:,}",
            f"{len(pages)}",
            f"{record.restored}",
            f"{record.away}",
            f"{record.untracked}",
            f"{took:.1f}",
            f"{len(paced) / span if span else 0:.1f}",
            f"{max_per_second(paced)}",
            f"{limited}",
        ]
    ]
    print_table(
        f"Reconciliation at ready, one guild, RECONCILE_REQUESTS_PER_SECOND={os.environ.get('RECONCILE_REQUESTS_PER_SECOND', '5')} — {machine()}",
        ["members", "timers", "pages", "given back", "gone", "held, no timer", "s", "req/s", "max in 1 s", "429s"],
        rows,
    )


if __name__ == "__main__":
    main()
