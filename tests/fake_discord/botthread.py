"""Running the real discord.py in-process against a FakeDiscord: endpoint patching and a bot thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import discord
import yarl

from .server import FakeDiscord


@contextlib.contextmanager
def pointed_at(fake: FakeDiscord) -> Iterator[None]:
    """Point discord.py's REST base and default gateway at ``fake``; restore them afterwards.

    These are process-wide class attributes (the product sets them from settings in
    ``bots.runtime.apply_endpoints``), so tests must put them back.
    """
    old_base, old_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway


class BotThread:
    """A discord.py client started in a daemon thread with its own event loop.

    ``make_bot`` is called on that loop (so the client binds to it). Use as a context
    manager: entering points discord.py at the fake and starts the bot; leaving closes the
    bot, joins the thread and restores the endpoints. ``error`` holds what ``start()``
    raised (e.g. ``discord.LoginFailure``), if anything.
    """

    def __init__(
        self, fake: FakeDiscord, make_bot: Callable[[], discord.Client], *, token: str | None = None, stop_timeout: float = 10
    ) -> None:
        self.fake = fake
        self.make_bot = make_bot
        self.token = token if token is not None else fake.token
        self.stop_timeout = stop_timeout
        self.bot: discord.Client | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._created = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._endpoints: contextlib.AbstractContextManager | None = None

    def __enter__(self) -> BotThread:
        self._endpoints = pointed_at(self.fake)
        self._endpoints.__enter__()
        try:
            self.start()
        except BaseException:
            self._endpoints.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            self._endpoints.__exit__(None, None, None)

    def start(self) -> None:
        """Start the thread and wait until the client object exists."""
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), name="discord-bot", daemon=True)
        self._thread.start()
        if not self._created.wait(10):
            raise RuntimeError("the bot thread did not start")

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        try:
            self.bot = self.make_bot()
        except BaseException as exc:
            self.error = exc
            self._created.set()
            self._done.set()
            return
        self._created.set()
        try:
            async with self.bot:
                await self.bot.start(self.token)
        except BaseException as exc:  # recorded for the test, e.g. LoginFailure or PrivilegedIntentsRequired
            self.error = exc
        finally:
            self._done.set()

    def wait_until_ready(self, timeout: float = 10) -> None:
        """Wait for ``on_ready``; raise what the bot died of, or AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while not (self.bot is not None and self.bot.is_ready()):
            if self._done.is_set():
                raise AssertionError(f"the bot stopped before it was ready: {self.error!r}\n{self.fake.dump()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot was not ready after {timeout}s\n{self.fake.dump()}")
            time.sleep(0.01)

    def wait_done(self, timeout: float = 10) -> BaseException | None:
        """Wait for ``start()`` to end (for tests where it must fail); returns its exception."""
        if not self._done.wait(timeout):
            raise AssertionError(f"the bot was still running after {timeout}s\n{self.fake.dump()}")
        return self.error

    def run(self, coro: Any, timeout: float = 10) -> Any:
        """Run a coroutine on the bot's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        """Close the client (if still running) and join the thread."""
        if self._thread is None:
            return
        if not self._done.is_set() and self.bot is not None and self.loop is not None and not self.loop.is_closed():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.bot.close(), self.loop).result(self.stop_timeout)
        self._thread.join(self.stop_timeout)
        if self._thread.is_alive():
            raise AssertionError("the bot thread did not stop")
