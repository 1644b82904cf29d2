"""Cookie leaderboards: a staff page per guild, and a public page only where a guild turned it on."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from commands.models import GuildSettings
from commands.services import cookie_give, cookie_set

GUILD = 555
OTHER = 556


@pytest.fixture
def filled(db):
    cookie_set(guild_id=GUILD, member_id=11, balance=5, actor_id=1)
    cookie_set(guild_id=GUILD, member_id=12, balance=9, actor_id=1)
    cookie_set(guild_id=GUILD, member_id=13, balance=5, actor_id=1)
    cookie_give(guild_id=OTHER, giver_id=1, receiver_id=99)


@pytest.fixture
def staff(client, filled):
    client.force_login(User.objects.create_user("staff", password="pw-staff-123", is_staff=True, is_superuser=True))
    return client


def _public(guild_id: int = GUILD) -> str:
    return reverse("leaderboard-public", args=[guild_id])


def _rows(response) -> list[tuple[int, int, int]]:
    return [(s.rank, s.member_id, s.balance) for s in response.context["standings"]]


def test_it_hides_the_public_page_by_default(client, filled):
    assert client.get(_public()).status_code == 404
    GuildSettings.objects.create(guild_id=GUILD)
    assert client.get(_public()).status_code == 404


def test_it_shows_the_public_page_once_enabled_without_login(client, filled):
    GuildSettings.objects.create(guild_id=GUILD, public_leaderboard=True)
    response = client.get(_public())
    assert response.status_code == 200
    assert _rows(response) == [(1, 12, 9), (2, 11, 5), (2, 13, 5)]
    page = response.content.decode()
    assert "12" in page and "/admin/" not in page and "csrfmiddlewaretoken" not in page
    assert client.get(_public(OTHER)).status_code == 404, "another guild's switch is its own"


def test_it_pages_the_public_leaderboard_and_caps_it(client, filled, monkeypatch):
    from commands import views

    GuildSettings.objects.create(guild_id=GUILD, public_leaderboard=True)
    monkeypatch.setattr(views, "PUBLIC_PAGE_SIZE", 2)
    monkeypatch.setattr(views, "PUBLIC_MAX_PAGE", 2)
    first = client.get(_public())
    assert first.context["next_url"] == f"{_public()}?page=2"
    second = client.get(_public(), {"page": 2})
    assert _rows(second) == [(2, 13, 5)]
    assert client.get(_public(), {"page": 50}).context["page"] == 2
    assert client.get(_public(), {"page": "x"}).context["page"] == 1


def test_it_renders_the_staff_page_in_the_admin(staff):
    response = staff.get(reverse("leaderboard:staff", args=[GUILD]))
    assert response.status_code == 200
    assert _rows(response) == [(1, 12, 9), (2, 11, 5), (2, 13, 5)]
    page = response.content.decode()
    assert 'id="site-name"' in page and "Cookie leaderboard of guild 555" in page
    assert response.context["public_enabled"] is False


def test_it_jumps_to_a_members_page_on_the_staff_page(staff, monkeypatch):
    from commands import views

    monkeypatch.setattr(views, "STAFF_PAGE_SIZE", 2)
    response = staff.get(reverse("leaderboard:staff", args=[GUILD]), {"member": 13})
    assert response.context["page"] == 2 and response.context["standing"].rank == 2
    assert _rows(response) == [(2, 13, 5)]
    assert response.context["previous_url"].endswith("?page=1")


def test_it_picks_a_guild_from_the_staff_index(staff):
    index = staff.get(reverse("leaderboard:staff-index"))
    assert index.status_code == 200
    picked = staff.get(reverse("leaderboard:staff-index"), {"guild": GUILD})
    assert picked.status_code == 302 and picked["Location"] == reverse("leaderboard:staff", args=[GUILD])


def test_it_sends_anonymous_users_from_the_staff_page_to_the_login(client, filled):
    response = client.get(reverse("leaderboard:staff", args=[GUILD]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


def test_it_switches_the_public_page_in_the_guild_settings_admin(staff):
    settings_row = GuildSettings.objects.create(guild_id=GUILD)
    url = reverse("admin:commands_guildsettings_change", args=[settings_row.pk])
    form = staff.get(url).content.decode()
    assert 'name="public_leaderboard"' in form
    data = {
        "guild_id": GUILD,
        "prefix": "!!",
        "cookie_pair_cooldown_seconds": 60,
        "cookie_daily_cap": 50,
        "cookie_message_cap": 5,
        "cookie_allow_negative": "on",
        "public_leaderboard": "on",
    }
    assert staff.post(url, data).status_code == 302
    assert staff.get(_public()).status_code == 200


@pytest.mark.parametrize("page", ["²", "١٢", "𝟏", "１", "-1", "0", "1e3", "9" * 5000, " 2 "])
def test_it_reads_a_page_in_unicode_or_nonsense_as_the_first_one(client, staff, filled, page):
    GuildSettings.objects.update_or_create(guild_id=GUILD, defaults={"public_leaderboard": True})
    expected = 2 if page.strip() == "2" else 1
    assert client.get(_public(), {"page": page}).context["page"] == expected
    staff_page = staff.get(reverse("leaderboard:staff", args=[GUILD]), {"page": page, "member": page})
    assert staff_page.status_code == 200 and staff_page.context["page"] == expected
    index = staff.get(reverse("leaderboard:staff-index"), {"guild": page})
    assert index.status_code == (302 if expected == 2 else 200)
