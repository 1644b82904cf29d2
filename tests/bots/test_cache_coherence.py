"""A custom command or a guild setting changed on the web (admin) or through the API is used by
every bot process within COHERENT_SECONDS, measured with two `runbot` shards.

Each bot process keeps its guilds' commands and settings in memory (bots.guild_cache) and
checks the guild's version key in the shared cache (Redis, or the file cache that the
processes of one machine share on SQLite) at most every CHECK_SECONDS. A member keeps
talking in each shard's guilds (one message every POLL_SECONDS, so that the checks fall at
random moments against the changes) while the web saves changes; for each change, the
time from the save returning to the first message answered the new way is one sample.
Every message sent after that must be answered the new way (no flapping back), and each
message is answered once.
"""

from __future__ import annotations

import random
import re
import statistics
import threading
import time
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from commands.models import CustomCommand, GuildSettings
from commands.services import command_create, guild_settings_update
from ops.api_tokens import api_token_create
from tests.api.conftest import grant
from tests.bots.conftest import ADMIN, ALICE, BOT
from tests.bots.shard_fixtures import SHARD_COUNT, owner, running_shards, typical_guilds
from tests.fake_discord import FakeDiscord
from tests.fake_discord.shards import guild_ids_on_shards

pytestmark = pytest.mark.django_db(transaction=True)

GUILD_IDS = guild_ids_on_shards(SHARD_COUNT, 2)  # two guilds on each shard
COHERENT_SECONDS = 2.0
# Four guilds: 40 answers a second in all, inside Discord's global 50 requests/s that the shards share.
POLL_SECONDS = 0.1
ROUNDS = 2  # per way of changing: admin command, API command, admin prefix
REPLY = re.compile(r"^(v\d+) (\d+)$")


@dataclass
class Sent:
    guild_id: int
    seq: int
    prefix: str
    at: float


@dataclass
class Change:
    guild_id: int
    how: str
    started: float  # when the save was sent
    at: float  # when the save returned (committed, the bots told)
    version: str | None = None  # a command change: the reply's new version
    prefix: str | None = None  # a prefix change: the new prefix


class Member(threading.Thread):
    """Says `<prefix>greet <seq>` in each guild every POLL_SECONDS, once with each of the guild's ``prefixes``."""

    def __init__(self, fake: FakeDiscord, prefixes: dict[int, list[str]]) -> None:
        super().__init__(name="member", daemon=True)
        self.fake = fake
        self.prefixes = prefixes
        self.sent: list[Sent] = []
        self.halt = threading.Event()

    def run(self) -> None:
        seq = 0
        while not self.halt.is_set():
            for guild_id, prefixes in list(self.prefixes.items()):
                for prefix in list(prefixes):
                    seq += 1
                    channel = self.fake.guilds[guild_id].text_channel.id
                    self.sent.append(Sent(guild_id, seq, prefix, time.monotonic()))
                    self.fake.send_message(guild_id, channel, ALICE.id, f"{prefix}greet {seq}")
            time.sleep(POLL_SECONDS)


@pytest.fixture
def sharded_fake():
    with FakeDiscord(guilds=typical_guilds(GUILD_IDS), bot_user=BOT, recommended_shards=SHARD_COUNT) as running:
        yield running


@pytest.fixture
def web() -> tuple[Client, Client]:
    """A staff admin session, and an API client whose token may change commands."""
    admin = Client()
    admin.force_login(User.objects.create_user("ops", password="pw-ops-12345", is_staff=True, is_superuser=True))
    user = grant(User.objects.create_user("api", password="pw-api-12345", is_staff=True), "commands.change_customcommand")
    _, key = api_token_create(user=user, name="coherence", created_by=None)
    return admin, Client(headers={"Authorization": f"Bearer {key}"})


def change_template_in_admin(admin: Client, guild_id: int, template: str) -> None:
    command = CustomCommand.objects.get(guild_id=guild_id, name="greet")
    form = {
        "template": template,
        "enabled": "on",
        "cooldown_seconds": 0,
        "cooldown_scope": "member",
        "note": "",
        "aliases-TOTAL_FORMS": 0,
        "aliases-INITIAL_FORMS": 0,
    }
    response = admin.post(reverse("admin:commands_customcommand_change", args=[command.pk]), form)
    assert response.status_code == 302, response.content.decode()[:2000]


def change_template_in_api(api: Client, guild_id: int, template: str) -> None:
    response = api.patch(f"/api/v1/guilds/{guild_id}/commands/greet", {"template": template}, content_type="application/json")
    assert response.status_code == 200, response.content.decode()[:2000]


def change_prefix_in_admin(admin: Client, guild_id: int, prefix: str) -> None:
    row = GuildSettings.objects.get(guild_id=guild_id)
    form = {"prefix": prefix, "cookie_pair_cooldown_seconds": 60, "cookie_daily_cap": 50, "cookie_message_cap": 5}
    response = admin.post(reverse("admin:commands_guildsettings_change", args=[row.pk]), form)
    assert response.status_code == 302, response.content.decode()[:2000]


def wait_quiet(fake: FakeDiscord, quiet: float = 0.5, timeout: float = 10) -> None:
    """Wait until the bots have posted nothing new for ``quiet`` seconds."""
    deadline, seen = time.monotonic() + timeout, -1
    while len(fake.messages) != seen and time.monotonic() < deadline:
        seen = len(fake.messages)
        time.sleep(quiet)


