"""FakeDiscord: the facade tests use. It runs the aiohttp server on its own loop in a daemon thread.

All public methods are synchronous and thread-safe: they hand work to the fake's loop and
wait for it, so a test can drive the fake while the bot runs in another thread or process.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from . import payloads, rest
from .commands import build_slash
from .faults import Faults
from .gateway import Gateway
from .models import FakeGuild, FakeUser, next_snowflake
from .ratelimits import RateLimiter, RateLimits
from .responses import UNLIMITED
from .state import PRIVILEGED_INTENTS, FakeState, Rule
from .world import WorldEvents

CALL_TIMEOUT = 10


class FakeDiscord(WorldEvents):
    """A loopback Discord (REST under ``/api/v10`` and a websocket gateway) for the real discord.py.

    Use as a context manager; see the package docstring for the recorded lists, and
    ``world`` for the changes a test can make (members joining and leaving, renames).
    """

    def __init__(
        self,
        guilds: list[FakeGuild] = (),
        *,
        token: str = "test-token",
        app_id: int | None = None,
        bot_user: FakeUser | None = None,
        owner: FakeUser | None = None,
        privileged_intents: set[str] = frozenset(PRIVILEGED_INTENTS),
        enforce_permissions: bool = True,
        recommended_shards: int = 1,
        host: str = "127.0.0.1",
        rate_limits: RateLimits | None = None,
        unlimited: bool = False,
    ) -> None:
        bot_user = bot_user or FakeUser(id=next_snowflake(), name="Guildhall", bot=True)
        self.state = FakeState(
            guilds=list(guilds),
            token=token,
            app_id=app_id or bot_user.id,  # Discord: an app's id is its bot user's id
            bot_user=bot_user,
            owner=owner or FakeUser(id=next_snowflake(), name="app-owner"),
            privileged_intents=set(privileged_intents),
            enforce_permissions=enforce_permissions,
            recommended_shards=recommended_shards,
        )
        # Off unless asked for: the default headers never make discord.py wait (see responses.py).
        self.state.rate_limiter = RateLimiter(rate_limits, self.state) if rate_limits is not None else None
        # unlimited: the speed benches' switch; the bucket headers then never hold discord.py back either.
        if unlimited and rate_limits is not None:
            raise ValueError("unlimited=True and rate_limits= contradict each other")
        self.state.advertised_limit = UNLIMITED if unlimited else None
        self.state.faults = Faults(self.state)
        self.gateway = Gateway(self.state)
        self.host = host
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # --- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> FakeDiscord:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> FakeDiscord:
        """Bind a free port on 127.0.0.1 and serve from a daemon thread."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        self.gateway.url = self.gateway_url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"fake-discord-{self.port}", daemon=True)
        self._thread.start()
        self._call(self._serve(sock))
        return self

    async def _serve(self, sock: socket.socket) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app[rest.STATE], app[rest.GATEWAY] = self.state, self.gateway
        app.router.add_route("GET", "/", self._root)
        app.router.add_route("*", "/{tail:.*}", rest.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def _root(self, request: web.Request) -> web.StreamResponse:
        # The gateway lives at "/"; a plain GET there is just an unknown REST call.
        if web.WebSocketResponse().can_prepare(request).ok:
            return await self.gateway.handle(request)
        return await rest.handle(request)

    def stop(self) -> None:
        """Close every socket, stop the server and its loop, join the thread."""
        if self._loop is None:
            return
        try:
            self._call(self._shutdown(), timeout=15)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self._loop.close()
            self._loop = None

    async def _shutdown(self) -> None:
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _call(self, coro: Any, timeout: float = CALL_TIMEOUT) -> Any:
        if self._loop is None:
            coro.close()
            raise RuntimeError("FakeDiscord is not running; use it as a context manager")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("FakeDiscord's sync API can't be called from its own loop")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # --- where it is ----------------------------------------------------------------------
    @property
    def api_base(self) -> str:
        """The REST base to give discord.py (``discord.http.Route.BASE`` / DISCORD_API_BASE)."""
        return f"http://{self.host}:{self.port}{rest.API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """The gateway URL (``DiscordWebSocket.DEFAULT_GATEWAY`` / DISCORD_GATEWAY_URL)."""
        return f"ws://{self.host}:{self.port}/"

    @property
    def token(self) -> str:
        return self.state.token

    @property
    def app_id(self) -> int:
        return self.state.app_id

    @property
    def bot_user(self) -> FakeUser:
        return self.state.bot_user

    @property
    def guilds(self) -> dict[int, FakeGuild]:
        return self.state.guilds

    def env(self, ready_timeout: float = 0.1) -> dict[str, str]:
        """Environment variables that point ``manage.py runbot`` at this fake."""
        return {
            "DISCORD_API_BASE": self.api_base,
            "DISCORD_GATEWAY_URL": self.gateway_url,
            "DISCORD_TOKEN": self.token,
            "DISCORD_GUILD_READY_TIMEOUT": str(ready_timeout),
        }

    # --- recordings -----------------------------------------------------------------------
    messages = property(lambda self: self.state.snapshot("messages"), doc="Bodies POSTed to guild channels (+ int ids).")
    dms = property(lambda self: self.state.snapshot("dms"), doc="Bodies POSTed to DM channels (+ recipient_id).")
    role_changes = property(lambda self: self.state.snapshot("role_changes"), doc="Successful role PUT/DELETEs.")
    interaction_responses = property(lambda self: self.state.snapshot("interaction_responses"), doc="Interaction callbacks.")
    followups = property(lambda self: self.state.snapshot("followups"), doc="Interaction webhook POST/PATCH/DELETEs.")
    unhandled = property(lambda self: self.state.snapshot("unhandled"), doc="Requests no route knew (or that crashed).")
    requests = property(
        lambda self: self.state.snapshot("requests"),
        doc="Every REST request: method, path, status, at (epoch seconds, when answered).",
    )
    edits = property(lambda self: self.state.snapshot("edits"), doc="PATCH /channels/{c}/messages/{m} bodies.")
    rate_limited = property(
        lambda self: self.state.snapshot("rate_limited"),
        doc="Every 429 the enforced rate limits sent: bucket, major, global, fresh (unavoidable), retry_after, at.",
    )
    faulted = property(lambda self: self.state.snapshot("faulted"), doc="Requests a fault switch answered.")
    resumes = property(lambda self: self.state.snapshot("resumes"), doc="RESUMEs received: session_id, seq.")
    deletions = property(lambda self: self.state.snapshot("deletions"), doc="Deleted channel messages.")

    @property
    def registered_commands(self) -> dict[int | None, list[dict]]:
        """The last command list PUT by the bot: key None for global, a guild id for guild commands."""
        with self.state.lock:
            return {scope: list(commands) for scope, commands in self.state.registered_commands.items()}

    def command_names(self, guild_id: int | None = None) -> list[str]:
        """Names of the registered commands (global when ``guild_id`` is None)."""
        return [c["name"] for c in self.registered_commands.get(guild_id, [])]

    @property
    def identify_count(self) -> int:
        return self.state.identify_count

    @property
    def resume_count(self) -> int:
        return self.state.resume_count

    def member_roles(self, guild_id: int, user_id: int) -> set[int]:
        """The member's role ids as the fake knows them (empty if not a member)."""
        with self.state.lock:
            return set(self.state.guilds[guild_id].members.get(user_id, ()))

    def dump(self) -> str:
        """Everything recorded, readable (for assertion messages)."""
        return self.state.dump()

    # --- waiting --------------------------------------------------------------------------
    def wait_for_identify(self, timeout: float = 20) -> bool:
        """True once a client has sent IDENTIFY (False on timeout)."""
        return self.gateway.identified.wait(timeout)

    def wait_for_ready_sent(self, timeout: float = 20, count: int = 1) -> bool:
        """True once ``count`` sessions got READY and their GUILD_CREATEs (False on timeout)."""
        with self.gateway.ready_changed:
            return self.gateway.ready_changed.wait_for(lambda: self.gateway.ready_count >= count, timeout)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10, interval: float = 0.01, message: str = "") -> Any:
        """Poll ``predicate`` until it is truthy and return its value; AssertionError with a dump on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}\n{self.dump()}")
            time.sleep(interval)

    # --- driving --------------------------------------------------------------------------
    def dispatch(self, guild_id: int | None, event: str, data: dict) -> int:
        """Send any gateway event to the sessions covering ``guild_id`` (queued until one exists)."""
        return self._call(self.gateway.dispatch(guild_id, event, data))

    def send_message(self, guild_id: int, channel_id: int, author_id: int, content: str, **extra: Any) -> dict:
        """A member posts ``content`` in a channel: MESSAGE_CREATE, mentions parsed; returns the message."""

        async def go() -> dict:
            g = self.state.guilds[guild_id]
            if author_id not in g.members or g.channel_by_id(channel_id) is None:
                raise ValueError(f"user {author_id} / channel {channel_id} not in guild {guild_id}")
            with self.state.lock:
                message = payloads.message(
                    channel_id=channel_id, guild=g, author=g.users[author_id], content=content, extra=extra
                )
                self.state.message_store[int(message["id"])] = message
            await self.gateway.dispatch(guild_id, "MESSAGE_CREATE", message)
            return message

        return self._call(go())

    def send_dm(self, author_id: int, content: str, **extra: Any) -> dict:
        """A user DMs the bot: MESSAGE_CREATE without a guild; returns the message."""

        async def go() -> dict:
            author = self.state.find_user(author_id)
            if author is None:
                raise ValueError(f"no user {author_id} in the fake")
            channel_id = self.state.dm_channel_for(author)
            message = payloads.message(channel_id=channel_id, guild=None, author=author, content=content, extra=extra)
            self.state.message_store[int(message["id"])] = message
            await self.gateway.dispatch(None, "MESSAGE_CREATE", message)
            return message

        return self._call(go())

    def send_slash(self, guild_id: int, channel_id: int, user_id: int, name: str, options: Any = None) -> dict:
        """Invoke a registered slash command; returns the interaction (``id``, ``token``, …).

        ``options``: a dict for a flat command, ``[("sub", {...})]`` for a sub-command,
        ``[("group", [("sub", {...})])]`` for a sub-command in a group. Users, roles and
        channels may be given as ids or fake objects; option types and ``resolved`` come
        from the schema the bot registered.
        """

        async def go() -> dict:
            interaction = build_slash(self.state, guild_id, channel_id, user_id, name, options)
            await self.gateway.dispatch(guild_id, "INTERACTION_CREATE", interaction)
            return interaction

        return self._call(go())

    def request_reconnect(self, shard_id: int | None = None) -> int:
        """Send op 7 RECONNECT; the client resumes on a new socket. Returns sockets told."""
        return self._call(self.gateway.request_reconnect(shard_id))

    def invalidate_sessions(self) -> None:
        """Send op 9 INVALID_SESSION (not resumable): the client must identify again."""
        self._call(self.gateway.invalidate_sessions())

    def set_rate_limits_enabled(self, enabled: bool) -> None:
        """Switch the enforced rate limits off or on again (a fake made with ``rate_limits=``)."""
        if self.state.rate_limiter is None:
            raise RuntimeError("this FakeDiscord was made without rate_limits=")
        self.state.rate_limiter.enabled = enabled

    def fault(
        self,
        kind: str,
        seconds: float,
        *,
        method: str = "*",
        path_regex: str = r".*",
        hang: float = 1.0,
        retry_after: float = 0.5,
    ) -> None:
        """For ``seconds`` from now, answer matching requests with a 500, a 429, or (``"timeout"``) nothing."""
        self.state.faults.add(kind, seconds, method=method, path_regex=path_regex, hang=hang, retry_after=retry_after)

    def drop_gateway(self, shard_id: int | None = None) -> int:
        """Close the gateway sockets abruptly (code 4000, resumable); returns how many were closed."""
        return self._call(self.gateway.drop(shard_id))

    def rate_limit_next(
        self,
        method: str,
        path_regex: str,
        retry_after: float = 0.3,
        global_: bool = False,
        *,
        scope: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with a real-looking 429 (they do not happen)."""
        scope = scope or ("global" if global_ else "user")
        body = {"retry_after": retry_after, "global": global_}
        self.state.add_rule(Rule(method.upper(), re.compile(path_regex), 429, body, times, {"scope": scope}))

    def fail_next(self, method: str, path_regex: str, status: int, body: dict | None = None, *, times: int = 1) -> None:
        """Answer the next ``times`` matching requests with ``status`` and a JSON ``body`` (they do not happen)."""
        body = body if body is not None else {"code": 0, "message": f"{status}: injected by the test"}
        self.state.add_rule(Rule(method.upper(), re.compile(path_regex), status, body, times))
