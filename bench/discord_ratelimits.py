"""Discord's rate limits across processes: the shared limiter against per-process limits.

    REDIS_URL=redis://127.0.0.1:6379/N .venv/bin/python bench/discord_ratelimits.py [--processes 4] [--per-process 60]

Against the fake Discord enforcing Discord's shape (50 requests/s per token, a member-roles
bucket of 10 per second per guild, six guilds), ``--processes`` worker-style processes
(tests/bots/role_batch_worker.py: DiscordRest + role_changes, 64 at a time) expire and grant
``--per-process`` roles each at once, in three setups in the same run: the shared limiter
(Redis), per-process limits (what several processes get without Redis: the baseline) and
discord.py alone. Prints throughput against the allowed rate and the 429s (avoidable ones:
any 429 but the first request of a bucket nobody had seen) and the changes discord.py gave up
on after five tries (the timer engine would retry them later). Needs REDIS_URL for the first row.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import _setup  # noqa: F401  (Django set-up)
from _setup import machine, print_table

from tests.bots import test_ratelimits_shared as fleet
from tests.bots.conftest import BOT
from tests.fake_discord import FakeDiscord
from tests.fake_discord.ratelimits import RateLimits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--per-process", type=int, default=60)
    args = parser.parse_args()
    fleet.PER_PROCESS = args.per_process
    redis_url = os.environ.get("REDIS_URL")
    setups = [("shared (Redis)", "shared", redis_url)] if redis_url else []
    setups += [("per process (baseline)", "local", None), ("discord.py alone", "off", None)]
    rows = []
    for label, mode, url in setups:
        guilds = fleet.make_guilds()
        work = fleet.batches(guilds, args.processes)
        limits = RateLimits()
        with FakeDiscord(guilds=guilds, bot_user=BOT, rate_limits=limits) as fake, tempfile.TemporaryDirectory() as tmp:
            run = fleet.run_fleet(fake, work, Path(tmp), mode=mode, redis_url=url)
            numbers = fleet.figures(run, limits)
            refused = sum(r["refused"] for r in run["results"])  # discord.py gave up (5 tries): left for a retry
        rows.append(
            [
                label,
                str(numbers["done"]),
                f"{numbers['span_s']:.2f}",
                f"{numbers['rate']:.1f}",
                f"{numbers['allowed_rate']:.0f}",
                f"{numbers['ratio']:.2f}",
                str(numbers["avoidable_429s"]),
                str(numbers["fresh_429s"]),
                str(refused),
            ]
        )
    print(machine())
    print_table(
        f"{args.processes} processes x {args.per_process} role changes, 6 guilds",
        ["limits", "done", "span s", "changes/s", "allowed/s", "ratio", "avoidable 429s", "unavoidable 429s", "given up"],
        rows,
    )
    if not redis_url:
        print("(set REDIS_URL for the shared row)", file=sys.stderr)


if __name__ == "__main__":
    main()
