"""What the fake knows and what it saw: the guilds, stored messages, and the recorded calls.

Handlers run on the fake's event-loop thread; tests read from their own thread. Every
mutation of a recorded list happens under ``lock`` and readers get copies, so a test never
sees a half-updated list.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field

from .models import FakeGuild, FakeUser, next_snowflake

NONCE_WINDOW_SECONDS = 300  # Discord checks enforce_nonce "within the past few minutes"
RECORDED = (
    "messages",
    "role_changes",
    "interaction_responses",
    "followups",
    "dms",
    "unhandled",
    "requests",
    "edits",
    "deletions",
    "webhook_posts",  # channel webhook executions (routes_webhooks)
    "rate_limited",  # every 429 the rate limits sent (tests.fake_discord.ratelimits)
    "faulted",  # every request a fault switch answered (tests.fake_discord.faults)
    "resumes",  # every RESUME: session_id and seq as the client sent them
)
PRIVILEGED_INTENTS = {"members": 1 << 1, "presences": 1 << 8, "message_content": 1 << 15}


@dataclass
class Rule:
    """A one-shot (or n-shot) answer for the next requests matching ``method`` and ``pattern``."""

    method: str
    pattern: re.Pattern
    status: int
    body: dict
    times: int = 1
    headers: dict = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and self.method in (method, "*") and self.pattern.fullmatch(path) is not None


class FakeState:
    """The fake's model of Discord plus its recordings; owned by one FakeDiscord."""

    def __init__(
        self,
        *,
        guilds: list[FakeGuild],
        token: str,
        app_id: int,
        bot_user: FakeUser,
        owner: FakeUser,
        privileged_intents: set[str],
        enforce_permissions: bool,
        recommended_shards: int,
    ) -> None:
        unknown = set(privileged_intents) - set(PRIVILEGED_INTENTS)
        if unknown:
            raise ValueError(f"unknown privileged intents {unknown}; use {sorted(PRIVILEGED_INTENTS)}")
        self.lock = threading.RLock()
        self.guilds: dict[int, FakeGuild] = {g.id: g for g in guilds}
        self.token = token
        self.app_id = app_id
        self.bot_user = bot_user
        self.owner = owner
        self.privileged_intents = set(privileged_intents)
        self.enforce_permissions = enforce_permissions
        self.recommended_shards = recommended_shards
        for name in RECORDED:
            setattr(self, name, [])
        # {None: global commands, guild_id: that guild's commands}: the last list PUT.
        self.registered_commands: dict[int | None, list[dict]] = {}
        self.identify_count = 0
        self.resume_count = 0
        self.message_store: dict[int, dict] = {}
        self.nonces: dict[str, tuple[float, dict]] = {}
        self.dm_channels: dict[int, FakeUser] = {}  # DM channel id -> recipient
        self.dm_by_user: dict[int, int] = {}
        self.interactions: dict[int, dict] = {}  # interaction id -> INTERACTION_CREATE data
        self.acknowledged: dict[int, int] = {}  # interaction id -> callback type
        self.originals: dict[str, dict] = {}  # interaction token -> @original message
        self.rules: list[Rule] = []
        self.channel_webhooks: dict[int, dict] = {}  # webhook id -> token, channel_id, name (routes_webhooks)
        self.rate_limiter = None  # a ratelimits.RateLimiter when the fake enforces Discord's limits
        self.advertised_limit: int | None = None  # bucket size in the headers when not enforcing; None: RATE_LIMIT
        self.faults = None  # a faults.Faults (set by FakeDiscord)
        for g in guilds:
            if bot_user.id not in g.members:
                raise ValueError(
                    f"the bot ({bot_user.id}) must be a member of guild {g.id}: Discord only sends guilds the bot is in"
                )

    # --- recordings -------------------------------------------------------------------
    def record(self, name: str, item: dict) -> None:
        """Append ``item`` to the recorded list ``name``."""
        with self.lock:
            getattr(self, name).append(item)

    def snapshot(self, name: str) -> list[dict]:
        """A copy of the recorded list ``name``."""
        with self.lock:
            return list(getattr(self, name))

    def dump(self) -> str:
        """Everything recorded, for assertion messages."""
        with self.lock:
            parts = [f"identify_count={self.identify_count} resume_count={self.resume_count}"]
            for name in RECORDED:
                items = getattr(self, name)
                if name == "requests":
                    items = items[-40:]  # the tail is what explains a timeout
                parts.append(f"{name} ({len(getattr(self, name))}):")
                parts.extend(f"  {json.dumps(item, default=str)[:500]}" for item in items)
            parts.append(f"registered_commands: {json.dumps(self.registered_commands, default=str)[:1500]}")
        return "\n".join(parts)

    # --- rules (fail_next / rate_limit_next) --------------------------------------------
    def add_rule(self, rule: Rule) -> None:
        """Queue a rule; rules are tried in the order they were added."""
        with self.lock:
            self.rules.append(rule)

    def take_rule(self, method: str, path: str) -> Rule | None:
        """The first live rule matching this request, with one use consumed."""
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.times -= 1
                    return rule
        return None

    # --- look-ups -----------------------------------------------------------------------
    def find_user(self, user_id: int) -> FakeUser | None:
        """A user known anywhere in the fake (any guild, the bot, the owner)."""
        if user_id == self.bot_user.id:
            return self.bot_user
        if user_id == self.owner.id:
            return self.owner
        for g in self.guilds.values():
            found = g.users.get(user_id)
            if found is not None:
                return found
        return None

    def channel_home(self, channel_id: int) -> tuple[FakeGuild | None, object | None]:
        """(guild, channel) for a guild channel, (None, recipient) for a DM, (None, None) if unknown."""
        for g in self.guilds.values():
            c = g.channel_by_id(channel_id)
            if c is not None:
                return g, c
        return None, self.dm_channels.get(channel_id)

    def dm_channel_for(self, recipient: FakeUser) -> int:
        """The DM channel id with this user, created on first use."""
        with self.lock:
            channel_id = self.dm_by_user.get(recipient.id)
            if channel_id is None:
                channel_id = next_snowflake()
                self.dm_by_user[recipient.id] = channel_id
                self.dm_channels[channel_id] = recipient
            return channel_id

    def command_schema(self, guild_id: int | None, name: str) -> tuple[dict, int | None]:
        """The registered command called ``name`` (guild commands first) and its guild id."""
        with self.lock:
            for scope in (guild_id, None) if guild_id else (None,):
                for command in self.registered_commands.get(scope, ()):
                    if command["name"] == name and command.get("type", 1) == 1:
                        return command, scope
            known = {str(k): [c["name"] for c in v] for k, v in self.registered_commands.items()}
        raise LookupError(f"no slash command {name!r} is registered for guild {guild_id} or globally; registered: {known}")

    def remember_nonce(self, nonce: str, message: dict) -> None:
        """Remember a message created with ``enforce_nonce``."""
        with self.lock:
            self.nonces[nonce] = (time.monotonic(), message)

    def message_for_nonce(self, nonce: str) -> dict | None:
        """The message created in the last few minutes with this nonce, if any."""
        with self.lock:
            hit = self.nonces.get(nonce)
        if hit is None or time.monotonic() - hit[0] > NONCE_WINDOW_SECONDS:
            return None
        return hit[1]

    def intent_allowed(self, intents: int) -> bool:
        """Whether every privileged intent in ``intents`` is switched on for this bot."""
        allowed = sum(PRIVILEGED_INTENTS[name] for name in self.privileged_intents)
        privileged = sum(PRIVILEGED_INTENTS.values())
        return not (intents & privileged & ~allowed)

    def application_flags(self) -> int:
        """The application flags Discord reports for the enabled privileged intents (the *_LIMITED ones)."""
        bits = {"presences": 1 << 13, "members": 1 << 15, "message_content": 1 << 19}
        return sum(bits[name] for name in self.privileged_intents)
