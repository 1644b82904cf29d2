"""The loopback fake Discord of bench/sweep.py in a process of its own.

    .venv/bin/python bench/sweep_fake.py [rate_limit]

bench/sweep.py starts it to measure expiry throughput without the fake's own request
handling sharing the worker's interpreter (and GIL). It serves the same guild as the
in-process fake, advertises a rate-limit bucket of ``rate_limit`` requests per second,
prints one JSON line (api_base, token, role_id, channel_id), then answers a line
``count <first> <n>`` on stdin with a JSON line {"deletes", "holding", "messages"} for the
members ``first`` to ``first + n - 1`` of the bench range, and exits at end of input.
"""

from __future__ import annotations

import json
import sys

import _setup  # noqa: F401  (Django set-up, which the fake's imports need)
from sweep import BOT, FAKE_GUILD, fake_bucket, fake_guild, on_the_fake

from tests.fake_discord import FakeDiscord


def main() -> None:
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    guild = fake_guild()
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake, fake_bucket(limit):
        info = {
            "api_base": fake.api_base,
            "token": fake.token,
            "role_id": guild.role("VIP").id,
            "channel_id": guild.text_channel.id,
        }
        print(json.dumps(info), flush=True)
        for line in sys.stdin:
            command, *args = line.split()
            if command == "count":
                first, count = map(int, args)
                deletes, holding = on_the_fake(fake, first, count, info["role_id"])
                messages = sum(1 for m in fake.messages if m["guild_id"] == FAKE_GUILD)
                print(json.dumps({"deletes": deletes, "holding": holding, "messages": messages}), flush=True)


if __name__ == "__main__":
    main()
