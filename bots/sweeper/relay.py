"""The engine as a relay of sweep runs, so that it never stops between runs and stops cleanly.

django-q2's scheduler looks at schedules only every 30 s, so a run started each minute
left gaps of up to ~35 s between runs (STACK_NOTES.md). Instead each run holds the
engine's baton (``SweepBaton``) and, before it ends, hands it to a successor it queues
itself; it keeps sweeping until the successor has started, so some run is always
sweeping. The one-minute schedule is a watchdog: its run takes the baton only when
nobody holds it (first start, or after a crash), and otherwise ends at once.

On stop (see bots.sweeper.stop) a run hands the baton on at once, so a worker of another
cluster starts the next run within the broker's poll, and releases what it claimed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from bots.db import call
from bots.rest import DiscordRest
from bots.sweeper.engine import Sweeper, SweepFigures, worker_name
from bots.sweeper.stop import StopFlag
from timers.selectors import sweep_baton_holder
from timers.services.relay import sweep_baton_drop, sweep_baton_pass, sweep_baton_renew, sweep_baton_take

logger = logging.getLogger(__name__)
BATON = "timers"
HOLD = timedelta(seconds=10)  # a run renews every RENEW_SECONDS; a dead one's baton is free after this
RENEW_SECONDS = 2.0
SUCCESSOR_HOLD = timedelta(seconds=60)  # a queued successor has this long to start before the watchdog may
HANDOFF_SECONDS = 15.0  # how long a run keeps sweeping while its successor gets going
WATCH_SECONDS = 0.1  # how often the stop flag is read
HANDOFF_POLL_SECONDS = 0.25  # how often a handing-over run looks whether its successor has started


@dataclass
class Relay:
    """One run's part in the relay: ``holder`` names it on the baton."""

    seconds: float
    queue_successor: Callable[[str], None]  # queues the next run with the token it is to present
    holder: str = ""

    def __post_init__(self) -> None:
        self.holder = self.holder or f"{worker_name()}:{uuid.uuid4().hex[:12]}"

    def take(self, token: str = "") -> bool:
        """Take the baton (free, run out, or handed to ``token``); sync, before the run starts."""
        return sweep_baton_take(name=BATON, holder=self.holder, hold=HOLD, token=token)

    async def run(self, rest: DiscordRest | None, stop: StopFlag) -> SweepFigures:
        """Sweep for ``seconds``, hand over, sweep on until the successor runs; stop at once on ``stop``."""
        sweeper = Sweeper(rest, owner=uuid.uuid4().hex)
        overlap = min(HANDOFF_SECONDS, self.seconds)
        sweeping = asyncio.ensure_future(sweeper.run(self.seconds + overlap))
        try:
            await self._drive(sweeper, sweeping, stop, overlap)
        except BaseException:
            sweeper.halt.set()
            await asyncio.gather(sweeping, return_exceptions=True)
            # Let go of the baton so that the watchdog's next run starts without waiting out our hold.
            with contextlib.suppress(Exception):
                await call(sweep_baton_drop, name=BATON, holder=self.holder)
            raise
        return await sweeping

    async def _drive(self, sweeper: Sweeper, sweeping: asyncio.Future[SweepFigures], stop: StopFlag, overlap: float) -> None:
        end = time.monotonic() + self.seconds
        renewed = time.monotonic()
        while time.monotonic() < end and not sweeping.done():
            if stop.is_set():
                sweeper.halt.set()  # start nothing new; what is in flight finishes or is released meanwhile
                break
            await asyncio.sleep(WATCH_SECONDS)
            if time.monotonic() - renewed >= RENEW_SECONDS:
                renewed = time.monotonic()
                if not await call(sweep_baton_renew, name=BATON, holder=self.holder, hold=HOLD):
                    logger.warning("sweep run %s lost the baton (its hold ran out); ending without a successor", self.holder)
                    sweeper.halt.set()
                    return
        token = await self._hand_over()
        if token is None:
            return
        deadline = time.monotonic() + overlap
        while not sweeping.done() and time.monotonic() < deadline:
            if stop.is_set() or await call(sweep_baton_holder, name=BATON) != token:
                sweeper.halt.set()  # stopping, or the successor has taken the baton and is sweeping
                return
            await asyncio.sleep(HANDOFF_POLL_SECONDS)

    async def _hand_over(self) -> str | None:
        """Pass the baton to a new token and queue the run that presents it; the token (None if we had no baton)."""
        token = f"next:{uuid.uuid4().hex}"
        if not await call(sweep_baton_pass, name=BATON, holder=self.holder, token=token, hold=SUCCESSOR_HOLD):
            return None
        try:
            await call(lambda: self.queue_successor(token))
        except Exception:
            logger.exception("could not queue the next sweep run; the watchdog schedule will start one")
            await call(sweep_baton_drop, name=BATON, holder=token)
            return None
        return token
