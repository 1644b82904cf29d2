"""Alert and mail settings, read from the environment (imported by config/settings.py).

ops.alerts evaluates every minute; each alert is posted once when it starts and once when it
clears, to the Discord webhook and/or the addresses (Django's EMAIL_* settings send the mail).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config.env import envbool, envfloat, envint, envlist, envstr

# --- Alerts -------------------------------------------------------------------------
# The restore drill (ops.backups.drill) runs every BACKUP_DRILL_DAYS days on the worker.
BACKUP_DRILL_DAYS = envint("BACKUP_DRILL_DAYS", 30, minimum=1)
# ops.alerts evaluates every minute; each alert is posted once when it starts and once when it
# clears, to the Discord webhook and/or the addresses (Django's EMAIL_* settings send the mail).
ALERT_DISCORD_WEBHOOK_URL = envstr("ALERT_DISCORD_WEBHOOK_URL")
ALERT_EMAIL_TO = envlist("ALERT_EMAIL_TO", [])
if ALERT_DISCORD_WEBHOOK_URL and not ALERT_DISCORD_WEBHOOK_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured("ALERT_DISCORD_WEBHOOK_URL must be an http(s) URL (Discord: channel settings > Integrations)")
# Hold times: a condition must hold this long before it fires, and be gone this long before it clears.
ALERT_FIRE_AFTER_SECONDS = envint("ALERT_FIRE_AFTER_SECONDS", 120, minimum=0)
ALERT_CLEAR_AFTER_SECONDS = envint("ALERT_CLEAR_AFTER_SECONDS", 300, minimum=0)
ALERT_BACKUP_MAX_AGE_HOURS = envint("ALERT_BACKUP_MAX_AGE_HOURS", 26, minimum=1)
ALERT_ARCHIVE_MAX_AGE_SECONDS = envint("ALERT_ARCHIVE_MAX_AGE_SECONDS", 3600, minimum=60)
ALERT_DISK_FREE_PERCENT = envfloat("ALERT_DISK_FREE_PERCENT", 15.0, minimum=0)
ALERT_REPLICA_LAG_SECONDS = envint("ALERT_REPLICA_LAG_SECONDS", 60, minimum=1)
ALERT_POOL_WAIT_MS = envint("ALERT_POOL_WAIT_MS", 1000, minimum=0)
ALERT_SWEEP_P99_SECONDS = envfloat("ALERT_SWEEP_P99_SECONDS", 5.0, minimum=0)
ALERT_HEARTBEAT_SECONDS = envint("ALERT_HEARTBEAT_SECONDS", 120, minimum=1)
ALERT_FAILED_TASKS = envint("ALERT_FAILED_TASKS", 1, minimum=1)  # failed q2 tasks in the last hour
# The alert mail goes through Django's mail settings.
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "guildhall@localhost")
