"""django-q2 tasks of the timer engine (plain functions referred to by dotted path)."""
from __future__ import annotations

import logging

from django.db import close_old_connections

from timers.services import timer_auto_resume

logger = logging.getLogger(__name__)


def sweep_due_timers() -> dict:
    """One sweep: resume paused timers whose deadline passed."""
    close_old_connections()
    resumed = 0
    while True:
        done = timer_auto_resume()
        resumed += done
        if not done:
            break
    if resumed:
        logger.info("sweep resumed %d paused timers", resumed)
    return {"resumed": resumed}
