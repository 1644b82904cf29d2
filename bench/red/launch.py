"""Starts Red-DiscordBot 3.5.24 against the fake Discord, for the benches (run with Red's own venv,
see setup.sh; this file imports nothing of Guildhall).

    RED_BENCH_DIR=/tmp/x python launch.py seed GUILD_ID COUNT   # an instance, COUNT custom commands
    RED_BENCH_DIR=/tmp/x python launch.py run OWNER_ID          # Red, prefix !!, CustomCommands loaded

The instance lives in RED_BENCH_DIR: its config.json (Red's instance list, through
XDG_CONFIG_HOME) and JSON storage. The commands are written through Red's own Config API under
the CustomCommands cog's identifier, exactly as `[p]customcom create simple` stores them. `run`
points discord.py at the fake (DISCORD_API_BASE, DISCORD_GATEWAY_URL, DISCORD_TOKEN), stops Red's
start-up check of PyPI for a newer version (no internet here; it only prints a notice), and
otherwise starts Red as `redbot` does, with its shipped defaults (every intent, member
chunking at start-up, a 1,000-message cache, uvloop).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
from pathlib import Path

BENCH_DIR = Path(os.environ["RED_BENCH_DIR"])
os.environ["XDG_CONFIG_HOME"] = str(BENCH_DIR / "config")  # before redbot computes its config path
INSTANCE = "guildhall_bench"
CUSTOMCOM_ID = 414589031223512  # CustomCommands' Config identifier (redbot/cogs/customcom)


def write_instance() -> None:
    config_dir = BENCH_DIR / "config" / "Red-DiscordBot"
    config_dir.mkdir(parents=True, exist_ok=True)
    data = BENCH_DIR / "data"
    data.mkdir(exist_ok=True)
    instance = {
        "DATA_PATH": str(data),
        "COG_PATH_APPEND": "cogs",
        "CORE_PATH_APPEND": "core",
        "STORAGE_TYPE": "JSON",
        "STORAGE_DETAILS": {},
    }
    (config_dir / "config.json").write_text(json.dumps({INSTANCE: instance}, indent=4))


async def seed(guild_id: int, count: int) -> None:
    from redbot.core import Config, _drivers, data_manager

    data_manager.load_basic_configuration(INSTANCE)
    driver_cls = _drivers.get_driver_class()
    await driver_cls.initialize(**data_manager.storage_details())
    config = Config.get_conf(None, CUSTOMCOM_ID, cog_name="CustomCommands")
    config.register_guild(commands={})
    author = {"id": 1, "name": "bench"}
    commands = {
        f"cmd{i}": {
            "author": author,
            "command": f"cmd{i}",
            "cooldowns": {},
            "created_at": "01/12/2026 00:00:00",
            "editors": [],
            "response": f"Hello {{author.mention}}, you said {{0}} (#{i})",
        }
        for i in range(count)
    }
    await config.guild_from_id(guild_id).commands.set(commands)
    # What a first start records; without it Red takes the instance for one whose Python changed
    # and starts it with no cogs loaded, --load-cogs included.
    core = Config.get_core_conf(force_registration=False)
    await core.last_system_info.set(
        {"python_version": list(sys.version_info[:2]), "machine": platform.machine(), "system": platform.system()}
    )
    await driver_cls.teardown()


def run(owner_id: int) -> None:
    import discord
    import yarl

    discord.http.Route.BASE = os.environ["DISCORD_API_BASE"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["DISCORD_GATEWAY_URL"])

    import redbot.__main__ as red_main  # Red's early set-up (uvloop's policy) and its imports, as `redbot` runs them
    from redbot.core import _events

    async def no_pypi():
        raise TimeoutError("no version check in the bench")

    _events.fetch_latest_red_version_info = no_pypi

    sys.argv = [
        "redbot",
        INSTANCE,
        "--no-prompt",
        "--token",
        os.environ["DISCORD_TOKEN"],
        "--prefix",
        "!!",
        "--owner",
        str(owner_id),
        "--load-cogs",
        "customcom",
    ]
    red_main.main()


if __name__ == "__main__":
    if sys.argv[1] == "seed":
        write_instance()
        asyncio.run(seed(int(sys.argv[2]), int(sys.argv[3])))
    elif sys.argv[1] == "run":
        run(int(sys.argv[2]))
    else:
        raise SystemExit(__doc__)
