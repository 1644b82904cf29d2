"""Writes for timed roles (see the modules for each)."""

from timers.services.guild_config import (
    allowed_role_add,
    allowed_role_remove,
    report_remove,
    report_set,
    timer_settings_get,
    timer_settings_update,
    timer_warnings_set,
)
from timers.services.pauses import (
    timer_auto_resume,
    timer_pause,
    timer_pause_all,
    timer_resume,
    timer_resume_all,
)
from timers.services.timed_roles import (
    TimerChange,
    timer_add,
    timer_clear,
    timer_remove,
    timer_set,
)
