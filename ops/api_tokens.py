"""Per-user API tokens for /api/v1: create (the key is shown once), revoke, check.

A token has an expiry (90 days unless its creator picks another lifetime, at most two
years) and may be read-only; ``ops/api.py`` enforces both.

Only the SHA-256 of a key is stored. A key is looked up by its hash, so the database
never compares the secret itself and a guess teaches nothing about a stored key; a
stolen database holds no usable key. Keys are 256 random bits, so a plain (unsalted,
fast) hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.db.models import Q
from django.utils import timezone

from config.errors import ApplicationError
from ops.models import API_TOKEN_LIFETIME, ApiToken

logger = logging.getLogger(__name__)

KEY_PREFIX = "gh_"
SHOWN_PREFIX_LENGTH = 11  # "gh_" and 8 random characters, to tell keys apart in lists
MAX_KEY_LENGTH = 200
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_LIFETIME = timedelta(days=730)


class ApiTokenError(ApplicationError):
    """A token request was refused."""


class ApiTokenExpired(ApiTokenError):
    """A known token whose time is up."""

    http_status = 401


def api_key_hash(key: str) -> str:
    """The SHA-256 hex digest stored for ``key``."""
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(
    *,
    user: User,
    name: str,
    created_by: User | None,
    lifetime: timedelta = API_TOKEN_LIFETIME,
    read_only: bool = False,
) -> tuple[ApiToken, str]:
    """Make a token for a staff ``user`` that works for ``lifetime``; return it and its key, which is never stored or shown again."""
    name = (name or "").strip()
    if not name:
        raise ApiTokenError("Give the token a name that says what uses it.")
    if len(name) > 100:
        raise ApiTokenError("A token's name is at most 100 characters.")
    if not (user.is_active and user.is_staff):
        raise ApiTokenError("API tokens are for active staff users only.")
    if not isinstance(lifetime, timedelta) or not timedelta(days=1) <= lifetime <= MAX_LIFETIME:
        raise ApiTokenError(f"A token works for 1 to {MAX_LIFETIME.days} days.")
    if not isinstance(read_only, bool):
        raise ApiTokenError("read_only is true or false.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=key[:SHOWN_PREFIX_LENGTH],
        key_hash=api_key_hash(key),
        created_by=created_by,
        expires_at=timezone.now() + lifetime,
        read_only=read_only,
    )
    logger.info(
        "API token %s (%s…%s) created for %s by %s, expires %s",
        token.pk,
        token.prefix,
        ", read-only" if read_only else "",
        user,
        created_by,
        token.expires_at,
    )
    return token, key


def api_token_revoke(*, token: ApiToken, revoked_by: User | None = None) -> bool:
    """Stop a token from working; False when it was already revoked."""
    changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()) == 1
    if changed:
        logger.info("API token %s (%s…) revoked by %s", token.pk, token.prefix, revoked_by)
    return changed


def api_token_check(key: str) -> ApiToken | None:
    """The live token ``key`` belongs to (with its user), or None (unknown, revoked, or the user is no longer staff).

    Raises ApiTokenExpired for a known token past its expiry, so that its holder reads why.
    Records the time of use, at most once a minute per token so that busy clients do not
    write on every request.
    """
    if not isinstance(key, str) or not key.startswith(KEY_PREFIX) or len(key) > MAX_KEY_LENGTH:
        return None
    digest = api_key_hash(key)
    token = ApiToken.objects.select_related("user").filter(key_hash=digest, revoked_at__isnull=True).first()
    # The lookup found the hash by index equality; compare again in constant time all the same.
    if token is None or not hmac.compare_digest(token.key_hash, digest):
        return None
    now = timezone.now()
    if token.expires_at <= now:
        raise ApiTokenExpired(
            f"The API token {token.prefix}… expired on {token.expires_at:%Y-%m-%d %H:%M} UTC; ask a superuser for a new one."
        )
    user = token.user
    if not (user.is_active and user.is_staff):
        logger.warning("API token %s (%s…) refused: %s is no longer active staff", token.pk, token.prefix, user)
        return None
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
    return token
