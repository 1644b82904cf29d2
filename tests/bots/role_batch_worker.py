"""A worker-style process for the shared rate-limit tests: one batch of role grants and removals.

    python tests/bots/role_batch_worker.py BATCH.json

It logs in through bots.rest.DiscordRest (and so through bots.ratelimit as the settings
say), prints ``ready``, waits for a line on stdin (so that every process starts at once),
runs the batch through bots.role_changes 64 at a time (the timer engine's concurrency),
and prints one JSON line: how many changes were done and how many refused.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from bots.rest import DiscordRest  # noqa: E402
from bots.role_changes import role_add, role_remove  # noqa: E402

CONCURRENCY = 64


async def main(batch: list[dict]) -> dict:
    async with DiscordRest() as rest:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(change: dict) -> bool:
            verb = role_add if change["op"] == "add" else role_remove
            async with gate:
                done = await verb(rest.http, change["guild_id"], change["user_id"], change["role_id"], "batch")
            return done.done

        results = await asyncio.gather(*(one(change) for change in batch))
        waited = rest.rate_limits.waited_ms if rest.rate_limits is not None else 0
    return {"done": sum(results), "refused": len(results) - sum(results), "waited_ms": waited}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))), flush=True)
