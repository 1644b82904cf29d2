from importlib import import_module

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from ops.schedules import SCHEDULES


@pytest.mark.django_db
def test_it_registers_each_schedule_once_however_often_it_runs():
    call_command("setup_schedules")
    call_command("setup_schedules")
    for spec in SCHEDULES:
        assert Schedule.objects.filter(name=spec.name).count() == 1


@pytest.mark.django_db
def test_it_collapses_duplicate_rows_left_by_hand():
    spec = SCHEDULES[0]
    Schedule.objects.create(name=spec.name, func=spec.func, schedule_type=Schedule.MINUTES, minutes=5)
    Schedule.objects.create(name=spec.name, func=spec.func, schedule_type=Schedule.MINUTES, minutes=5)
    call_command("setup_schedules")
    rows = Schedule.objects.filter(name=spec.name)
    assert rows.count() == 1 and rows.get().minutes == spec.minutes


def test_it_points_every_schedule_at_a_real_function():
    for spec in SCHEDULES:
        module, name = spec.func.rsplit(".", 1)
        assert callable(getattr(import_module(module), name))
