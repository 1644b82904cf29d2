"""django-q2 tasks that talk to Discord (plain functions referred to by dotted path)."""
from __future__ import annotations

import asyncio
import logging

from django.conf import settings
from django.db import close_old_connections

from bots.rest import DiscordRest
from bots.sweeper import Sweeper
from ops.services import sweep_run_record

logger = logging.getLogger(__name__)
SWEEP_SECONDS = 55  # the schedule starts a run every minute; each one keeps going until the next


async def _sweep(seconds: float):
    if not settings.DISCORD_TOKEN:
        logger.warning("DISCORD_TOKEN is not set: the sweep only resumes paused timers; expiries and warnings wait")
        return await Sweeper(None).run(seconds)
    async with DiscordRest() as rest:
        return await Sweeper(rest).run(seconds)


def sweep_timers(seconds: float = SWEEP_SECONDS) -> dict:
    """One sweep run: about ``seconds`` of acting on due timer work as it falls due."""
    close_old_connections()
    figures = asyncio.run(_sweep(seconds))
    record = figures.as_record()
    sweep_run_record(**record)
    close_old_connections()
    return {k: record[k] for k in ("resumed", "warned", "expired", "reported", "failures")}
