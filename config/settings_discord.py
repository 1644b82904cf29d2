"""Discord settings, read from the environment (imported by config/settings.py)."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config.env import envfloat, envint, envintlist, envstr

# --- Discord ------------------------------------------------------------------------
DISCORD_TOKEN = envstr("DISCORD_TOKEN")
DISCORD_API_BASE = envstr("DISCORD_API_BASE", "https://discord.com/api/v10").rstrip("/")
DISCORD_GATEWAY_URL = envstr("DISCORD_GATEWAY_URL", "wss://gateway.discord.gg/")
SHARD_COUNT = envint("SHARD_COUNT", 0, minimum=0) or None
SHARD_IDS = envintlist("SHARD_IDS")
# Seconds discord.py waits after the last GUILD_CREATE before "ready" (short in tests).
DISCORD_GUILD_READY_TIMEOUT = envfloat("DISCORD_GUILD_READY_TIMEOUT", 2.0, minimum=0)
# How often the bot writes the names it saw (guilds, roles, channels, members) in one batch.
DIRECTORY_FLUSH_SECONDS = envfloat("DIRECTORY_FLUSH_SECONDS", 5.0, minimum=0.1)
# Members per page of the worker's guild-wide cookie roles sync (after thresholds or the mode change).
COOKIE_ROLES_SYNC_PAGE = envint("COOKIE_ROLES_SYNC_PAGE", 100, minimum=1)
if not DISCORD_API_BASE.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"DISCORD_API_BASE must be an http(s) URL, not {DISCORD_API_BASE!r}")
if not DISCORD_GATEWAY_URL.startswith(("ws://", "wss://")):
    raise ImproperlyConfigured(f"DISCORD_GATEWAY_URL must be a ws(s) URL, not {DISCORD_GATEWAY_URL!r}")
if SHARD_IDS is not None and SHARD_COUNT is None:
    raise ImproperlyConfigured("SHARD_IDS needs SHARD_COUNT")
if SHARD_IDS is not None and SHARD_COUNT is not None and any(not 0 <= i < SHARD_COUNT for i in SHARD_IDS):
    raise ImproperlyConfigured(f"SHARD_IDS must each be below SHARD_COUNT ({SHARD_COUNT})")

# --- Discord rate limits ---
# "shared": with REDIS_URL, every process (bot shards, workers) counts Discord's global limit
# and route buckets in Redis before each request (bots.ratelimit); without Redis, or while it
# is down, each process counts on its own. "local": always per process. "off": discord.py only.
DISCORD_RATE_LIMITS = envstr("DISCORD_RATE_LIMITS", "shared")
if DISCORD_RATE_LIMITS not in ("shared", "local", "off"):
    raise ImproperlyConfigured(f"DISCORD_RATE_LIMITS must be shared, local or off, not {DISCORD_RATE_LIMITS!r}")
# Requests per second per bot token (Discord's default; larger bots get more from Discord).
DISCORD_GLOBAL_RATE_LIMIT = envint("DISCORD_GLOBAL_RATE_LIMIT", 50, minimum=1)
