"""The bot's message path, in process: discord.py parses each gateway MESSAGE_CREATE and
dispatches it to Guildhall's handlers; replies go to a stub HTTP layer (no network).

    .venv/bin/python bench/message_path.py            # uses DATABASE_URL (PostgreSQL for the figures)

Rows: (a) plain chat; (b) custom-command hits with the guild's commands cached;
(c) the Praetbot pattern: load every command of the guild on each command message, then
match; (d) one indexed query per command message through sync_to_async; (e) the floor: a bare
discord.py ``Client`` with the same intents that answers every message with a constant,
through the same parser and stub (as fast as a discord.py bot can go). (b) and (e) run in
alternating rounds, each after a full collection with start-up's objects frozen (gc.freeze, as
runbot does once ready), so that neither pays for the other's garbage: medians of the rates, of each
pair's ratio in CPU time, and the ratio of each one's best round (the least disturbed by others).
(f) and (g): from outside, through the fake gateway on loopback: a 3,000-message burst of
command hits (1,000 commands) sent to a bare discord.py process and to `manage.py runbot`
in turn, timed until the last reply reached the fake's REST API, and the bot process's CPU time
for it (/proc). The fake runs with ``unlimited=True`` and runbot with its shared limiter's global
limit raised: Discord's limits (50 requests/s per bot token, and the bucket headers, which
discord.py itself obeys) would hold both bots to the same 50 replies/s, measuring the limiter.
(h): Red-DiscordBot 3.5.24 with its CustomCommands cog and the same 1,000 commands, as Red ships
(its own venv and discord.py, bench/red/setup.sh; started by bench/red/launch.py), in the same
rotation as (f) and (g) against the same fake.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time

import _setup  # noqa: F401  (Django set-up)
import discord
from _red import RedInstance, RedUnavailable
from asgiref.sync import sync_to_async

from bots.bot import EXTENSIONS, GuildhallBot, bot_intents
from commands.command_templates import RenderContext, compile_template
from commands.models import CustomCommand

GUILD = 990_000_000_000_000_001
CHANNEL = GUILD + 1
BOT_ID = GUILD + 2
MEMBER = GUILD + 3
N_COMMANDS = 10_000
ROUNDS = 40  # (b) and (e) alternate, pairs of ROUND_MESSAGES each; medians, so a busy machine hits both alike
ROUND_MESSAGES = 2_000
GW_ROUNDS = 5  # gateway bursts per process, alternating


def seed() -> None:
    CustomCommand.objects.filter(guild_id=GUILD).delete()
    CustomCommand.objects.bulk_create(
        [
            CustomCommand(guild_id=GUILD, name=f"cmd{i}", template=f"Hello {{user}}, you said {{args}} (#{i})")
            for i in range(N_COMMANDS)
        ],
        batch_size=2000,
    )


def user(uid: int, name: str, bot: bool = False) -> dict:
    return {"id": str(uid), "username": name, "discriminator": "0", "avatar": None, "global_name": name, "bot": bot}


def guild_payload() -> dict:
    return {
        "id": str(GUILD),
        "name": "Bench",
        "owner_id": str(MEMBER),
        "member_count": 2,
        "large": False,
        "roles": [
            {
                "id": str(GUILD),
                "name": "@everyone",
                "permissions": "68608",
                "position": 0,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
            }
        ],
        "channels": [{"id": str(CHANNEL), "type": 0, "name": "general", "position": 0, "permission_overwrites": []}],
        "members": [
            {
                "user": user(BOT_ID, "Guildhall", True),
                "roles": [],
                "joined_at": "2026-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
            }
        ],
        "emojis": [],
        "stickers": [],
        "features": [],
        "threads": [],
        "stage_instances": [],
        "voice_states": [],
        "presences": [],
    }


def message(i: int, content: str) -> dict:
    return {
        "id": str(10**17 + i),
        "channel_id": str(CHANNEL),
        "guild_id": str(GUILD),
        "author": user(MEMBER, "member"),
        "member": {"roles": [], "joined_at": "2026-01-01T00:00:00+00:00", "deaf": False, "mute": False, "flags": 0},
        "content": content,
        "timestamp": "2026-11-23T00:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
    }


class StubHTTP:
    """Answers the bot's REST calls locally, counting the messages it would have posted."""

    def __init__(self) -> None:
        self.sent = 0

    async def request(self, route, **kwargs):
        self.sent += 1
        payload = kwargs.get("json") or {}
        reply = message(self.sent, payload.get("content") or "")
        reply["author"] = user(BOT_ID, "Guildhall", True)
        return reply


