"""The recurring jobs of the worker, registered by ``manage.py setup_schedules``."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    minutes: int


SCHEDULES: tuple[ScheduleSpec, ...] = (
    ScheduleSpec(name="guildhall.timers.sweep", func="bots.tasks.sweep_timers", minutes=1),
)
