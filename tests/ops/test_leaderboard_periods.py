"""The leaderboard pages by period: all time, the last 7 days and the last 30 days, without members who left."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from commands.models import GuildSettings
from commands.services import cookie_give, cookie_set
from guilds.models import Guild, Member

GUILD = 557


@pytest.fixture
def filled(db):
    cookie_set(guild_id=GUILD, member_id=11, balance=500, actor_id=1)  # all time only: admins' counts
    for giver in (1, 2, 3):
        cookie_give(guild_id=GUILD, giver_id=giver, receiver_id=12)
    cookie_give(guild_id=GUILD, giver_id=1, receiver_id=13)
    cookie_give(guild_id=GUILD, giver_id=2, receiver_id=14)
    Guild.objects.create(guild_id=GUILD, name="My Server")
    Member.objects.create(guild_id=GUILD, user_id=12, username="alice", global_name="Alice")
    Member.objects.create(guild_id=GUILD, user_id=14, username="gone", left_at=datetime.now(UTC))


def _page(client, **query):
    return client.get(reverse("leaderboard:staff", args=[GUILD]), query)


def _rows(response) -> list[tuple[int, int, int]]:
    return [(s.rank, s.member_id, s.balance) for s in response.context["standings"]]


def test_it_switches_between_periods_and_names_members(client, filled):
    client.force_login(User.objects.create_user("staff", password="pw-staff-123", is_staff=True, is_superuser=True))
    all_time = _page(client)
    assert _rows(all_time) == [(1, 11, 500), (2, 12, 3), (3, 13, 1)]  # 14 left
    week = _page(client, period="7d")
    assert _rows(week) == [(1, 12, 3), (2, 13, 1)]
    html = week.content.decode()
    assert "Cookie leaderboard of My Server, last 7 days" in html and "Alice (@alice)" in html
    assert '<strong aria-current="page">last 7 days</strong>' in html and "?period=30d" in html
    assert _rows(_page(client, period="30d")) == [(1, 12, 3), (2, 13, 1)]
    assert _rows(_page(client, period="bogus")) == _rows(all_time)  # anything else: all time
    found = _page(client, period="7d", member="13")
    assert found.context["standing"].rank == 2 and "ranked 2 (last 7 days)" in found.content.decode()
    assert _page(client, period="7d", member="14").context["standing"].rank is None


def test_it_refuses_staff_without_the_view_permission(client, filled):
    client.force_login(User.objects.create_user("plain", password="pw-plain-123", is_staff=True))
    assert _page(client, period="7d").status_code == 403


def test_the_public_page_has_the_period_switch_too(client, filled):
    GuildSettings.objects.create(guild_id=GUILD, public_leaderboard=True)
    page = client.get(reverse("leaderboard-public", args=[GUILD]), {"period": "7d"})
    assert page.status_code == 200 and _rows(page) == [(1, 12, 3), (2, 13, 1)]
    assert "last 7 days" in page.content.decode()


def test_the_cookie_role_admin_saves_through_the_services(client, db):
    from commands.models import CookieRole

    client.force_login(User.objects.create_user("boss", password="pw-boss-123", is_staff=True, is_superuser=True))
    add = reverse("admin:commands_cookierole_add")
    refused = client.post(add, {"guild_id": GUILD, "threshold": 0, "role_id": 77})
    assert refused.status_code == 200 and "from 1 to" in refused.content.decode() and not CookieRole.objects.exists()
    assert client.post(add, {"guild_id": GUILD, "threshold": 10, "role_id": 77}).status_code == 302
    row = CookieRole.objects.get()
    assert (row.guild_id, row.threshold, row.role_id) == (GUILD, 10, 77)
    change = reverse("admin:commands_cookierole_change", args=[row.pk])
    assert client.post(change, {"threshold": 20}).status_code == 302
    assert CookieRole.objects.get().threshold == 20
    client.post(reverse("admin:commands_cookierole_delete", args=[row.pk]), {"post": "yes"})
    assert not CookieRole.objects.exists()
    plain = User.objects.create_user("plain2", password="pw-plain-123", is_staff=True)
    client.force_login(plain)
    assert client.get(add).status_code == 403


def test_the_balances_admin_resets_selected_members_and_queues_their_cookie_roles(
    client, filled, django_capture_on_commit_callbacks
):
    from django_q.models import OrmQ

    from commands.models import CookieBalance
    from commands.services import cookie_role_add

    cookie_role_add(guild_id=GUILD, threshold=2, role_id=77, actor_id=None)
    url = reverse("admin:commands_cookiebalance_changelist")
    picked = list(CookieBalance.objects.filter(guild_id=GUILD, member_id__in=[12, 13]).values_list("pk", flat=True))
    viewer = User.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_cookiebalance"))
    client.force_login(viewer)
    client.post(url, {"action": "reset_to_zero", "_selected_action": picked})
    assert CookieBalance.objects.get(guild_id=GUILD, member_id=12).balance == 3  # view only: no action
    client.force_login(User.objects.create_user("boss2", password="pw-boss-123", is_staff=True, is_superuser=True))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "reset_to_zero", "_selected_action": picked})
    assert set(CookieBalance.objects.filter(pk__in=picked).values_list("balance", flat=True)) == {0}
    assert [(q.task["func"], q.task["args"]) for q in OrmQ.objects.all()] == [
        ("bots.cookie_roles.cookie_roles_apply", (GUILD, [12]))
    ]
