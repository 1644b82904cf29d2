"""Running the timer engine (bots.sweeper) against the fake Discord, with time under the test's control.

The engine runs in-process with ``asyncio.run``; its clock is a :class:`Clock` the test moves,
and the services are given the same instants through their ``now=`` parameters.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from bots.rest import DiscordRest
from bots.sweeper import Sweeper
from tests.fake_discord import FakeDiscord, pointed_at
from timers.models import TimedRole, TimerEvent, TimerEventKind

T = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)  # when the tests' timers are set
ROLE_PATH = r"/guilds/\d+/members/\d+/roles/\d+"


class Clock:
    """A settable "now" for the Sweeper: ``base + offset``."""

    def __init__(self, base: datetime = T) -> None:
        self.base = base
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return self.base + self.offset

    def at(self, offset: timedelta) -> datetime:
        """Move to ``base + offset`` and return that instant."""
        self.offset = offset
        return self()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def engine_connections_closed():
    """Close the connection the engine used in asgiref's one sync thread, which outlives asyncio.run.

    (On PostgreSQL a session left open keeps the test database from being dropped.)
    """
    yield
    asyncio.run(sync_to_async(connections.close_all, thread_sensitive=True)())


@pytest.fixture
def discord_fake(fake: FakeDiscord, settings):
    """The fake Discord from tests/bots/conftest.py, with the product's settings pointing at it."""
    settings.DISCORD_API_BASE = fake.api_base
    settings.DISCORD_TOKEN = fake.token
    with pointed_at(fake):  # DiscordRest sets the process-wide Route.BASE; put it back afterwards
        yield fake


def sweep_pass(clock: Clock, *, owner: str | None = None) -> int:
    """One engine pass (its own REST client, as each sweep run has); the number of items handled."""

    async def go() -> int:
        async with DiscordRest() as rest:
            return await Sweeper(rest, owner=owner, clock=clock).pass_once()

    return asyncio.run(go())


def sweep_at(clock: Clock, offset: timedelta, *, owner: str | None = None) -> int:
    """Move the clock to ``T + offset`` and run one pass there."""
    clock.at(offset)
    return sweep_pass(clock, owner=owner)


def role_path(guild_id: int, member_id: int, role_id: int) -> str:
    return f"/guilds/{guild_id}/members/{member_id}/roles/{role_id}"


def requests_to(fake: FakeDiscord, method: str, path: str) -> list[dict]:
    return [r for r in fake.requests if r["method"] == method and r["path"] == path]


def expire_events(timer: TimedRole) -> int:
    return TimerEvent.objects.filter(timer_id=timer.pk, kind=TimerEventKind.EXPIRE).count()


def stored(timer: TimedRole) -> TimedRole:
    return TimedRole.objects.get(pk=timer.pk)
