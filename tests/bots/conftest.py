"""End-to-end set-up: a fake Discord, and `manage.py runbot` as a separate process on the
test database and the tests' cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from tests.fake_discord import FakeDiscord, FakeGuild, FakeUser

ROOT = Path(__file__).resolve().parents[2]
GUILD_ID = 812_345_678_901_234_567
BOT = FakeUser(id=812_345_678_900_000_001, name="Guildhall", bot=True)
ADMIN = FakeUser(id=812_345_678_900_000_002, name="admin")
ALICE = FakeUser(id=812_345_678_900_000_003, name="alice")
BOB = FakeUser(id=812_345_678_900_000_004, name="bob")
OTHER_BOT = FakeUser(id=812_345_678_900_000_005, name="otherbot", bot=True)


def database_env() -> dict[str, str]:
    """Point a child process at the database the tests are using right now."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return {"DATABASE_URL": f"sqlite:///{db['NAME']}"}
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    host = db["HOST"] or "127.0.0.1"
    return {"DATABASE_URL": f"postgres://{auth}@{host}:{db['PORT'] or 5432}/{db['NAME']}"}


def cache_env() -> dict[str, str]:
    location = settings.CACHES["default"]["LOCATION"]
    return {} if settings.CACHES["default"]["BACKEND"].endswith("RedisCache") else {"CACHE_DIR": location}


@pytest.fixture
def guild() -> FakeGuild:
    return FakeGuild.typical(guild_id=GUILD_ID, bot_user=BOT, members=[ADMIN, ALICE, BOB, OTHER_BOT], admin_ids=[ADMIN.id])


@pytest.fixture
def fake(guild):
    with FakeDiscord(guilds=[guild], bot_user=BOT) as running:
        yield running


class BotProcess:
    """A running `manage.py runbot`, its log, and a clean way to stop it."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runbot"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


def bot_env(fake: FakeDiscord | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN",)}
    env.update(database_env())
    env.update(cache_env())
    if fake is not None:
        env.update(fake.env(ready_timeout=0.1))
    env.update({"LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


@pytest.fixture
def bot(fake, transactional_db, tmp_path):
    """The bot, connected and ready (slash commands synced, guild received)."""
    process = BotProcess(bot_env(fake), tmp_path / "runbot.log")
    try:
        if not fake.wait_for_ready_sent(30):
            pytest.fail("the bot never identified:\n" + process.log())
        fake.wait_for(lambda: "timer" in fake.command_names(), timeout=10, message="slash commands were not synced")
        # READY + GUILD_CREATE were sent; one round trip proves the bot is handling messages.
        wait_reply(fake, ADMIN, "!!ping", lambda m: m["content"].startswith("Pong"), process=process)
        yield process
    finally:
        code = process.stop()
        if code not in (0, None) and not getattr(process, "expect_failure", False):
            print(process.log())


def wait_reply(fake: FakeDiscord, author: FakeUser, content: str, match, *, timeout: float = 10, process=None) -> dict:
    """Send ``content`` as ``author`` in #general and return the bot's first new message that ``match``es."""
    guild = fake.guilds[GUILD_ID]
    seen = len(fake.messages)
    fake.send_message(GUILD_ID, guild.text_channel.id, author.id, content)
    try:
        return fake.wait_for(
            lambda: next((m for m in fake.messages[seen:] if match(m)), None),
            timeout=timeout,
            message=f"no matching reply to {content!r}",
        )
    except AssertionError:
        if process is not None:
            print(process.log())
        raise


def no_new_reply(fake: FakeDiscord, author: FakeUser, content: str, settle: float = 1.0) -> None:
    """Send ``content`` and check the bot says nothing (its other replies keep arriving meanwhile)."""
    guild = fake.guilds[GUILD_ID]
    seen = len(fake.messages)
    fake.send_message(GUILD_ID, guild.text_channel.id, author.id, content)
    time.sleep(settle)
    assert fake.messages[seen:] == [], fake.messages[seen:]
