"""Delivering an alert's start or clear: a Discord webhook post and a mail (each when configured).

The webhook is plain HTTPS (urllib): it needs no bot token and no gateway, and ops may not
import discord. Mentions are off, so an alert can never ping @everyone.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail

logger = logging.getLogger(__name__)
DISCORD, EMAIL = "discord", "email"
WEBHOOK_TIMEOUT = 10
USER_AGENT = "Guildhall-alerts/1.0"


def channels_configured() -> list[str]:
    """The channels alerts go to now: the webhook and/or the mail addresses."""
    channels = []
    if settings.ALERT_DISCORD_WEBHOOK_URL:
        channels.append(DISCORD)
    if settings.ALERT_EMAIL_TO:
        channels.append(EMAIL)
    return channels


def notice_text(*, kind: str, title: str, name: str, detail: str, since: datetime | None, now: datetime) -> tuple[str, str]:
    """(subject, body) of a start ("firing") or clear ("cleared") notice."""
    if kind == "firing":
        subject = f"[Guildhall] FIRING: {title}"
        body = f"{detail}\n\nAlert {name}, firing since {now:%Y-%m-%d %H:%M:%S} UTC. One more notice follows when it clears."
    else:
        lasted = f" after {_duration((now - since).total_seconds())}" if since else ""
        subject = f"[Guildhall] CLEARED: {title}"
        body = f"Alert {name} cleared at {now:%Y-%m-%d %H:%M:%S} UTC{lasted}. Last reading: {detail}"
    return subject, body


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def webhook_post(url: str, content: str) -> None:
    """POST one message to a Discord webhook; raises OSError (urllib's errors) on anything but 2xx."""
    body = json.dumps({"content": content[:2000], "username": "Guildhall alerts", "allowed_mentions": {"parse": []}}).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": USER_AGENT}
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
        response.read()


def notice_deliver(*, subject: str, body: str, channels: list[str]) -> list[str]:
    """Send the notice on each channel; return the channels that failed (to be tried again next minute)."""
    failed = []
    for channel in channels:
        try:
            if channel == DISCORD:
                webhook_post(settings.ALERT_DISCORD_WEBHOOK_URL, f"**{subject.removeprefix('[Guildhall] ')}**\n{body}")
            elif channel == EMAIL:
                send_mail(subject, body, None, settings.ALERT_EMAIL_TO)
        except (OSError, urllib.error.URLError) as exc:  # SMTP errors are OSErrors too
            logger.warning("alert notice %r could not be sent by %s: %s", subject, channel, exc)
            failed.append(channel)
    return failed
