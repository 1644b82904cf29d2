"""`manage.py runbot` as a process: start-up errors, reconnects, rate limits, heartbeats, SIGTERM."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from ops.models import ShardHeartbeat
from tests.bots.conftest import ADMIN, ALICE, BOT, ROOT, BotProcess, bot_env, wait_reply
from tests.fake_discord import FakeDiscord

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_exits_2_with_one_line_when_the_token_is_missing():
    env = bot_env(None)
    env.pop("DISCORD_TOKEN", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "runbot"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "runbot: DISCORD_TOKEN is not set; set it to the bot token from the Discord developer portal."
    assert "Traceback" not in result.stderr + result.stdout


def test_it_says_login_failed_for_a_rejected_token(fake, tmp_path):
    process = BotProcess(bot_env(fake, DISCORD_TOKEN="not-the-token"), tmp_path / "runbot.log")
    process.proc.wait(30)
    assert process.stop() == 1
    output = process.log()
    assert "runbot: login failed" in output and "Traceback" not in output
    assert fake.unhandled == []


def test_it_names_the_intent_to_enable_when_discord_refuses_it(guild, tmp_path):
    with FakeDiscord(guilds=[guild], bot_user=BOT, privileged_intents=frozenset({"members"})) as fake:
        process = BotProcess(bot_env(fake), tmp_path / "runbot.log")
        process.proc.wait(30)
        assert process.stop() == 1
        output = process.log()
        assert "Message Content" in output and "developer portal" in output and "Traceback" not in output
        assert fake.unhandled == []


def test_it_resumes_after_a_reconnect_request_and_keeps_working(fake, bot):
    assert fake.request_reconnect() >= 1
    fake.wait_for(lambda: fake.resume_count == 1, timeout=15)
    reply = wait_reply(fake, ALICE, "!!coinflip", lambda m: m["content"].startswith("🪙"))
    assert reply
    assert fake.identify_count == 1
    assert fake.unhandled == []


def test_it_retries_a_rate_limited_post_once_and_posts_once(fake, bot):
    fake.rate_limit_next("POST", r"/channels/\d+/messages", retry_after=0.3)
    seen = len(fake.messages)
    reply = wait_reply(fake, ALICE, "!!8ball will it work?", lambda m: m["content"].startswith("🎱"))
    time.sleep(0.5)
    assert [m for m in fake.messages[seen:] if m["content"].startswith("🎱")] == [reply]
    assert fake.unhandled == []


def test_it_writes_a_heartbeat_row_per_shard(fake, bot):
    def beat():
        return ShardHeartbeat.objects.filter(shard_id=0).first()

    row = fake.wait_for(beat, timeout=10)
    assert row.guild_count == 1 and row.shard_count == 1
    assert fake.unhandled == []


def test_it_stops_cleanly_on_sigterm(fake, bot):
    started = time.monotonic()
    assert bot.stop(timeout=10) == 0
    assert time.monotonic() - started < 10
    assert "runbot: stopped" in bot.log()
    assert fake.unhandled == []