async def build_bot() -> tuple[GuildhallBot, StubHTTP]:
    bot = GuildhallBot()
    await bot._async_setup_hook()  # binds the bot to this event loop, as `async with bot` would
    state = bot._connection
    state.user = discord.ClientUser(state=state, data=user(BOT_ID, "Guildhall", True))
    stub = StubHTTP()
    bot.http.request = stub.request
    for extension in EXTENSIONS:
        if not extension.endswith("heartbeat"):
            await bot.load_extension(extension)
    state.parse_guild_create(guild_payload())
    return bot, stub


class FloorClient(discord.Client):
    """The floor: a bare discord.py client that answers every member's message with a constant."""

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:
            return
        await message.channel.send("Hello!")


async def build_floor() -> tuple[FloorClient, StubHTTP]:
    client = FloorClient(intents=bot_intents(), chunk_guilds_at_startup=False)  # no gateway here to chunk through
    await client._async_setup_hook()
    state = client._connection
    state.user = discord.ClientUser(state=state, data=user(BOT_ID, "Floor", True))
    stub = StubHTTP()
    client.http.request = stub.request
    state.parse_guild_create(guild_payload())
    return client, stub


BACKGROUND: set[asyncio.Task] = set()  # the cogs' long-lived loops (directory flush, reconciler): never awaited


def note_background() -> None:
    BACKGROUND.update(asyncio.all_tasks())


async def drain() -> None:
    current = asyncio.current_task()
    while pending := [t for t in asyncio.all_tasks() if t is not current and t not in BACKGROUND and not t.done()]:
        await asyncio.gather(*pending, return_exceptions=True)


LAST_CPU = [0.0]  # CPU seconds of the process during the last run_messages (the machine is shared: less noisy than wall time)


async def run_messages(bot: discord.Client, contents: list[str]) -> float:
    state = bot._connection
    start, cpu = time.perf_counter(), time.process_time()
    for i, content in enumerate(contents):
        state.parse_message_create(message(i, content))
        if i % 200 == 199:
            await drain()
    await drain()
    LAST_CPU[0] = time.process_time() - cpu
    return time.perf_counter() - start


def praetbot_lookup(name: str):
    """Praetbot: every command of the guild, from the database, on each command message."""
    by_name = {c.name: c for c in CustomCommand.objects.filter(guild_id=GUILD)}
    return by_name.get(name)


def indexed_lookup(name: str):
    return CustomCommand.objects.filter(guild_id=GUILD, name=name).first()


