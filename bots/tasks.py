"""django-q2 tasks that talk to Discord (plain functions referred to by dotted path)."""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings
from django.db import close_old_connections, connections

from bots.db import call
from bots.rest import DiscordRest
from bots.sweeper import Sweeper
from ops.services import sweep_run_record

logger = logging.getLogger(__name__)
_warned_no_token = False
SWEEP_SECONDS = 55  # the schedule starts a run every minute; each one keeps going until the next


async def _sweep(seconds: float):
    global _warned_no_token
    try:
        if not settings.DISCORD_TOKEN:
            if not _warned_no_token:  # once per worker process, not every minute
                logger.warning("DISCORD_TOKEN is not set: the sweep only resumes paused timers; expiries and warnings wait")
                _warned_no_token = True
            return await Sweeper(None).run(seconds)
        async with DiscordRest() as rest:
            return await Sweeper(rest).run(seconds)
    finally:
        await call(connections.close_all)  # the ORM ran in asgiref's sync thread, which outlives this loop


def sweep_timers(seconds: float = SWEEP_SECONDS) -> dict:
    """One sweep run: about ``seconds`` of acting on due timer work as it falls due."""
    close_old_connections()
    figures = asyncio.run(_sweep(seconds))
    record = figures.as_record()
    sweep_run_record(**record)
    close_old_connections()
    return {k: record[k] for k in ("resumed", "warned", "expired", "reported", "failures")}


async def _apply(timer_id: int) -> str:
    from timers.models import LIVE_STATES, TimedRole, TimerState

    timer = await call(lambda: TimedRole.objects.filter(pk=timer_id).first())
    await call(connections.close_all)  # the ORM ran in asgiref's sync thread, which outlives this loop
    if timer is None:
        return "gone"
    async with DiscordRest() as rest:
        if timer.state in LIVE_STATES:
            refused = await rest.role_add(
                timer.guild_id, timer.member_id, timer.role_id, "Guildhall timer: changed on the dashboard"
            )
            return refused or "granted"
        if timer.state == TimerState.CLEARED:
            outcome, _ = await rest.role_remove(
                timer.guild_id, timer.member_id, timer.role_id, "Guildhall timer: cleared on the dashboard"
            )
            return outcome
    return "nothing to do"  # expired timers are the sweep's


def timer_role_apply(timer_id: int) -> str:
    """Make Discord match a timer changed outside the bot (dashboard, API): grant or take the role.

    Enqueued after the change commits; a failure is retried by q2 (the calls are idempotent).
    """
    if not settings.DISCORD_TOKEN:
        logger.warning("DISCORD_TOKEN is not set: timer %s changed, but Discord can't be told", timer_id)
        return "no token"
    close_old_connections()
    return asyncio.run(_apply(timer_id))
