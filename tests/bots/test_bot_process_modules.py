"""The bot process (``manage.py runbot``) leaves out what it never uses (config/settings_bot.py)."""

from __future__ import annotations

import json
import subprocess
import sys

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
from django_q import conf
from django_q.tasks import async_task  # the bot enqueues work for the workers
print(json.dumps({
    "prometheus": sys.modules.get("prometheus_client") is not None,
    "q2_metrics": conf.prometheus_multiprocess is not None,
    "enqueue": callable(async_task),
}))
"""


def probe(command: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, command], env=bot_env(None), capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_it_leaves_prometheus_client_out_of_the_bot_and_keeps_it_elsewhere():
    assert probe("runbot") == {"prometheus": False, "q2_metrics": False, "enqueue": True}
    assert probe("qcluster") == {"prometheus": True, "q2_metrics": True, "enqueue": True}
