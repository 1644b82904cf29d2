"""What the bot process (``manage.py runbot``) leaves out of the web settings.

The bot needs the ORM (its apps and the apps their models point at: auth for the API
tokens' owner, contenttypes under auth), the cache and, now and then, django-q2's task
queue. It serves no pages, so the admin, sessions, messages, static files, the API
framework, the metrics middleware, login lockout, CSP and backups stay out of its process,
and out of its memory (docs/performance.md, "Bot memory"). ``config/settings.py`` applies this when the command
is ``runbot``; the web, the workers and the tests keep every app.
"""

from __future__ import annotations

import sys

WEB_ONLY_APPS = frozenset(
    {
        "django.contrib.admin",
        "django.contrib.sessions",
        "django.contrib.messages",
        "whitenoise.runserver_nostatic",
        "django.contrib.staticfiles",
        "django_prometheus",
        "axes",
        "csp",
        "dbbackup",
        "ninja",
    }
)


def is_bot_process(argv: list[str] | None = None) -> bool:
    """Whether this process is ``manage.py runbot`` (``GUILDHALL_BOT_WEB_APPS=1`` keeps the web apps)."""
    import os

    argv = sys.argv if argv is None else argv
    return argv[1:2] == ["runbot"] and os.environ.get("GUILDHALL_BOT_WEB_APPS", "") != "1"


# Apps the bot uses only for a rare chat action, loaded by that action's first import rather than
# at start-up. django-q2: the bot runs no cluster and enqueues only for an admin's bulk change
# (`/timer bulk-add`, `/cookies roles add`, ...); `django_q.tasks` imports its models, which name
# their app label themselves and so register on import. Its configuration module alone pulls in
# multiprocessing, importlib.metadata, zipfile and csv: 0.8 MiB of an idle bot's memory.
LOADED_ON_USE = frozenset({"django_q"})


def bot_apps(installed_apps: list[str]) -> list[str]:
    return [app for app in installed_apps if app not in WEB_ONLY_APPS and app not in LOADED_ON_USE]


# Modules that the bot's imports would load without using them. django-q2 imports prometheus_client
# (with wsgiref and urllib.request: about 1 MiB of the bot's resident memory) for the metrics of a cluster's own
# processes, and does without it when it is missing; the bot process runs no cluster, only enqueues.
NOT_IN_BOT = ("prometheus_client",)


def leave_out_modules() -> None:
    """Make ``NOT_IN_BOT`` unimportable in this process (an import then raises ModuleNotFoundError)."""
    for name in NOT_IN_BOT:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: Python's marker for "not importable"
