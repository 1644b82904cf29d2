"""The admin shows names next to ids, looks them up once per page, and searches by name."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from commands.services import cookie_give
from guilds.models import Member
from guilds.services.directory import ChannelSeen, DirectoryBatch, GuildSeen, MemberSeen, RoleSeen, directory_record
from timers.models import TimedRole
from timers.services import timer_pause, timer_set

pytestmark = pytest.mark.django_db
G1, G2 = 111_111_111_111_111_111, 222_222_222_222_222_222
ALICE, BOB = 1039, 1040
BOOSTER, VIP, OTHER_ROLE = 777, 778, 888
TIMERS = reverse("admin:timers_timedrole_changelist")


@pytest.fixture
def world():
    directory_record(
        batch=DirectoryBatch(
            guilds=[GuildSeen(G1, "My Server"), GuildSeen(G2, "Other Place")],
            roles=[RoleSeen(G1, BOOSTER, "Booster"), RoleSeen(G1, VIP, "VIP"), RoleSeen(G2, OTHER_ROLE, "Booster")],
            channels=[ChannelSeen(G1, 55, "general")],
            members=[
                MemberSeen(G1, ALICE, "alice", "Alice"),
                MemberSeen(G1, BOB, "bob", nick="Bobby"),
                MemberSeen(G2, ALICE, "alice", "Alice"),
            ],
        )
    )
    timer_set(guild_id=G1, member_id=ALICE, role_id=BOOSTER, duration=timedelta(hours=2), actor_id=None)
    timer_set(guild_id=G1, member_id=BOB, role_id=VIP, duration=timedelta(days=3), actor_id=None)
    timer_pause(guild_id=G1, member_id=BOB, role_id=VIP, actor_id=None)
    timer_set(guild_id=G2, member_id=ALICE, role_id=OTHER_ROLE, duration=timedelta(hours=5), actor_id=None)
    timer_set(guild_id=G1, member_id=5, role_id=BOOSTER, duration=timedelta(hours=1), actor_id=None)  # not in the directory
    cookie_give(guild_id=G1, giver_id=BOB, receiver_id=ALICE)


@pytest.fixture
def staff(client, world):
    client.force_login(User.objects.create_user("staff", password="pw-staff-123", is_staff=True, is_superuser=True))
    return client


def shown(response) -> list[tuple[int, int, int]]:
    return sorted((t.guild_id, t.member_id, t.role_id) for t in response.context["cl"].result_list)


def test_the_timers_list_shows_names_time_left_and_ids(staff):
    page = staff.get(TIMERS).content.decode()
    for text in ("Alice (@alice)", "Bobby (@bob)", "@Booster", "@VIP", "My Server", "Other Place", str(ALICE), str(G1)):
        assert text in page
    assert re.search(r"(3d|2d 23h 59m) \(paused\)", page) and re.search(r'field-time_left">(2h|1h 59m)<', page)
    assert 'change/">5</a>' in page  # a member the bot hasn't seen: the id alone


def test_the_names_cost_one_query_per_page_not_one_per_row(staff):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff.get(TIMERS).status_code == 200
        return sum(1 for q in captured.captured_queries if "guilds_" in q["sql"])

    few = queries()
    for n in range(30):
        directory_record(batch=DirectoryBatch(members=[MemberSeen(G1, 2000 + n, f"user{n}")]))
        timer_set(guild_id=G1, member_id=2000 + n, role_id=VIP, duration=timedelta(hours=1), actor_id=None)
    assert few == 1 and queries() == 1


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ('"My Server"', {(G1, ALICE, BOOSTER), (G1, BOB, VIP), (G1, 5, BOOSTER)}),
        ("other", {(G2, ALICE, OTHER_ROLE)}),
        ("my role:booster", {(G1, ALICE, BOOSTER), (G1, 5, BOOSTER)}),
        ("my role:@vip state:paused", {(G1, BOB, VIP)}),
        ("my member:bobby", {(G1, BOB, VIP)}),
        ("my member:ALI", {(G1, ALICE, BOOSTER)}),
        (f"{G2} member:alice", {(G2, ALICE, OTHER_ROLE)}),
        ("my state:active", {(G1, ALICE, BOOSTER), (G1, 5, BOOSTER)}),
    ],
)
def test_the_timers_list_filters_by_guild_role_and_member_names_and_state(staff, search, expected):
    response = staff.get(TIMERS, {"q": search})
    assert response.status_code == 200 and set(shown(response)) == expected


@pytest.mark.parametrize(
    ("search", "says"),
    [
        ("nowhere", "No guild whose name starts with “nowhere”"),
        ("my member:zed", "No member whose name starts with “zed”"),
        ("role:booster", "Add the guild"),
    ],
)
def test_a_name_nobody_has_finds_nothing_and_says_so(staff, search, says):
    response = staff.get(TIMERS, {"q": search})
    assert list(response.context["cl"].result_list) == []
    assert says in " ".join(str(m) for m in response.context["messages"])


def test_a_timer_page_shows_the_names(staff):
    timer = TimedRole.objects.get(guild_id=G1, member_id=ALICE)
    page = staff.get(reverse("admin:timers_timedrole_change", args=[timer.pk])).content.decode()
    assert "Alice (@alice)" in page and "@Booster" in page and "My Server" in page and "Time left" in page


def test_cookie_lists_show_member_names_and_search_by_them(staff):
    ledger = staff.get(reverse("admin:commands_cookieledger_changelist"), {"q": "my giver:bob"})
    assert [(r.giver_id, r.receiver_id) for r in ledger.context["cl"].result_list] == [(BOB, ALICE)]
    assert "Bobby (@bob)" in ledger.content.decode() and "Alice (@alice)" in ledger.content.decode()
    balances = staff.get(reverse("admin:commands_cookiebalance_changelist"), {"q": '"my server" member:alice'})
    assert [r.member_id for r in balances.context["cl"].result_list] == [ALICE]


def test_the_directory_lists_are_read_only_and_searchable(staff):
    members = staff.get(reverse("admin:guilds_member_changelist"), {"q": "my member:b"})
    assert [m.user_id for m in members.context["cl"].result_list] == [BOB]
    row = Member.objects.get(guild_id=G1, user_id=BOB)
    page = staff.get(reverse("admin:guilds_member_change", args=[row.pk])).content.decode()
    assert "Bobby" in page and 'type="submit" value="Save"' not in page
    assert staff.get(reverse("admin:guilds_member_add")).status_code == 403


def test_staff_without_the_view_permission_see_no_names(client, world):
    user = User.objects.create_user("helper", password="pw-helper-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_cookiebalance"))
    client.force_login(user)
    assert client.get(TIMERS).status_code == 403
    assert client.get(reverse("admin:guilds_member_changelist")).status_code == 403
    assert client.get(reverse("admin:commands_cookiebalance_changelist")).status_code == 200
