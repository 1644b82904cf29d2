"""Using custom commands: cooldowns claimed in the database, and the use counts the bots flush."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from bots.guild_cache import GuildCache
from commands.errors import CustomCommandCooling
from commands.models import CommandCooldown, CustomCommand
from commands.services import command_cooldown_take, command_cooldowns_prune, command_create, command_uses_record
from tests.conftest import GUILD

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def make(name: str = "hello", seconds: int = 30, scope: str = "member") -> CustomCommand:
    return command_create(
        guild_id=GUILD, name=name, template="Hello", author_id=None, cooldown_seconds=seconds, cooldown_scope=scope
    )


def take(command: CustomCommand, member_id: int = 1, channel_id: int = 10, now=None) -> None:
    command_cooldown_take(
        command_pk=command.pk,
        name=command.name,
        seconds=command.cooldown_seconds,
        scope=command.cooldown_scope,
        member_id=member_id,
        channel_id=channel_id,
        now=now,
    )


# --- cooldowns -----------------------------------------------------------------------


def test_it_applies_a_member_cooldown_per_member():
    command = make(scope="member")
    take(command, member_id=1, channel_id=10)
    with pytest.raises(CustomCommandCooling, match="cooling down") as excinfo:
        take(command, member_id=1, channel_id=11)
    assert 1 <= excinfo.value.retry_after <= 30
    take(command, member_id=2, channel_id=10)  # another member is free


def test_it_applies_a_channel_cooldown_per_channel():
    command = make(scope="channel")
    take(command, member_id=1, channel_id=10)
    with pytest.raises(CustomCommandCooling):
        take(command, member_id=2, channel_id=10)
    take(command, member_id=1, channel_id=11)


def test_it_applies_a_guild_cooldown_to_everyone():
    command = make(scope="guild")
    take(command, member_id=1, channel_id=10)
    for member_id, channel_id in [(1, 10), (2, 10), (2, 11)]:
        with pytest.raises(CustomCommandCooling):
            take(command, member_id=member_id, channel_id=channel_id)


def test_it_keeps_cooldowns_of_commands_apart():
    one, two = make("one", scope="guild"), make("two", scope="guild")
    take(one)
    take(two)
    assert CommandCooldown.objects.count() == 2


def test_it_ends_a_cooldown_after_its_time():
    command = make(seconds=5)
    start = timezone.now()
    take(command, now=start)
    with pytest.raises(CustomCommandCooling) as excinfo:
        take(command, now=start + timedelta(seconds=4))
    assert excinfo.value.retry_after == 1
    take(command, now=start + timedelta(seconds=5))
    with pytest.raises(CustomCommandCooling):
        take(command, now=start + timedelta(seconds=9))


def test_it_takes_no_row_without_a_cooldown():
    take(make(seconds=0))
    assert not CommandCooldown.objects.exists()


def test_a_cooldown_survives_the_cache_being_emptied():
    """Cooldowns used to sit in the file cache, whose MAX_ENTRIES culling drops keys at random."""
    command = make()
    take(command)
    cache.clear()
    with pytest.raises(CustomCommandCooling):
        take(command)


def test_it_prunes_only_cooldowns_that_have_run_out():
    command = make(seconds=10)
    start = timezone.now()
    for member_id in range(1, 6):
        take(command, member_id=member_id, now=start - timedelta(seconds=20))
    take(command, member_id=99, now=start)
    assert command_cooldowns_prune(now=start, batch=3) == 3
    assert command_cooldowns_prune(now=start) == 2
    assert list(CommandCooldown.objects.values_list("scope_id", flat=True)) == [99]
    with pytest.raises(CustomCommandCooling):
        take(command, member_id=99, now=start + timedelta(seconds=1))


_RACER = """
import json, os, sys, time
import django
django.setup()
from commands.errors import CustomCommandCooling
from commands.services import command_cooldown_take
pk, rounds = int(sys.argv[1]), int(sys.argv[2])
print("ready", flush=True)
start = float(sys.stdin.readline())
passed = []
for member_id in range(1, rounds + 1):
    time.sleep(max(0.0, start + member_id * 0.03 - time.time()))
    try:
        command_cooldown_take(command_pk=pk, name="race", seconds=600, scope="member", member_id=member_id, channel_id=1)
        passed.append(member_id)
    except CustomCommandCooling:
        pass
print(json.dumps(passed), flush=True)
"""


def _racer_env() -> dict[str, str]:
    db = connection.settings_dict
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONPATH": str(ROOT)}
    if connection.vendor == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return env


@pytest.mark.django_db(transaction=True)
def test_two_processes_racing_one_cooldown_pass_exactly_once_each_time():
    """Two bot-like processes with their own connections claim the same cooldowns at the same instants."""
    rounds = 40
    command = make("race", seconds=600)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(command.pk), str(rounds)],
            cwd=ROOT,
            env=_racer_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for racer in racers:
            assert racer.stdout.readline().strip() == "ready"
        start = time.time() + 0.5
        for racer in racers:
            racer.stdin.write(f"{start}\n")
            racer.stdin.flush()
        results = [json.loads(racer.communicate(timeout=120)[0].strip().splitlines()[-1]) for racer in racers]
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
    first, second = (set(r) for r in results)
    assert first.isdisjoint(second), f"both processes passed the cooldown of members {sorted(first & second)}"
    assert first | second == set(range(1, rounds + 1)), "a claim was lost"
    assert CommandCooldown.objects.filter(command_id=command.pk).count() == rounds


# --- use counts ----------------------------------------------------------------------


def test_it_records_uses_counted_in_memory():
    one, two = make("one"), make("two")
    at = timezone.now()
    assert command_uses_record(counts={one.pk: 3, two.pk: 1}, at=at) == 4
    assert command_uses_record(counts={one.pk: 2}, at=at) == 2
    stored = {c.name: (c.usage_count, c.last_used_at) for c in CustomCommand.objects.all()}
    assert stored == {"one": (5, at), "two": (1, at)}


def test_it_skips_uses_of_a_command_deleted_meanwhile():
    command = make()
    assert command_uses_record(counts={command.pk: 2, command.pk + 1000: 7}, at=timezone.now()) == 2


@pytest.mark.parametrize("counts", [{True: 1}, {1: True}, {1: -1}])
def test_it_refuses_counts_that_are_not_whole_numbers(counts):
    with pytest.raises(ValueError):
        command_uses_record(counts=counts, at=timezone.now())


@pytest.mark.django_db(transaction=True)
def test_the_guild_cache_flushes_its_counts_through_the_service():
    """The live path: the bot counts uses in GuildCache and its heartbeat flushes them."""
    command = make()
    guild_cache = GuildCache()
    for _ in range(3):
        guild_cache.count_use(command.pk)
    assert asyncio.run(guild_cache.flush_usage()) == 3
    assert asyncio.run(guild_cache.flush_usage()) == 0
    stored = CustomCommand.objects.get(pk=command.pk)
    assert stored.usage_count == 3 and stored.last_used_at is not None
