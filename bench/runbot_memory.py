"""Resident memory of `manage.py runbot` connected to a fake guild of 50,000 members,
against a default-configured discord.py bot (member cache on, chunking at start-up) in
the same run, and against discord.py alone with the bot's settings (the floor) and
`runbot` with every web app loaded (``GUILDHALL_BOT_WEB_APPS=1``, as before the bot
process left the web stack out), and Red-DiscordBot 3.5.24 with its CustomCommands cog as Red
ships it (every intent, members chunked at start-up, its own venv: bench/red/setup.sh), answering
its `ping`.

``--traffic`` adds a row: `runbot` after every member of the guild has shown up (one
message each, 500 a second by default (``--rate``), then a thousand nickname changes and
500 departures and rejoins), with the names buffered and written to the directory
(``bots.directory``) before it is measured: the bot's memory must not grow with the
members it has seen.

    .venv/bin/python bench/runbot_memory.py [--members 50000] [--traffic [--rate 500]]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _setup  # noqa: F401  (Django set-up)
from _red import RedInstance, RedUnavailable
from _setup import ROOT, machine, print_table

from tests.fake_discord import FakeDiscord, FakeGuild, FakeUser

GUILD_ID = 712_345_678_901_234_567
BOT = FakeUser(id=712_345_678_900_000_001, name="Guildhall", bot=True)
ADMIN = FakeUser(id=712_345_678_900_000_002, name="admin")
FIRST_MEMBER = 300_000_000_000_000_000  # the first member's id (many_members_guild)

NAIVE_BOT = r"""
import asyncio, os, discord, yarl
from discord.ext import commands
discord.http.Route.BASE = os.environ["DISCORD_API_BASE"]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["DISCORD_GATEWAY_URL"])
bot = commands.Bot(command_prefix="!!", intents=discord.Intents.all(), guild_ready_timeout=0.1)

@bot.command()
async def ping(ctx):
    await bot.wait_until_ready()  # after the member chunks have arrived
    await ctx.send(f"Pong! members cached: {sum(len(g.members) for g in bot.guilds)}")

bot.run(os.environ["DISCORD_TOKEN"], log_handler=None)
"""

# The floor: discord.py alone, with the bot's intents and cache settings, answering ping.
BARE_BOT = r"""
import os, discord, yarl
discord.http.Route.BASE = os.environ["DISCORD_API_BASE"]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["DISCORD_GATEWAY_URL"])
intents = discord.Intents.none()
intents.guilds = intents.members = intents.guild_messages = intents.message_content = intents.dm_messages = True
client = discord.Client(intents=intents, member_cache_flags=discord.MemberCacheFlags.none(),
                        chunk_guilds_at_startup=False, max_messages=100, guild_ready_timeout=0.1)

@client.event
async def on_message(message):
    if message.content == "!!ping":
        await message.channel.send("Pong! bare discord.py")

