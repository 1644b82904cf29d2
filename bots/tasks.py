"""django-q2 tasks that talk to Discord (plain functions referred to by dotted path)."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, cast

from django.conf import settings
from django.db import close_old_connections, connections

from bots.db import call
from bots.rest import DiscordRest
from bots.role_changes import role_add, role_remove
from bots.sweeper.engine import SweepFigures
from bots.sweeper.relay import HANDOFF_SECONDS, Relay
from bots.sweeper.stop import StopFlag, parent_gone, stop_flag
from bots.timer_notices import timer_notice_send
from ops.services import sweep_run_record
from timers.models import LIVE_STATES, TimerState
from timers.notices import NOTICE_KINDS
from timers.selectors import timer_get, timer_last_event

logger = logging.getLogger(__name__)
_warned_no_token = False
SWEEP_SECONDS = 45  # one run's length; it queues the next one and sweeps on until that one runs
SWEEP_TASK = "bots.tasks.sweep_timers"
SUMMARY = ("resumed", "warned", "expired", "reported", "failures")


def _queue_successor(seconds: float, token: str) -> None:
    from django_q.tasks import async_task

    async_task(SWEEP_TASK, seconds, token, task_name=f"sweep-{token[5:17]}", group="guildhall.timers.sweep")


def _run_seconds(seconds: float) -> float:
    # A run (with its hand-over) must end well inside q2's task timeout, or q2 kills it.
    timeout = cast(int, settings.Q_CLUSTER["timeout"])
    return max(0.0, min(seconds, timeout - HANDOFF_SECONDS - 5))


async def _sweep(relay: Relay, stop: StopFlag) -> SweepFigures:
    global _warned_no_token
    try:
        if not settings.DISCORD_TOKEN:
            if not _warned_no_token:  # once per worker process, not every minute
                logger.warning("DISCORD_TOKEN is not set: the sweep only resumes paused timers; expiries and warnings wait")
                _warned_no_token = True
            return await relay.run(None, stop)
        async with DiscordRest() as rest:
            return await relay.run(rest, stop)
    finally:
        await call(connections.close_all)  # the ORM ran in asgiref's sync thread, which outlives this loop


def sweep_timers(seconds: float = SWEEP_SECONDS, token: str = "") -> dict[str, Any]:
    """One run of the timer engine: act on due timer work as it falls due, then hand over.

    Queued by the one-minute watchdog schedule (no ``token``: it runs only when no run
    holds the engine's baton) and by each run for its successor (with the ``token`` the
    baton was handed to). On SIGTERM it hands over at once and releases its claims.
    """
    close_old_connections()
    seconds = _run_seconds(seconds)
    relay = Relay(seconds=seconds, queue_successor=lambda next_token: _queue_successor(seconds, next_token))
    if not relay.take(token):
        close_old_connections()
        return {"skipped": "another sweep run holds the baton"}
    with stop_flag() as stop:
        figures = asyncio.run(_sweep(relay, stop))
    record = figures.as_record()
    sweep_run_record(**record)
    connections.close_all()
    if stop.signalled and parent_gone():
        # The whole process group got SIGTERM (honcho, Heroku): q2's Sentinel died at once and
        # nobody will ever send this worker its STOP, so leave now (claims released, baton passed).
        logger.info("sweep run %s handed over on SIGTERM; worker exiting", relay.holder)
        os._exit(0)
    return {k: record[k] for k in SUMMARY} | {"released": figures.released}


async def _apply(timer_id: int) -> str:
    timer = await call(timer_get, timer_id=timer_id)
    await call(connections.close_all)  # the ORM ran in asgiref's sync thread, which outlives this loop
    if timer is None:
        return "gone"
    async with DiscordRest() as rest:
        if timer.state in LIVE_STATES:
            change = await role_add(
                rest.http, timer.guild_id, timer.member_id, timer.role_id, "Guildhall timer: changed on the dashboard"
            )
            if not change.done:
                return change.refusal
            last = await call(timer_last_event, timer_id=timer.pk)
            if last is not None and last.kind in NOTICE_KINDS:  # set or extended on the web: tell the member
                await timer_notice_send(rest.http, timer, last.kind)
            return "granted"
        if timer.state == TimerState.CLEARED:
            change = await role_remove(
                rest.http, timer.guild_id, timer.member_id, timer.role_id, "Guildhall timer: cleared on the dashboard"
            )
            return change.expiry_outcome
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
