"""The bot process (``manage.py runbot``) leaves out what it never uses (config/settings_bot.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django_q.models import OrmQ

from tests.bots.conftest import bot_env

PROBE = r"""
import json, sys
sys.argv = ["manage.py", sys.argv[1]]
import django
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
import bots.bot
for extension in bots.bot.EXTENSIONS:
    __import__(extension)
loaded = {name: sys.modules.get(name) is not None for name in ("prometheus_client", "redis", "django_q", "django_q.conf")}
from django.db import transaction
from django_q import conf
from django_q.tasks import async_task  # what the bot does for an admin's bulk change
with transaction.atomic():
    task_id = async_task("math.floor", 1.5, task_name="bot-process-probe")
print(json.dumps({
    "loaded at start": loaded,
    "q2_metrics": conf.prometheus_multiprocess is not None,
    "task": task_id,
}))
"""


def probe(command: str, **env: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, command], env=bot_env(None, **env), capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def queued(task_id: str) -> list[str]:
    return [q.name() for q in OrmQ.objects.all() if q.task_id() == task_id]


@pytest.mark.django_db(transaction=True)
def test_the_bot_starts_without_prometheus_client_redis_or_django_q_and_still_enqueues():
    bot = probe("runbot", REDIS_URL="")
    assert bot["loaded at start"] == {
        "prometheus_client": False,
        "redis": False,  # no REDIS_URL: the limits are kept in memory and redis-py is never imported
        "django_q": False,  # loaded by the first enqueue
        "django_q.conf": False,
    }
    assert bot["q2_metrics"] is False
    assert queued(bot["task"]) == ["bot-process-probe"]  # a worker takes it from the same queue

    worker = probe("qcluster", REDIS_URL="")
    assert worker["loaded at start"]["prometheus_client"] is True and worker["loaded at start"]["django_q"] is True
    assert worker["q2_metrics"] is True
    assert queued(worker["task"]) == ["bot-process-probe"]
