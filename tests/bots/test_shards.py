"""Two `manage.py runbot` processes as shards 0 and 1 of 2 against a fake Discord with six guilds.

Discord gives each guild to shard ``(guild_id >> 22) % shard_count``; the fake's gateway
sends a guild's GUILD_CREATE and events only to the sessions of that shard. Each guild's
messages and slash commands must be answered once, by that shard's process; a shard
killed with SIGKILL and started again answers its guilds again while the other shard
keeps answering its own on the same gateway session; the Status page shows both.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.test import Client

from commands.services import command_create
from ops.models import ShardHeartbeat
from tests.bots.conftest import ADMIN, ALICE, BOT
from tests.bots.shard_fixtures import SHARD_COUNT, Shards, owner, running_shards, typical_guilds
from tests.fake_discord import FakeDiscord
from tests.fake_discord.shards import deliveries, guild_ids_on_shards, shard_sessions

pytestmark = pytest.mark.django_db(transaction=True)

GUILD_IDS = guild_ids_on_shards(SHARD_COUNT, 3)
REPLY_SECONDS = 2.0  # the longest a member may wait for an answer while the other shard restarts


@pytest.fixture
def sharded_fake():
    with FakeDiscord(guilds=typical_guilds(GUILD_IDS), bot_user=BOT, recommended_shards=SHARD_COUNT) as running:
        yield running


@pytest.fixture
def shards(sharded_fake, tmp_path):
    """Both shards running, each guild's `!!echo` command answering."""
    for guild_id in GUILD_IDS:
        command_create(guild_id=guild_id, name="echo", template="echo {0}", author_id=ADMIN.id)
    with running_shards(sharded_fake, tmp_path) as running:
        for n, guild_id in enumerate(GUILD_IDS):
            ask(sharded_fake, guild_id, f"warm-up{n}")
        yield running


@dataclass
class Asked:
    guild_id: int
    message_id: str
    sent_at: float
    reply: dict | None = None
    answered_at: float | None = None


def channel_of(fake: FakeDiscord, guild_id: int) -> int:
    return fake.guilds[guild_id].text_channel.id


def ask(fake: FakeDiscord, guild_id: int, word: str, timeout: float = 10) -> Asked:
    """`!!echo <word>` in the guild's #general; wait for its answer."""
    asked = send(fake, guild_id, word)
    asked.reply = fake.wait_for(lambda: echoes(fake, word), timeout=timeout, message=f"an answer to {word!r}")[0]
    asked.answered_at = time.monotonic()
    return asked


def send(fake: FakeDiscord, guild_id: int, word: str) -> Asked:
    sent_at = time.monotonic()
    message = fake.send_message(guild_id, channel_of(fake, guild_id), ALICE.id, f"!!echo {word}")
    return Asked(guild_id, message["id"], sent_at)


def echoes(fake: FakeDiscord, word: str) -> list[dict]:
    return [m for m in fake.messages if m["content"] == f"echo {word}"]


def pongs(fake: FakeDiscord, guild_id: int) -> list[dict]:
    channel = channel_of(fake, guild_id)
    return [m for m in fake.messages if m["channel_id"] == channel and m["content"].startswith("Pong!")]


