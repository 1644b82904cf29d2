"""Soak: the whole product against one PostgreSQL and Redis for a while, then every count checked.

Web (gunicorn), two worker clusters (`manage.py qcluster`, one queue) and two bot shards
(`manage.py runbot`, SHARD_COUNT=2, SHARD_IDS=0 / 1) against a fake Discord with guilds on
both shards. Meanwhile: timers set to expire during the run, each with its one-minute
warning due at once (thousands of warnings and expiries); cookie messages of five mentions
each (`<@a>++ <@b>-- …`, tens of thousands of gives); custom-command hits whose replies
are timed (reply p99); public leaderboard and readiness reads on the web. The fake's rate
limits are off: the volume is far above Discord's 50 requests a second, and what is under
test is that nothing is lost or done twice, not Discord's limits.

Checks: every timer expired once (one expiry event, one role removal, one notice line),
every warning sent once (one event, one line); every give in the ledger once (by message
and receiver) and every balance equal to its ledger sum; every command answered once;
no web read failed. tests/scale/test_soak.py runs the short form (~1 minute);

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/guildhall_bench REDIS_URL=redis://127.0.0.1:6379/5 \\
      .venv/bin/python bench/soak.py [--seconds 300] [--timers 10000] [--rate 30]

the longer one (it migrates the database it is given and deletes what it made there).
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

if __name__ == "__main__":  # run as a script: Django first (bench/_setup.py), then the test helpers
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _setup  # noqa: F401

from tests.bots.conftest import BOT, bot_env
from tests.bots.shard_fixtures import Shards
from tests.bots.sweeper_fixtures import percentile, removals, role_path, start_clusters
from tests.fake_discord import FakeDiscord, FakeGuild
from tests.fake_discord.shards import guild_ids_on_shards

SHARD_COUNT = 2
GUILDS_PER_SHARD = 2
MEMBERS_PER_GUILD = 400  # cookie givers and receivers
FIRST_MEMBER = 400_000_000_000_000_000
RUN_SECONDS = 10  # the timer engine's runs hand over every 10 s
PREFIX = "!!"
NOTICE_ID = re.compile(r"<@(\d+)>")


def snowflake_ms(snowflake: int | str) -> int:
    return int(snowflake) >> 22


@dataclass
class SoakConfig:
    seconds: float = 40.0  # how long traffic is sent
    timers: int = 2_000  # expiring during the traffic, each with a warning
    rate: float = 30.0  # messages a second, over all guilds (two shards on two shared cores keep up with about 40)
    command_share: float = 0.25  # of the messages: custom-command hits; the rest are cookie messages
    gives_per_message: int = 5
    settle_seconds: float = 90.0  # how long the backlog may take to drain after the traffic


@dataclass
class SoakResult:
    cookie_messages: int = 0
    gives: int = 0
    commands: int = 0
    timers: int = 0
    warnings: int = 0
    expiries: int = 0
    web_reads: int = 0
    web_errors: list[str] = field(default_factory=list)
    reply_ms: list[float] = field(default_factory=list)
    traffic_seconds: float = 0.0
    drain_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def p(self, q: float) -> float:
        return percentile(self.reply_ms, q) if self.reply_ms else float("nan")


def guilds(config: SoakConfig) -> list[FakeGuild]:
    """The guilds, shard by shard: MEMBERS_PER_GUILD chatters, then the timers' holders, each holding VIP."""
    ids = guild_ids_on_shards(SHARD_COUNT, GUILDS_PER_SHARD)
    per_guild = -(-config.timers // len(ids))
    made = []
    for n, guild_id in enumerate(ids):
        first = FIRST_MEMBER + n * 1_000_000
        g = FakeGuild.with_many_members(guild_id=guild_id, bot_user=BOT, count=MEMBERS_PER_GUILD + per_guild, first_user_id=first)
        vip = g.role("VIP").id
        for member in holders_of(g, per_guild):
            g.members[member] = [vip]
        made.append(g)
    return made


def chatters(g: FakeGuild) -> list[int]:
    first = min(m for m in g.members if m >= FIRST_MEMBER)
    return list(range(first, first + MEMBERS_PER_GUILD))


def holders_of(g: FakeGuild, per_guild: int) -> list[int]:
    first = min(m for m in g.members if m >= FIRST_MEMBER) + MEMBERS_PER_GUILD
    return list(range(first, first + per_guild))


def prepare(fake: FakeDiscord, config: SoakConfig) -> dict[int, list[int]]:
    """Guild rules (no cookie cooldown or cap, public leaderboards), the timed command, and a
    timer for each holder, expiring during the traffic, its one-minute warning due at once."""
    from django.utils import timezone

    from commands.models import CustomCommand, GuildSettings
    from timers.models import TimedRole, TimerState

    holders: dict[int, list[int]] = {}
    now = timezone.now()
    rows = []
    per_guild = -(-config.timers // len(fake.guilds))
    for g in fake.guilds.values():
        GuildSettings.objects.update_or_create(
            guild_id=g.id,
            defaults={"cookie_pair_cooldown_seconds": 0, "cookie_daily_cap": None, "public_leaderboard": True},
        )
        CustomCommand.objects.create(guild_id=g.id, name="soak", template="soak {args}")
        vip, channel = g.role("VIP").id, g.channel("bot-log").id
        holders[g.id] = holders_of(g, per_guild)
        for member in holders[g.id]:
            expires = now + timedelta(seconds=15 + random.random() * config.seconds)
            rows.append(
                TimedRole(
                    guild_id=g.id,
                    member_id=member,
                    role_id=vip,
                    state=TimerState.ACTIVE,
                    expires_at=expires,
                    warn_channel_id=channel,
                    warnings_sent=[60, 10],
                    next_warn_at=expires - timedelta(minutes=1),  # the one-minute warning: due now
                )
            )
    TimedRole.objects.bulk_create(rows, batch_size=1000)
    return holders


class Traffic:
    """Sends chat to the fake at ``rate`` messages a second from a thread of its own."""

    def __init__(self, fake: FakeDiscord, config: SoakConfig) -> None:
        self.fake, self.config = fake, config
        self.cookie_messages: dict[int, tuple[int, list[tuple[int, int]]]] = {}  # message id -> (guild, gives)
        self.commands: dict[str, int] = {}  # token -> trigger message id
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, name="soak-traffic", daemon=True)

    def _run(self) -> None:
        rng = random.Random(7)
        gs = list(self.fake.guilds.values())
        people = {g.id: chatters(g) for g in gs}
        interval = 1.0 / self.config.rate
        deadline = time.monotonic() + self.config.seconds
        next_at = time.monotonic()
        n = 0
        try:
            while time.monotonic() < deadline:
                g = gs[n % len(gs)]
                author, *others = rng.sample(people[g.id], 1 + self.config.gives_per_message)
                if rng.random() < self.config.command_share:
                    token = f"{n}-{rng.randrange(10**9)}"
                    sent = self.fake.send_message(g.id, g.text_channel.id, author, f"{PREFIX}soak {token}")
                    self.commands[token] = int(sent["id"])
                else:
                    gives = [(r, rng.choice((1, 1, 1, -1))) for r in others]
                    text = " ".join(f"<@{r}>{'++' if d > 0 else '--'}" for r, d in gives)
                    sent = self.fake.send_message(g.id, g.text_channel.id, author, f"thanks {text}")
                    self.cookie_messages[int(sent["id"])] = (g.id, gives)
                n += 1
                next_at += interval
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        except Exception as exc:  # reported by the checks
            self.errors.append(repr(exc))


class WebReads:
    """Reads the web while the traffic runs: readiness and each guild's public leaderboard."""

    def __init__(self, url: str, guild_ids: list[int]) -> None:
        self.url, self.guild_ids = url, guild_ids
        self.reads = 0
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="soak-web", daemon=True)

    def _run(self) -> None:
        import requests

        paths = ["/health/ready"] + [f"/leaderboard/{g}/" for g in self.guild_ids]
        session = requests.Session()
        n = 0
        while not self.stop.is_set():
            path = paths[n % len(paths)]
            n += 1
            try:
                response = session.get(self.url + path, timeout=10)
                if response.status_code != 200:
                    self.errors.append(f"{path}: {response.status_code}")
            except Exception as exc:
                self.errors.append(f"{path}: {exc!r}")
            self.reads += 1
            self.stop.wait(0.1)


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return True