def seen_after(change: Change, sent: list[Sent], answers: dict[int, str], until: float) -> float:
    """Seconds from the change to the first message (sent before ``until``, the next change) answered the new way.

    Checks on the way that no message sent after that one is answered the old way.
    """
    mine = [s for s in sent if s.guild_id == change.guild_id and change.at <= s.at < until]
    if change.version is not None:
        unanswered = [s.seq for s in mine if s.seq not in answers]
        assert not unanswered, f"{change}: messages never answered: {unanswered[:10]}"
        new = [s for s in mine if answers.get(s.seq) == change.version]
        assert new, f"{change}: never answered with {change.version}"
        first = new[0]
        stale = [s.seq for s in mine if s.at > first.at and answers.get(s.seq) != change.version]
    else:
        new = [s for s in mine if s.prefix == change.prefix and s.seq in answers]
        assert new, f"{change}: the prefix {change.prefix!r} was never answered"
        first = new[0]
        stale = [s.seq for s in mine if s.at > first.at and (s.prefix == change.prefix) != (s.seq in answers)]
    context = [(s.seq, s.prefix, round(s.at - change.at, 3), answers.get(s.seq)) for s in mine][:60]
    assert not stale, f"{change}: answered the old way after the new one: {stale[:10]}; {context}"
    return first.at - change.at


def test_every_shard_uses_a_change_made_on_the_web_or_the_api_within_two_seconds(sharded_fake, web, tmp_path):
    fake, (admin, api) = sharded_fake, web
    for guild_id in GUILD_IDS:
        command_create(guild_id=guild_id, name="greet", template="v0 {0}", author_id=ADMIN.id)
        guild_settings_update(guild_id=guild_id, prefix="!!")
    prefix = dict.fromkeys(GUILD_IDS, "!!")
    plan = [("admin", n) for n in range(ROUNDS)] + [("api", n) for n in range(ROUNDS)] + [("prefix", n) for n in range(ROUNDS)]
    changes: list[Change] = []
    rng = random.Random(8)

    with running_shards(fake, tmp_path) as shards:
        member = Member(fake, {g: ["!!"] for g in GUILD_IDS})
        member.start()
        try:
            fake.wait_for(lambda: {m["guild_id"] for m in fake.messages} == set(GUILD_IDS), timeout=10, message="answers")
            for how, _ in plan:
                time.sleep(COHERENT_SECONDS + 0.2 + rng.random() * 0.5)  # the previous change has settled
                for guild_id in GUILD_IDS:
                    member.prefixes[guild_id] = [prefix[guild_id]]  # the old prefix is history now
                    if how == "prefix":
                        new_prefix = "?" if prefix[guild_id] == "!!" else "!!"
                        member.prefixes[guild_id] = [prefix[guild_id], new_prefix]
                        started = time.monotonic()
                        change_prefix_in_admin(admin, guild_id, new_prefix)
                        changes.append(Change(guild_id, how, started, time.monotonic(), prefix=new_prefix))
                        prefix[guild_id] = new_prefix
                    else:
                        version, started = f"v{len(changes) + 1}", time.monotonic()
                        if how == "admin":
                            change_template_in_admin(admin, guild_id, f"{version} {{0}}")
                        else:
                            change_template_in_api(api, guild_id, f"{version} {{0}}")
                        changes.append(Change(guild_id, how, started, time.monotonic(), version=version))
            time.sleep(COHERENT_SECONDS + 0.2)
        finally:
            member.halt.set()
            member.join(5)
        wait_quiet(fake)  # the last answers
        assert all(p.proc.poll() is None for p in shards.all), shards.logs()
        shard_logs = shards.logs()  # for the failures below, which are found after the shards stopped

    answers: dict[int, str] = {}
    for m in fake.messages:
        found = REPLY.match(m["content"])
        assert found, m
        seq = int(found.group(2))
        assert seq not in answers, f"message {seq} answered twice"
        answers[seq] = found.group(1)
    by_guild = {g: [c for c in changes if c.guild_id == g] for g in GUILD_IDS}
    samples: dict[str, list[float]] = {}
    for guild_id, guild_changes in by_guild.items():
        for change, following in zip(guild_changes, [*guild_changes[1:], None], strict=True):
            until = following.started if following is not None else float("inf")
            try:
                delay = seen_after(change, member.sent, answers, until)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{shard_logs}") from None
            samples.setdefault(f"shard {owner(guild_id)}, {change.how}", []).append(delay)
    everything = sorted(d for values in samples.values() for d in values)
    summary = {
        "samples": len(everything),
        "min": round(everything[0], 3),
        "median": round(statistics.median(everything), 3),
        "p90": round(everything[int(0.9 * (len(everything) - 1))], 3),
        "max": round(everything[-1], 3),
    }
    print(f"coherence delays (s): {summary}; by shard and way: { {k: [round(v, 2) for v in vs] for k, vs in samples.items()} }")
    assert len(everything) == len(plan) * len(GUILD_IDS)
    assert everything[-1] < COHERENT_SECONDS, summary
    assert fake.unhandled == []
