"""The bot process: point discord.py at the configured endpoints, run until told to stop.

SIGTERM and SIGINT close the gateway, let the in-flight handlers finish (bounded), write
the usage counts, close database connections and exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import discord
import yarl
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)
STOP_GRACE_SECONDS = 8


class StartupError(Exception):
    """A start-up failure with a message that says what to do (no traceback)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def apply_endpoints() -> None:
    """Use DISCORD_API_BASE and DISCORD_GATEWAY_URL (REST proxies at scale; a fake in tests)."""
    discord.http.Route.BASE = settings.DISCORD_API_BASE
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.DISCORD_GATEWAY_URL)


async def _run(token: str, **bot_options) -> None:
    from bots.bot import GuildhallBot

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bot = GuildhallBot(**bot_options)
    async with bot:
        runner = asyncio.create_task(bot.start(token), name="gateway")
        stopper = asyncio.create_task(stop.wait(), name="stop-signal")
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner in done:
            stopper.cancel()
            exc = runner.exception()
            if isinstance(exc, discord.LoginFailure):
                raise StartupError(
                    "login failed: Discord rejected DISCORD_TOKEN; copy the bot token again from the developer portal."
                )
            if isinstance(exc, discord.PrivilegedIntentsRequired):
                raise StartupError(
                    "Discord refused the gateway connection: turn on the Server Members and Message Content intents "
                    "for this bot in the Discord developer portal (Bot → Privileged Gateway Intents)."
                )
            if exc is not None:
                raise exc
            return
        logger.info("stop requested; closing the gateway")
        try:
            await asyncio.wait_for(_shutdown(bot), timeout=STOP_GRACE_SECONDS)
        except TimeoutError:
            logger.warning("shutdown took longer than %ss; exiting anyway", STOP_GRACE_SECONDS)
        runner.cancel()


async def _shutdown(bot) -> None:
    await bot.close()
    await bot.guild_cache.flush_usage()


def run(token: str | None = None, **bot_options) -> int:
    """Run the bot until it is stopped; return the process exit code."""
    apply_endpoints()
    try:
        asyncio.run(_run(token or settings.DISCORD_TOKEN, **bot_options))
    except StartupError as exc:
        logger.error("%s", exc)
        raise
    finally:
        connections.close_all()
    return 0
