"""The timer settings admin: what timers do when members leave or lose the role, and grant notices."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from timers.models import TimerReconcile, TimerSettings
from timers.services import timer_settings_update

GUILD = 557
pytestmark = pytest.mark.django_db


def form(**changes):
    return (
        {"admin_role_id": "", "warning_minutes": "60, 10, 1", "on_leave": "run", "on_role_missing": "restore"}
        | {
            "notice": "off",
            "notice_channel_id": "",
        }
        | changes
    )


@pytest.fixture
def url():
    timer_settings_update(guild_id=GUILD, admin_role_id=None)
    return reverse("admin:timers_timersettings_change", args=[TimerSettings.objects.get(guild_id=GUILD).pk])


def login(client, *perms: str) -> None:
    user = User.objects.create_user("staff", password="pw-staff-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    client.force_login(user)


def test_it_saves_the_leave_role_missing_and_notice_choices(client, url):
    login(client, "view_timersettings", "change_timersettings")
    saved = client.post(url, form(on_leave="pause", on_role_missing="pause", notice="channel", notice_channel_id="4242"))
    assert saved.status_code == 302, saved.content.decode()[:2000]
    row = TimerSettings.objects.get(guild_id=GUILD)
    assert (row.on_leave, row.on_role_missing, row.notice, row.notice_channel_id) == ("pause", "pause", "channel", 4242)
    page = client.get(url).content.decode()
    assert "pauses until they rejoin" in page and "Tell the member when a timed role is granted" in page


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"on_leave": "stay"}, "Select a valid choice"),
        ({"notice": "channel"}, "Give the channel&#x27;s id"),
        ({"notice": "channel", "notice_channel_id": "-3"}, "greater than or equal to 1"),
    ],
)
def test_it_refuses_bad_choices_and_changes_nothing(client, url, changes, words):
    login(client, "view_timersettings", "change_timersettings")
    refused = client.post(url, form(**changes))
    assert refused.status_code == 200 and words in refused.content.decode()
    row = TimerSettings.objects.get(guild_id=GUILD)
    assert (row.on_leave, row.notice, row.notice_channel_id) == ("run", "off", None)


def test_a_user_who_may_only_view_cannot_change_them(client, url):
    login(client, "view_timersettings")
    assert client.post(url, form(on_leave="pause")).status_code == 403
    assert TimerSettings.objects.get(guild_id=GUILD).on_leave == "run"


def test_reconciliation_records_are_shown_and_never_edited(client):
    record = TimerReconcile.objects.create(guild_id=GUILD, checked=3, restored=1, untracked=2, detail="2 member page(s)")
    login(client, "view_timerreconcile", "change_timerreconcile", "add_timerreconcile")
    listing = client.get(reverse("admin:timers_timerreconcile_changelist")).content.decode().lower()
    assert "held with no timer" in listing and "roles given back" in listing
    change = reverse("admin:timers_timerreconcile_change", args=[record.pk])
    client.post(change, {"checked": 99})
    assert TimerReconcile.objects.get(pk=record.pk).checked == 3
    assert client.get(reverse("admin:timers_timerreconcile_add")).status_code == 403