def test_each_guild_is_answered_once_by_the_shard_that_owns_it_and_the_status_page_shows_both(sharded_fake, shards):
    fake = sharded_fake
    # Each shard got READY and the GUILD_CREATEs of its own guilds only.
    for shard_id in range(SHARD_COUNT):
        (session,) = shard_sessions(fake, shard_id)
        assert session.shard == (shard_id, SHARD_COUNT) and session.attached
    created = deliveries(fake, "GUILD_CREATE")
    assert created == {str(g): [owner(g)] for g in GUILD_IDS}

    words = {guild_id: f"m{n}" for n, guild_id in enumerate(GUILD_IDS)}
    asked = [send(fake, guild_id, word) for guild_id, word in words.items()]
    for guild_id in GUILD_IDS:
        fake.send_message(guild_id, channel_of(fake, guild_id), ALICE.id, "!!ping")
    interactions = {g: fake.send_slash(g, channel_of(fake, g), ALICE.id, "ping") for g in GUILD_IDS}
    fake.wait_for(lambda: all(echoes(fake, w) for w in words.values()), message="every guild's echo")
    fake.wait_for(lambda: all(pongs(fake, g) for g in GUILD_IDS), message="every guild's pong")
    answered = lambda: {r["interaction_id"] for r in fake.interaction_responses}  # noqa: E731
    fake.wait_for(lambda: answered() >= {int(i["id"]) for i in interactions.values()}, message="every interaction")
    time.sleep(0.5)  # a second answer, if any, would be in by now

    sent = deliveries(fake)
    for one in asked:
        (reply,) = echoes(fake, words[one.guild_id])
        assert reply["channel_id"] == channel_of(fake, one.guild_id)
        assert sent[one.message_id] == [owner(one.guild_id)]  # only the owning shard saw it
    for guild_id in GUILD_IDS:
        (pong,) = pongs(fake, guild_id)
        assert pong["content"].endswith(f"(shard {owner(guild_id)} of {SHARD_COUNT})")  # answered by that shard's process
    slashes = deliveries(fake, "INTERACTION_CREATE")
    responses = Counter(r["interaction_id"] for r in fake.interaction_responses)
    for guild_id, interaction in interactions.items():
        assert slashes[interaction["id"]] == [owner(guild_id)]
        assert responses[int(interaction["id"])] == 1
        (response,) = [r for r in fake.interaction_responses if r["interaction_id"] == int(interaction["id"])]
        assert response["data"]["content"].endswith(f"(shard {owner(guild_id)} of {SHARD_COUNT})")
    assert not [r for r in fake.requests if r["status"] >= 400], [r for r in fake.requests if r["status"] >= 400]

    # The heartbeat rows and the Status page show both shards.
    pids = {shard_id: process.proc.pid for shard_id, process in shards.processes.items()}

    def beats():
        rows = {row.shard_id: row for row in ShardHeartbeat.objects.all()}
        return rows if {i: r.pid for i, r in rows.items()} == pids else None

    rows = fake.wait_for(beats, timeout=10, message="a heartbeat from each shard")
    for row in rows.values():
        assert (row.shard_count, row.guild_count) == (SHARD_COUNT, 3)
        assert row.latency_ms is not None and 0 <= row.latency_ms < 1000

    client = Client()
    client.force_login(User.objects.create_user("ops", password="pw-ops-12345", is_staff=True))
    page = " ".join(client.get("/admin/ops/status/").content.decode().split())
    # Shard, host (pid), last heartbeat, latency, guilds, status (a new beat may have moved the latency since).
    shown = {
        int(m[0]): (int(m[1]), int(m[2]))
        for m in re.findall(r"<tr><td>(\d+) / 2</td> <td>[^<]*\((\d+)\)</td> <td>[^<]*</td> <td>\d+ ms</td> <td>(\d+)</td>", page)
    }
    assert shown == {shard_id: (pids[shard_id], 3) for shard_id in range(SHARD_COUNT)}, page
    assert page.count('gh-badge gh-pass">running</span></td>') == SHARD_COUNT
    assert "never sent a heartbeat" not in page
    assert fake.unhandled == []


def test_the_status_page_names_a_shard_that_never_started_whose_guilds_go_unanswered(sharded_fake, tmp_path):
    fake = sharded_fake
    for guild_id in GUILD_IDS:
        command_create(guild_id=guild_id, name="echo", template="echo {0}", author_id=ADMIN.id)
    alone = Shards(fake, tmp_path)
    try:
        alone.start(0)  # SHARD_COUNT=2, but nobody runs shard 1
        assert fake.wait_for_ready_sent(30), alone.logs()
        ours, orphan = next(g for g in GUILD_IDS if owner(g) == 0), next(g for g in GUILD_IDS if owner(g) == 1)
        ask(fake, ours, "heard")
        send(fake, orphan, "unheard")
        fake.wait_for(lambda: ShardHeartbeat.objects.filter(shard_id=0, shard_count=SHARD_COUNT).exists(), timeout=10)
        client = Client()
        client.force_login(User.objects.create_user("ops", password="pw-ops-12345", is_staff=True))
        page = " ".join(client.get("/admin/ops/status/").content.decode().split())
        assert "missing</span> Shard 1 never sent a heartbeat, so its guilds get no answers" in page, page
        assert "<code>SHARD_IDS=1</code>" in page
        time.sleep(0.5)
        assert echoes(fake, "unheard") == []  # what the page says: nobody answers shard 1's guilds
    finally:
        alone.stop()


