"""`manage.py runbot` processes as the shards of one bot, against one fake Discord."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.bots.conftest import ADMIN, ALICE, BOT, BotProcess, bot_env
from tests.fake_discord import FakeDiscord, FakeGuild
from tests.fake_discord.models import shard_of

SHARD_COUNT = 2


def owner(guild_id: int) -> int:
    """The shard Discord gives the guild to."""
    return shard_of(guild_id, SHARD_COUNT)


def typical_guilds(guild_ids: list[int]) -> list[FakeGuild]:
    """A typical guild (ADMIN, ALICE and the bot) for each id."""
    return [
        FakeGuild.typical(guild_id=g, bot_user=BOT, members=[ADMIN, ALICE], admin_ids=[ADMIN.id], name=f"Guild {n}")
        for n, g in enumerate(guild_ids)
    ]


class Shards:
    """One `runbot` per shard id (``SHARD_COUNT``/``SHARD_IDS`` in its environment), started and stopped by the test."""

    def __init__(self, fake: FakeDiscord, tmp_path: Path) -> None:
        self.fake = fake
        self.tmp_path = tmp_path
        self.processes: dict[int, BotProcess] = {}
        self.all: list[BotProcess] = []

    def start(self, shard_id: int) -> BotProcess:
        env = bot_env(self.fake, SHARD_COUNT=str(SHARD_COUNT), SHARD_IDS=str(shard_id))
        process = BotProcess(env, self.tmp_path / f"runbot-shard{shard_id}-{len(self.all)}.log")
        self.processes[shard_id] = process
        self.all.append(process)
        return process

    def kill(self, shard_id: int) -> None:
        """SIGKILL the shard's process, as a lost machine would."""
        process = self.processes.pop(shard_id)
        process.proc.kill()
        process.proc.wait(5)

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log()[-3000:]}" for p in self.all)

    def stop(self) -> None:
        """SIGTERM every shard side by side (each takes a moment to close its gateway)."""
        with ThreadPoolExecutor() as pool:
            list(pool.map(BotProcess.stop, self.all))


@contextlib.contextmanager
def running_shards(fake: FakeDiscord, tmp_path: Path) -> Iterator[Shards]:
    """Every shard started, identified and its slash commands synced; all stopped afterwards."""
    running = Shards(fake, tmp_path)
    try:
        for shard_id in range(SHARD_COUNT):
            running.start(shard_id)
        if not fake.wait_for_ready_sent(30, count=SHARD_COUNT):
            pytest.fail("the shards never identified:\n" + running.logs())
        fake.wait_for(lambda: "ping" in fake.command_names(), timeout=15, message="slash commands synced")
        yield running
    finally:
        running.stop()