def run(config: SoakConfig, workdir: Path) -> SoakResult:
    """Start everything, send the traffic, wait for the backlog, stop everything, check."""
    from django.db.models import Count

    from commands.models import CookieBalance, CookieLedger
    from tests.scale.conftest import Web
    from timers.models import TimedRole, TimerEvent, TimerEventKind, TimerState

    result = SoakResult()
    with FakeDiscord(guilds=guilds(config), bot_user=BOT) as fake:
        holders = prepare(fake, config)
        result.timers = sum(len(h) for h in holders.values())
        env = bot_env(fake)
        shards = Shards(fake, workdir)
        clusters = []
        web = None
        try:
            web = Web(env, workdir / "web.log", workers=2)
            clusters = start_clusters(fake, workdir, ["soak-a", "soak-b"], queue="guildhall-soak")
            for shard_id in range(SHARD_COUNT):
                shards.start(shard_id)
            if not fake.wait_for_ready_sent(60, count=SHARD_COUNT):
                raise AssertionError("the shards never identified:\n" + shards.logs())
            # Each shard answers before the traffic starts (its slash commands synced, its guilds received).
            for g in fake.guilds.values():
                seen = len(fake.messages)
                fake.send_message(g.id, g.text_channel.id, chatters(g)[0], f"{PREFIX}ping")
                if not wait_for(lambda seen=seen: any(m["content"].startswith("Pong") for m in fake.messages[seen:]), 60):
                    raise AssertionError(f"guild {g.id} never answered ping:\n" + shards.logs())
            clusters[0].enqueue_sweep(RUN_SECONDS)

            traffic = Traffic(fake, config)
            reads = WebReads(web.url, list(fake.guilds))
            started = time.monotonic()
            traffic.thread.start()
            reads.thread.start()
            traffic.thread.join()
            result.traffic_seconds = time.monotonic() - started
            result.cookie_messages, result.commands = len(traffic.cookie_messages), len(traffic.commands)
            result.gives = sum(len(gives) for _, gives in traffic.cookie_messages.values())

            def drained() -> bool:
                answered = sum(1 for m in fake.messages if ":cookie:" in m["content"])
                return (
                    answered >= result.cookie_messages
                    and CookieLedger.objects.filter(message_id__isnull=False).count() >= result.gives
                    and not TimedRole.objects.filter(state=TimerState.ACTIVE).exists()
                )

            wait_for(drained, config.settle_seconds)
            time.sleep(2)  # let the last replies and notices land
            result.drain_seconds = time.monotonic() - started - result.traffic_seconds
            reads.stop.set()
            reads.thread.join(15)
            result.web_reads, result.web_errors = reads.reads, reads.errors
            result.problems += traffic.errors
        finally:
            shards.stop()
            for cluster in clusters:
                cluster.stop()
            if web is not None:
                web.stop()

        messages = fake.messages
        # --- replies: every command answered once, its latency from the trigger's and reply's snowflakes
        answers: Counter[str] = Counter()
        for m in messages:
            if m["content"].startswith("soak "):
                token = m["content"][5:]
                answers[token] += 1
                if token in traffic.commands and answers[token] == 1:
                    result.reply_ms.append(snowflake_ms(m["id"]) - snowflake_ms(traffic.commands[token]))
        missing = [t for t in traffic.commands if answers[t] == 0]
        doubled = [t for t, n in answers.items() if n > 1]
        if missing or doubled:
            result.problems.append(f"commands: {len(missing)} unanswered, {len(doubled)} answered twice")

        # --- cookies: each give once in the ledger, each balance its ledger's sum
        ledger = CookieLedger.objects.filter(message_id__in=list(traffic.cookie_messages))
        per_give = Counter(ledger.values_list("message_id", "receiver_id"))
        expected = {(mid, r) for mid, (_, gives) in traffic.cookie_messages.items() for r, _ in gives}
        if set(per_give) != expected or set(per_give.values()) - {1}:
            lost = len(expected - set(per_give))
            result.problems.append(f"cookies: {lost} gives lost, {sum(n > 1 for n in per_give.values())} doubled")
        sums = {(g, r): total for g, r, total in _ledger_sums().filter(guild_id__in=list(fake.guilds))}
        off = [
            (b.guild_id, b.member_id, b.balance, sums.get((b.guild_id, b.member_id), 0))
            for b in CookieBalance.objects.filter(guild_id__in=list(fake.guilds))
            if b.balance != sums.get((b.guild_id, b.member_id), 0)
        ]
        if off:
            result.problems.append(f"cookies: {len(off)} balances differ from their ledger, e.g. {off[:3]}")
        signed = Counter()
        for g, gives in traffic.cookie_messages.values():
            for r, d in gives:
                signed[(g, r)] += d
        if any(sums.get(k, 0) != v for k, v in signed.items()):
            result.problems.append("cookies: a member's ledger sum differs from the gives sent")

        # --- timers: each warned once and expired once, its role removed once, one notice line each
        timer_ids = list(TimedRole.objects.filter(guild_id__in=list(fake.guilds)).values_list("pk", flat=True))
        for kind, label in ((TimerEventKind.WARN, "warnings"), (TimerEventKind.EXPIRE, "expiries")):
            events = TimerEvent.objects.filter(timer_id__in=timer_ids, kind=kind)
            counted = events.count()
            twice = events.values("timer_id").annotate(n=Count("id")).filter(n__gt=1).count()
            setattr(result, label, counted)
            # A warning is a courtesy sent at most once: one still queued when its timer expires is dropped.
            if twice or (kind == TimerEventKind.EXPIRE and counted != result.timers):
                result.problems.append(f"{label}: {counted} for {result.timers} timers, {twice} timers twice")
        left = TimedRole.objects.filter(guild_id__in=list(fake.guilds), state=TimerState.ACTIVE).count()
        if left:
            result.problems.append(f"timers: {left} still active after the drain")
        removed = removals(fake)
        paths = {role_path(g, m, fake.guilds[g].role("VIP").id) for g, members in holders.items() for m in members}
        if set(removed) != paths or max(removed.values(), default=1) > 1:
            result.problems.append(
                f"roles: {len(paths - set(removed))} not removed, {sum(n > 1 for n in removed.values())} removed twice"
            )
        bot_log = {g.channel("bot-log").id for g in fake.guilds.values()}
        lines = Counter(
            line for m in messages if int(m.get("channel_id", 0)) in bot_log for line in m["content"].split("\n") if line
        )
        if lines and max(lines.values()) > 1:
            result.problems.append(f"notices: a line posted twice, e.g. {lines.most_common(2)}")
        if result.web_errors:
            result.problems.append(f"web: {len(result.web_errors)} failed reads, e.g. {result.web_errors[:3]}")
        if fake.unhandled:
            result.problems.append(f"fake Discord: unhandled requests {fake.unhandled[:3]}")
    return result