client.run(os.environ["DISCORD_TOKEN"], log_handler=None)
"""


def rss_kib(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    values = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if line.startswith(("VmRSS", "VmHWM"))}
    return values["VmRSS"], values["VmHWM"]


def measure(
    fake: FakeDiscord, argv: list[str], env: dict[str, str], traffic: int = 0, log: Path | None = None, rate: float = 0
) -> tuple[int, int, str]:
    before = len(fake.messages)
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115  (closed in the finally below)
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL)
    try:
        fake.wait_for_ready_sent(60, count=fake.identify_count + 1)
        channel = fake.guilds[GUILD_ID].text_channel.id
        deadline = time.monotonic() + 120
        reply = None
        while reply is None and time.monotonic() < deadline:
            fake.send_message(GUILD_ID, channel, ADMIN.id, "!!ping")
            time.sleep(1.0)
            reply = next((m for m in fake.messages[before:] if m["content"].startswith("Pong")), None)
        if reply is None:
            raise SystemExit("the bot never answered")
        answer = reply["content"]
        if traffic:
            assert log is not None
            answer = members_arrive(fake, traffic, log, rate)
        time.sleep(3)  # let start-up garbage settle
        rss, hwm = rss_kib(proc.pid)
        return rss, hwm, answer
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()  # never left running behind the bench
            proc.wait()
        if log:
            out.close()


def members_arrive(fake: FakeDiscord, count: int, log: Path, rate: float) -> str:
    """Every member posts once (``rate`` a second), then 1,000 change their nickname and 500 leave and
    rejoin; wait for the directory's writes."""
    guild = fake.guilds[GUILD_ID]
    channel = guild.text_channel.id
    members = sorted(uid for uid in guild.members if uid >= FIRST_MEMBER)[:count]
    started = time.monotonic()
    for n, user_id in enumerate(members, 1):
        fake.send_message(GUILD_ID, channel, user_id, "hello")
        if rate and n % 50 == 0:
            time.sleep(max(0.0, started + n / rate - time.monotonic()))
        if n % 10_000 == 0:
            print(f"  {n:,} of {len(members):,} members have posted ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    for user_id in members[:1000]:
        fake.member_update(GUILD_ID, user_id, nick=f"nick{user_id % 1000}")
    for user_id in members[1000:1500]:
        fake.member_leave(GUILD_ID, user_id)
    for user_id in members[1000:1500]:
        fake.member_join(GUILD_ID, guild.users[user_id])
    # Changes that land in one flush window collapse to the newest (that is the buffer's point),
    # so wait for every member to be written and then for the writes to stop.
    deadline, last, quiet_since = time.monotonic() + 300, (0, 0), time.monotonic()
    while time.monotonic() < deadline:
        found = re.findall(r"directory: wrote \d+ rows \(flush (\d+), (\d+) rows in all\)", log.read_text())
        now = (int(found[-1][0]), int(found[-1][1])) if found else (0, 0)
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif last[1] >= len(members) and time.monotonic() - quiet_since > 12:
            return f"{last[1]:,} directory rows in {last[0]} flushes"
        time.sleep(1)
    raise SystemExit(f"the directory wrote {last[1]:,} rows for {len(members):,} members")


def many_members_guild(count: int) -> FakeGuild:
    """A typical guild plus ``count`` plain members whose ids are a snowflake's millisecond apart, as
    real accounts' are. (FakeGuild.with_many_members' consecutive ids all share discord.py's hash of a
    user, ``id >> 22``, which makes any set of members quadratic: Red builds one at start-up to count
    its unique users, and blocked its event loop for minutes on 50,000 of them.)"""
    guild = FakeGuild.typical(guild_id=GUILD_ID, bot_user=BOT, members=[ADMIN], admin_ids=[ADMIN.id])
    for n in range(count):
        user_id = FIRST_MEMBER + (n << 22)
        guild.users[user_id] = FakeUser(user_id, f"member{n}")
        guild.members[user_id] = []
    return guild


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--traffic", action="store_true", help="add the row with every member seen and written")
    parser.add_argument("--rate", type=float, default=500, help="messages per second with --traffic (0: as fast as possible)")
    args = parser.parse_args()
    guild = many_members_guild(args.members)
    data_dir = tempfile.mkdtemp(prefix="guildhall-bench-")
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake:
        env = {**os.environ, **fake.env(ready_timeout=0.1)}
        if "DATABASE_URL" not in env:
            env["GUILDHALL_DATA_DIR"] = data_dir
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        ours = measure(fake, [sys.executable, "manage.py", "runbot"], env)
        seen = None
        if args.traffic:
            log = Path(data_dir) / "runbot-traffic.log"
            seen = measure(fake, [sys.executable, "manage.py", "runbot"], env, traffic=args.members, log=log, rate=args.rate)
        naive = measure(fake, [sys.executable, "-c", NAIVE_BOT], env)
        bare = measure(fake, [sys.executable, "-c", BARE_BOT], env)
        full = measure(fake, [sys.executable, "manage.py", "runbot"], {**env, "GUILDHALL_BOT_WEB_APPS": "1"})
        red, red_error = None, ""
        try:
            instance = RedInstance(GUILD_ID, 0)  # CustomCommands loaded, as for runbot no commands in the guild
            try:
                red = measure(fake, instance.argv(ADMIN.id), instance.env(env))
            finally:
                instance.close()
        except (RedUnavailable, SystemExit) as error:
            red_error = str(error)
    shutil.rmtree(data_dir, ignore_errors=True)  # kept when a run fails: its log explains why
    rows = [
        ["manage.py runbot", f"{ours[0] / 1024:.0f}", f"{ours[1] / 1024:.0f}", ours[2]],
        *(
            [
                [
                    f"manage.py runbot after all {args.members:,} members were seen",
                    f"{seen[0] / 1024:.0f}",
                    f"{seen[1] / 1024:.0f}",
                    seen[2],
                ]
            ]
            if seen
            else []
        ),
        [
            "manage.py runbot with every web app (GUILDHALL_BOT_WEB_APPS=1)",
            f"{full[0] / 1024:.0f}",
            f"{full[1] / 1024:.0f}",
            full[2],
        ],
        ["bare discord.py, the bot's intents and cache settings", f"{bare[0] / 1024:.0f}", f"{bare[1] / 1024:.0f}", bare[2]],
        ["default discord.py bot (member cache, chunking)", f"{naive[0] / 1024:.0f}", f"{naive[1] / 1024:.0f}", naive[2]],
        (
            [
                "Red-DiscordBot 3.5.24, CustomCommands loaded, as shipped",
                f"{red[0] / 1024:.0f}",
                f"{red[1] / 1024:.0f}",
                red[2],
            ]
            if red
            else ["Red-DiscordBot 3.5.24", "—", "—", f"not measured: {red_error}"]
        ),
    ]
    print_table(
        f"Bot memory, one guild of {args.members:,} members — {machine()}", ["process", "RSS MiB", "peak MiB", "answer"], rows
    )


if __name__ == "__main__":
    main()