async def lookup_and_render(lookup, count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        command = await sync_to_async(lookup)(f"cmd{i % N_COMMANDS}")
        compile_template(command.template).render(RenderContext(MEMBER, "member", CHANNEL, "Bench", ("hi",)))
    return time.perf_counter() - start


# --- through the fake gateway on loopback: the same burst to a bare discord.py process and to runbot
GW_GUILD = 712_345_678_901_234_999
GW_COMMANDS = 1_000
GW_BURST = 3_000
FLOOR_SCRIPT = r"""
import os, discord, yarl
discord.http.Route.BASE = os.environ["DISCORD_API_BASE"]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["DISCORD_GATEWAY_URL"])
intents = discord.Intents.none()
intents.guilds = intents.members = intents.guild_messages = intents.message_content = intents.dm_messages = True
client = discord.Client(intents=intents, chunk_guilds_at_startup=False)

@client.event
async def on_message(message):
    if not message.author.bot:
        await message.channel.send("Hello!")

client.run(os.environ["DISCORD_TOKEN"], log_handler=None)
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    import os
    from pathlib import Path

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gateway_burst(fake, argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Start the bot process, warm it with one command, then dispatch GW_BURST command messages at
    once through the gateway; (replies a second until the last reply reached the fake's REST API,
    replies per CPU-second of the bot process)."""
    import subprocess

    from _setup import ROOT

    from tests.fake_discord import payloads

    g = fake.guilds[GW_GUILD]
    member = next(uid for uid in g.members if not g.users[uid].bot)
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not fake.wait_for_ready_sent(60, count=fake.identify_count + 1):
            raise SystemExit(f"{argv[-1]} never identified")
        before = len(fake.messages)
        fake.wait_for(
            lambda: fake.send_message(GW_GUILD, g.text_channel.id, member, "!!cmd1 warm") and len(fake.messages) > before,
            timeout=60,
            interval=0.5,
            message="no answer to the warm-up",
        )
        time.sleep(1.0)
        before = len(fake.messages)

        async def burst() -> None:
            for i in range(GW_BURST):
                with fake.state.lock:
                    data = payloads.message(
                        channel_id=g.text_channel.id, guild=g, author=g.users[member], content=f"!!cmd{i % GW_COMMANDS} some args"
                    )
                await fake.gateway.dispatch(GW_GUILD, "MESSAGE_CREATE", data)

        start, cpu = time.perf_counter(), cpu_seconds(proc.pid)
        fake._call(burst(), timeout=120)
        fake.wait_for(lambda: len(fake.messages) - before >= GW_BURST, timeout=120, interval=0.005, message="burst replies")
        return GW_BURST / (time.perf_counter() - start), GW_BURST / (cpu_seconds(proc.pid) - cpu)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()  # never left running behind the bench
            proc.wait()


def gateway_rows() -> list[list[str]]:
    import os
    import sys

    from tests.bots.conftest import BOT, cache_env, database_env
    from tests.fake_discord import FakeDiscord, FakeGuild, FakeUser

    member = FakeUser(id=GW_GUILD + 7, name="member")
    CustomCommand.objects.filter(guild_id=GW_GUILD).delete()
    CustomCommand.objects.bulk_create(
        [
            CustomCommand(guild_id=GW_GUILD, name=f"cmd{i}", template=f"Hello {{user}}, you said {{args}} (#{i})")
            for i in range(GW_COMMANDS)
        ]
    )
    guild = FakeGuild.typical(guild_id=GW_GUILD, bot_user=BOT, members=[member], admin_ids=[])
    names = ["floor", "runbot", "red"]
    rates: dict[str, list[float]] = {name: [] for name in names}
    per_cpu: dict[str, list[float]] = {name: [] for name in names}
    red, red_error = None, ""
    try:
        red = RedInstance(GW_GUILD, GW_COMMANDS)  # the same 1,000 commands, in Red's CustomCommands
    except RedUnavailable as error:
        red_error = str(error)
    try:
        # unlimited: no bucket that discord.py waits on; runbot's own limiter still runs, its global limit out of reach.
        with FakeDiscord(guilds=[guild], bot_user=BOT, unlimited=True) as fake:
            env = {**os.environ, **database_env(), **cache_env(), **fake.env(ready_timeout=0.1)}
            env["DISCORD_GLOBAL_RATE_LIMIT"] = "1000000"
            order = [
                ("runbot", [sys.executable, "manage.py", "runbot"], env),
                ("floor", [sys.executable, "-c", FLOOR_SCRIPT], env),
            ]
            if red:
                order.append(("red", red.argv(member.id), red.env(env)))
            for n in range(GW_ROUNDS):
                rotation = order[n % len(order) :] + order[: n % len(order)]  # each one first in turn
                for name, argv, argv_env in rotation:
                    try:
                        rate, cpu_rate = gateway_burst(fake, argv, argv_env)
                    except SystemExit as error:
                        if name != "red":
                            raise
                        red_error, order = f"Red failed in round {n + 1}: {error}", order[:2]
                        break
                    rates[name].append(rate)
                    per_cpu[name].append(cpu_rate)
    finally:
        CustomCommand.objects.filter(guild_id=GW_GUILD).delete()
        if red:
            red.close()
    floor, ours = statistics.median(rates["floor"]), statistics.median(rates["runbot"])
    floor_cpu, ours_cpu = statistics.median(per_cpu["floor"]), statistics.median(per_cpu["runbot"])
    rows = [
        [
            f"(f) gateway: bare discord.py, {GW_BURST:,}-message burst",
            f"{GW_ROUNDS} x {GW_BURST}",
            f"{floor:,.0f}",
            "—",
            f"floor; {floor_cpu:,.0f} replies per CPU-second of its process",
        ],
        [
            f"(g) gateway: manage.py runbot, {GW_COMMANDS:,} commands",
            f"{GW_ROUNDS} x {GW_BURST}",
            f"{ours:,.0f}",
            "—",
            f"{ours / floor:.2f}x floor (rounds {', '.join(f'{r:,.0f}' for r in rates['runbot'])}"
            f" vs {', '.join(f'{r:,.0f}' for r in rates['floor'])}); per CPU-second {ours_cpu:,.0f} = {ours_cpu / floor_cpu:.2f}x",
        ],
    ]
    if rates["red"] and not red_error:
        theirs, theirs_cpu = statistics.median(rates["red"]), statistics.median(per_cpu["red"])
        rows.append(
            [
                f"(h) gateway: Red-DiscordBot 3.5.24 CustomCommands, {GW_COMMANDS:,} commands",
                f"{len(rates['red'])} x {GW_BURST}",
                f"{theirs:,.0f}",
                "—",
                f"{theirs / floor:.2f}x floor (rounds {', '.join(f'{r:,.0f}' for r in rates['red'])});"
                f" per CPU-second {theirs_cpu:,.0f} = {theirs_cpu / floor_cpu:.2f}x; (g) = {ours / theirs:.2f}x Red"
                f" ({ours_cpu / theirs_cpu:.2f}x per CPU-second)",
            ]
        )
    else:
        rows.append([f"(h) gateway: Red-DiscordBot 3.5.24 — not measured: {red_error}", "—", "—", "—", "—"])
    return rows


async def main() -> None:
    from _setup import QueryCounter, machine, print_table

    counter = QueryCounter()  # before any connection opens, so every one is counted
    await sync_to_async(seed)()
    bot, stub = await build_bot()
    note_background()
    rows = []

    chat = [f"just chatting about thing {i}, nothing to see" for i in range(20_000)]
    before = counter.count
    elapsed = await run_messages(bot, chat)
    rows.append(
        ["(a) plain chat", f"{len(chat)}", f"{len(chat) / elapsed:,.0f}", f"{(counter.count - before) / len(chat):.3f}", "—"]
    )

    await run_messages(bot, ["!!cmd1 warm"])  # one load of the guild's commands
    floor, floor_stub = await build_floor()
    gc.collect()
    gc.freeze()  # what runbot does once its guilds have arrived; the 10,000 cached commands with it
    hits = [f"!!cmd{i % N_COMMANDS} some args" for i in range(ROUND_MESSAGES)]
    cached_rates, floor_rates, ratios = [], [], []
    cached_cpu: list[float] = []
    floor_cpu: list[float] = []
    queries = 0
    for n in range(ROUNDS):
        order = [(bot, stub), (floor, floor_stub)]
        for target, target_stub in order if n % 2 == 0 else order[::-1]:
            target_stub.sent = 0
            gc.collect()  # neither round pays for the garbage of the one before
            before = counter.count
            elapsed = await run_messages(target, hits)
            assert target_stub.sent == len(hits), f"{target_stub.sent} replies for {len(hits)} messages"
            (cached_rates if target is bot else floor_rates).append(len(hits) / elapsed)
            (cached_cpu if target is bot else floor_cpu).append(len(hits) / LAST_CPU[0])
            if target is bot:
                queries += counter.count - before
        ratios.append(cached_cpu[-1] / floor_cpu[-1])
    cached_rate, floor_rate = statistics.median(cached_rates), statistics.median(floor_rates)
    cached_queries = queries / (ROUNDS * len(hits))

    praet_n = 40
    before = counter.count
    praet_rate = praet_n / await lookup_and_render(praetbot_lookup, praet_n)
    praet_queries = (counter.count - before) / praet_n
    plain_n = 3000
    before = counter.count
    plain_rate = plain_n / await lookup_and_render(indexed_lookup, plain_n)
    plain_queries = (counter.count - before) / plain_n

    rows.append(["(b) command hits, cache warm", f"{ROUNDS} x {len(hits)}", f"{cached_rate:,.0f}", f"{cached_queries:.3f}", "1x"])
    rows.append(
        [
            "(c) Praetbot: load all, then match",
            f"{praet_n}",
            f"{praet_rate:,.1f}",
            f"{praet_queries:.1f}",
            f"{cached_rate / praet_rate:,.0f}x slower",
        ]
    )
    rows.append(
        [
            "(d) one indexed query per message",
            f"{plain_n}",
            f"{plain_rate:,.0f}",
            f"{plain_queries:.1f}",
            f"{cached_rate / plain_rate:,.1f}x slower",
        ]
    )
    rows.append(
        [
            "(e) floor: bare discord.Client, constant reply",
            f"{ROUNDS} x {len(hits)}",
            f"{floor_rate:,.0f}",
            "0.000",
            f"(b) = {statistics.median(ratios):.2f}x floor per CPU-second, median of the pairs (rounds"
            f" {min(ratios):.2f}–{max(ratios):.2f}); best rounds {max(cached_cpu) / max(floor_cpu):.2f}x",
        ]
    )
    rows += await sync_to_async(gateway_rows)()
    print_table(
        f"Message path, {N_COMMANDS:,} custom commands in the guild — {machine()}",
        ["case", "messages", "messages/s", "queries/message", "vs (b)"],
        rows,
    )
    print(
        f"\n(b) {statistics.median(cached_cpu):,.0f} and (e) {statistics.median(floor_cpu):,.0f} messages per CPU-second"
        f" (medians; best rounds {max(cached_cpu):,.0f} and {max(floor_cpu):,.0f}); the ratio is each pair's, in CPU time,"
        " since others' load on the machine skews wall time"
    )
    await sync_to_async(CustomCommand.objects.filter(guild_id=GUILD).delete)()


if __name__ == "__main__":
    asyncio.run(main())
