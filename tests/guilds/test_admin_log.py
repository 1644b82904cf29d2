"""The events page (LogEntry admin): names for a page in one query, newest first, narrowed by guild (id or
name), kind and failures; read-only for everyone; guilds.view_logentry required; linked from the guild settings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from commands.models import GuildSettings
from commands.services import cookie_set, guild_settings_update
from guilds.models import LogEntry
from guilds.services.directory import DirectoryBatch, GuildSeen, MemberSeen, RoleSeen, directory_record
from guilds.services.log import log_record
from timers.services import timer_set

pytestmark = pytest.mark.django_db
G1, G2 = 111_111_111_111_111_111, 222_222_222_222_222_222
ALICE, BOB, BOOSTER = 1039, 1040, 777
EVENTS = reverse("admin:guilds_logentry_changelist")


@pytest.fixture
def world():
    directory_record(
        batch=DirectoryBatch(
            guilds=[GuildSeen(G1, "My Server"), GuildSeen(G2, "Other Place")],
            roles=[RoleSeen(G1, BOOSTER, "Booster")],
            members=[MemberSeen(G1, ALICE, "alice", "Alice"), MemberSeen(G1, BOB, "bob", nick="Bobby")],
        )
    )
    timer_set(guild_id=G1, member_id=ALICE, role_id=BOOSTER, duration=timedelta(days=30), actor_id=BOB)
    cookie_set(guild_id=G1, member_id=ALICE, balance=7, actor_id=BOB)
    log_record(guild_id=G1, kind="timer.expire_failed", text=f"<@{ALICE}>'s <@&{BOOSTER}> timer ran out, but…", failed=True)
    timer_set(guild_id=G2, member_id=ALICE, role_id=5, duration=timedelta(hours=1), actor_id=None)


def user_with(*codenames: str) -> User:
    user = User.objects.create_user(f"u{len(codenames)}{'-'.join(codenames)}"[:30], password="pw-12345678", is_staff=True)
    # (django.contrib.admin's own LogEntry has a view_logentry too: only this app's.)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames).exclude(content_type__app_label="admin"))
    return user


@pytest.fixture
def viewer(client, world):
    client.force_login(user_with("view_logentry"))
    return client


def rows(response) -> list[str]:
    return [e.kind for e in response.context["cl"].result_list]


def test_it_lists_events_newest_first_with_names(viewer):
    response = viewer.get(EVENTS)
    assert response.status_code == 200
    assert rows(response) == ["timer.set", "timer.expire_failed", "cookie.set", "timer.set"]
    page = response.content.decode()
    assert "Alice (@alice)&#x27;s @Booster timer set to 30d by Bobby (@bob)" in page
    assert "My Server" in page and "Other Place" in page
    assert "⚠️ failed" in page and "waiting to be posted" in page


def test_a_page_costs_the_same_queries_however_many_entries(viewer):
    with CaptureQueriesContext(connection) as few:
        viewer.get(EVENTS)
    for i in range(40):
        log_record(guild_id=G1, kind="timer.set", text=f"<@{ALICE + i}>'s <@&{BOOSTER}> timer set", member_id=ALICE + i)
    with CaptureQueriesContext(connection) as many:
        viewer.get(EVENTS)
    assert len(many) == len(few)


def test_it_narrows_by_guild_id_or_name_kind_and_failures(viewer):
    assert rows(viewer.get(EVENTS, {"q": str(G2)})) == ["timer.set"]
    assert rows(viewer.get(EVENTS, {"q": '"my serv"'})) == ["timer.expire_failed", "cookie.set", "timer.set"]
    assert rows(viewer.get(EVENTS, {"q": f"{G1} kind:cookie.set"})) == ["cookie.set"]
    assert rows(viewer.get(EVENTS, {"q": f"{G1} failed:yes"})) == ["timer.expire_failed"]
    assert rows(viewer.get(EVENTS, {"q": f"{G1} failed:no kind:timer.set"})) == ["timer.set"]


def test_it_refuses_searches_it_cannot_answer_from_an_index(viewer):
    for query, words in [
        ("failed:yes", "Add the guild"),
        (f"{G1} failed:maybe", "failed must be yes or no"),
        (f"{G1} kind:nonsense", "kind must be one of"),
        ("kind:cookie.set", "Add the guild"),
    ]:
        response = viewer.get(EVENTS, {"q": query}, follow=True)
        assert rows(response) == [], query
        assert any(words in str(m) for m in response.context["messages"]), (query, list(response.context["messages"]))


def test_it_is_read_only_even_for_a_superuser(client, world):
    client.force_login(User.objects.create_superuser("root", password="pw-12345678"))
    entry = LogEntry.objects.order_by("pk").first()
    change = client.get(reverse("admin:guilds_logentry_change", args=[entry.pk]))
    assert change.status_code == 200 and 'name="_save"' not in change.content.decode()
    assert "Alice (@alice)" in change.content.decode()
    assert client.get(reverse("admin:guilds_logentry_add")).status_code == 403
    assert client.post(reverse("admin:guilds_logentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    before = entry.text
    client.post(reverse("admin:guilds_logentry_change", args=[entry.pk]), {"text": "rewritten"})
    entry.refresh_from_db()
    assert entry.text == before


def test_it_needs_the_view_permission(client, world):
    client.force_login(user_with("view_timedrole"))
    assert client.get(EVENTS).status_code == 403
    entry = LogEntry.objects.first()
    assert client.get(reverse("admin:guilds_logentry_change", args=[entry.pk])).status_code == 403
    client.logout()
    assert client.get(EVENTS).status_code == 302  # to the login page


def test_the_guild_settings_link_to_their_events(client, world):
    guild_settings_update(guild_id=G1, prefix="!!")
    client.force_login(User.objects.create_superuser("root", password="pw-12345678"))
    page = client.get(reverse("admin:commands_guildsettings_changelist")).content.decode()
    assert f'href="{EVENTS}?q={G1}"' in page
    settings_pk = GuildSettings.objects.get(guild_id=G1).pk
    change = client.get(reverse("admin:commands_guildsettings_change", args=[settings_pk])).content.decode()
    assert f'href="{EVENTS}?q={G1}"' in change