class Traffic(threading.Thread):
    """A member asking one of the given guilds in turn, waiting for each answer before the next."""

    def __init__(self, fake: FakeDiscord, guild_ids: list[int], tag: str) -> None:
        super().__init__(name=f"traffic-{tag}", daemon=True)
        self.fake, self.guild_ids, self.tag = fake, guild_ids, tag
        self.asked: list[Asked] = []
        self.failure: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        n = 0
        try:
            while not self.done.is_set():
                guild_id = self.guild_ids[n % len(self.guild_ids)]
                self.asked.append(ask(self.fake, guild_id, f"{self.tag}{n}", timeout=REPLY_SECONDS))
                n += 1
        except BaseException as exc:  # reported by the test
            self.failure = exc

    def finish(self) -> list[Asked]:
        self.done.set()
        self.join(REPLY_SECONDS + 5)
        if self.failure is not None:
            raise AssertionError(f"shard 0 stopped answering within {REPLY_SECONDS}s") from self.failure
        return self.asked


def test_a_shard_killed_and_restarted_answers_again_while_the_other_never_notices(sharded_fake, shards):
    fake = sharded_fake
    mine = [g for g in GUILD_IDS if owner(g) == 0]
    theirs = [g for g in GUILD_IDS if owner(g) == 1]
    (before,) = shard_sessions(fake, 0)
    survivor_pid = shards.processes[0].proc.pid

    traffic = Traffic(fake, mine, "steady")
    traffic.start()
    time.sleep(0.5)
    killed_pid = shards.processes[1].proc.pid
    shards.kill(1)
    time.sleep(0.5)  # shard 1's guilds are silent now, shard 0's are not
    restarted = shards.start(1)
    if not fake.wait_for_ready_sent(30, count=SHARD_COUNT + 1):
        pytest.fail("the restarted shard never identified:\n" + shards.logs())
    back = [ask(fake, g, f"back{n}") for n, g in enumerate(theirs)]
    time.sleep(0.5)
    steady = traffic.finish()

    # Shard 0 kept answering throughout, each message once and within REPLY_SECONDS, on its one session.
    waits = [round(a.answered_at - a.sent_at, 3) for a in steady]
    assert len(steady) >= 10 and max(waits) < REPLY_SECONDS, waits
    assert all(len(echoes(fake, a.reply["content"].removeprefix("echo "))) == 1 for a in steady), fake.dump()
    (after,) = shard_sessions(fake, 0)
    assert (after.id, after.connection) == (before.id, before.connection) and after.attached
    assert fake.resume_count == 0
    assert shards.processes[0].proc.pid == survivor_pid and shards.processes[0].proc.poll() is None

    # Shard 1 identified afresh (a killed process has no session to resume) and answers its guilds once each.
    old, new = shard_sessions(fake, 1)
    assert not old.attached and new.attached and new.shard == (1, SHARD_COUNT)
    sent = deliveries(fake)
    for asked in back:
        assert len(echoes(fake, asked.reply["content"].removeprefix("echo "))) == 1
        assert sent[asked.message_id] == [1]
    assert restarted.proc.pid != killed_pid

    # The Status page's row for shard 1 is the new process's.
    fake.wait_for(
        lambda: ShardHeartbeat.objects.filter(shard_id=1, pid=restarted.proc.pid, guild_count=3).exists(),
        timeout=10,
        message="the restarted shard's heartbeat",
    )
    assert ShardHeartbeat.objects.get(shard_id=0).pid == survivor_pid
    assert fake.unhandled == []
