"""The timer settings admin saves through the timer services: their limits and the warnings' rescheduling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from timers.models import AllowedRole, RoleReport, TimedRole, TimerSettings
from timers.services import report_set, timer_set, timer_settings_update

GUILD = 556
# The leave, role-missing and notice choices as the form shows them untouched.
UNCHANGED = {"on_leave": "run", "on_role_missing": "restore", "notice": "off", "notice_channel_id": ""}
pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_user("staff", password="pw-staff-123", is_staff=True, is_superuser=True))
    return client


def _settings_url(guild_id: int = GUILD) -> str:
    row = TimerSettings.objects.get(guild_id=guild_id)
    return reverse("admin:timers_timersettings_change", args=[row.pk])


def test_it_reschedules_live_timers_when_the_warnings_change(staff_client):
    timer_settings_update(guild_id=GUILD, admin_role_id=None)
    timer = timer_set(guild_id=GUILD, member_id=2, role_id=7, duration=timedelta(hours=2), actor_id=1).timer
    assert timer.next_warn_at == timer.expires_at - timedelta(minutes=60)
    saved = staff_client.post(_settings_url(), {"admin_role_id": "", "warning_minutes": "30, 5", **UNCHANGED})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert TimerSettings.objects.get(guild_id=GUILD).warning_minutes == [30, 5]
    timer = TimedRole.objects.get(pk=timer.pk)
    assert timer.next_warn_at == timer.expires_at - timedelta(minutes=30)


@pytest.mark.parametrize(
    ("minutes", "message"),
    [("0, 5", "whole minutes from 1"), ("1, 2, 3, 4, 5, 6", "At most 5"), ("١٢", "digits 0-9"), ("10m", "digits 0-9")],
)
def test_it_refuses_bad_warning_times_and_changes_nothing(staff_client, minutes, message):
    timer_settings_update(guild_id=GUILD, admin_role_id=9)
    refused = staff_client.post(_settings_url(), {"admin_role_id": "9", "warning_minutes": minutes, **UNCHANGED})
    assert refused.status_code == 200 and message in refused.content.decode()
    assert TimerSettings.objects.get(guild_id=GUILD).warning_minutes == [60, 10, 1]


def test_it_adds_timer_settings_for_a_new_guild_through_the_services(staff_client):
    added = staff_client.post(
        reverse("admin:timers_timersettings_add"),
        {"guild_id": GUILD, "admin_role_id": "12", "warning_minutes": "15", **UNCHANGED},
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    row = TimerSettings.objects.get(guild_id=GUILD)
    assert (row.admin_role_id, row.warning_minutes) == (12, [15])


def test_it_refuses_an_admin_role_that_is_not_a_role_id(staff_client):
    timer_settings_update(guild_id=GUILD, admin_role_id=9)
    refused = staff_client.post(_settings_url(), {"admin_role_id": "0", "warning_minutes": "60, 10, 1", **UNCHANGED})
    assert refused.status_code == 200
    assert TimerSettings.objects.get(guild_id=GUILD).admin_role_id == 9


def test_it_lists_and_unlists_allowed_roles_through_the_services(staff_client):
    url = reverse("admin:timers_allowedrole_add")
    assert staff_client.post(url, {"guild_id": GUILD, "role_id": 7}).status_code == 302
    again = staff_client.post(url, {"guild_id": GUILD, "role_id": 7})
    assert again.status_code == 200 and AllowedRole.objects.filter(guild_id=GUILD).count() == 1
    refused = staff_client.post(url, {"guild_id": GUILD, "role_id": 0})
    assert refused.status_code == 200 and not AllowedRole.objects.filter(role_id=0).exists()
    row = AllowedRole.objects.get(guild_id=GUILD, role_id=7)
    deleted = staff_client.post(reverse("admin:timers_allowedrole_delete", args=[row.pk]), {"post": "yes"})
    assert deleted.status_code == 302 and not AllowedRole.objects.exists()


def test_it_refuses_a_report_interval_outside_the_services_limits(staff_client):
    url = reverse("admin:timers_rolereport_add")
    refused = staff_client.post(url, {"guild_id": GUILD, "role_id": 7, "channel_id": 3, "interval_minutes": 5})
    assert refused.status_code == 200 and not RoleReport.objects.exists()
    added = staff_client.post(url, {"guild_id": GUILD, "role_id": 7, "channel_id": 3, "interval_minutes": 120})
    assert added.status_code == 302, added.content.decode()[:2000]
    report = RoleReport.objects.get()
    assert report.interval_minutes == 120
    assert abs(report.next_run_at - (timezone.now() + timedelta(minutes=120))) < timedelta(minutes=1)


def test_it_moves_the_next_report_when_the_interval_changes(staff_client):
    report = report_set(guild_id=GUILD, role_id=7, channel_id=3, interval_minutes=60, actor_id=None)
    url = reverse("admin:timers_rolereport_change", args=[report.pk])
    saved = staff_client.post(url, {"interval_minutes": 1440})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    report.refresh_from_db()
    assert report.interval_minutes == 1440
    assert report.next_run_at > timezone.now() + timedelta(hours=23)
    deleted = staff_client.post(reverse("admin:timers_rolereport_delete", args=[report.pk]), {"post": "yes"})
    assert deleted.status_code == 302 and not RoleReport.objects.exists()