def _ledger_sums():
    from django.db.models import Sum

    from commands.models import CookieLedger

    return (
        CookieLedger.objects.values("guild_id", "receiver_id")
        .annotate(total=Sum("delta"))
        .order_by()
        .values_list("guild_id", "receiver_id", "total")
    )


def report(result: SoakResult) -> list[list[str]]:
    return [
        ["traffic", f"{result.traffic_seconds:.0f} s, then {result.drain_seconds:.0f} s for the backlog"],
        ["cookie messages / gives", f"{result.cookie_messages:,} / {result.gives:,}"],
        ["custom-command hits", f"{result.commands:,}"],
        ["timers: warnings / expiries", f"{result.timers:,}: {result.warnings:,} / {result.expiries:,}"],
        ["web reads", f"{result.web_reads:,}, {len(result.web_errors)} failed"],
        ["reply p50 / p99 / max", f"{result.p(0.5):.0f} / {result.p(0.99):.0f} / {max(result.reply_ms, default=0):.0f} ms"],
        ["problems", "; ".join(result.problems) or "none"],
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--timers", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=30)
    args = parser.parse_args()

    from _setup import machine, print_table
    from django.core.management import call_command

    from commands.models import CookieBalance, CookieLedger, CustomCommand, GuildSettings
    from timers.models import TimedRole

    call_command("migrate", verbosity=0)
    ids = guild_ids_on_shards(SHARD_COUNT, GUILDS_PER_SHARD)
    for model in (TimedRole, CookieLedger, CookieBalance, CustomCommand, GuildSettings):
        model.objects.filter(guild_id__in=ids).delete()
    config = SoakConfig(seconds=args.seconds, timers=args.timers, rate=args.rate, settle_seconds=max(90, args.seconds))
    workdir = Path(tempfile.mkdtemp(prefix="guildhall-soak-"))
    try:
        result = run(config, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for model in (TimedRole, CookieLedger, CookieBalance, CustomCommand, GuildSettings):
            model.objects.filter(guild_id__in=ids).delete()
    print_table(
        f"Soak: web + 2 clusters + 2 shards, {args.seconds:.0f} s at {args.rate:.0f} messages/s — {machine()}",
        ["", ""],
        report(result),
    )
    if result.problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
