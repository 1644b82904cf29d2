"""Every 15 s: one heartbeat row per shard (for /health/ready and the status page), the
custom-command usage counts gathered in memory since the last beat, and a prune of the
command cooldowns that have run out."""

from __future__ import annotations

import logging
import math

from discord.ext import commands, tasks

from bots.db import call
from commands.services import command_cooldowns_prune
from ops.services import shard_heartbeat_record

logger = logging.getLogger(__name__)
BEAT_SECONDS = 15


class Heartbeat(commands.Cog):
    def __init__(self, bot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.beat.start()

    async def cog_unload(self) -> None:
        self.beat.cancel()

    @tasks.loop(seconds=BEAT_SECONDS)
    async def beat(self) -> None:
        try:
            await self.bot.guild_cache.flush_usage()
            await call(command_cooldowns_prune)
            shard_count = self.bot.shard_count or 1
            for shard_id, shard in self.bot.shards.items():
                latency = shard.latency
                guilds = sum(1 for g in self.bot.guilds if g.shard_id == shard_id)
                await call(
                    shard_heartbeat_record,
                    shard_id=shard_id,
                    shard_count=shard_count,
                    latency_ms=None if math.isinf(latency) or math.isnan(latency) else round(latency * 1000, 1),
                    guild_count=guilds,
                    started_at=self.bot.started_at,
                )
        except Exception:  # a missed beat must not stop the next one
            logger.exception("heartbeat failed")

    @beat.before_loop
    async def _wait_ready(self) -> None:
        await self.bot.wait_until_ready()


async def setup(bot) -> None:
    await bot.add_cog(Heartbeat(bot))
