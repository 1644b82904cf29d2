"""The timers list in a real browser: names next to ids, the time left, and filters by name and state."""

from __future__ import annotations

from datetime import timedelta

import pytest

from guilds.services.directory import DirectoryBatch, GuildSeen, MemberLeft, MemberSeen, RoleSeen, directory_record
from tests.browser.conftest import log_in, shot
from timers.services import timer_pause, timer_set

pytestmark = pytest.mark.django_db(transaction=True)
SERVER, OTHER = 616161616161616101, 616161616161616102
ALICE, BOB, CAROL, DAVE = 716161616161616101, 716161616161616102, 716161616161616103, 716161616161616104
BOOSTER, VIP, OTHER_BOOSTER = 816161616161616101, 816161616161616102, 816161616161616103


@pytest.fixture
def timers(transactional_db):
    directory_record(
        batch=DirectoryBatch(
            guilds=[GuildSeen(SERVER, "My Server"), GuildSeen(OTHER, "Other Place")],
            roles=[RoleSeen(SERVER, BOOSTER, "Booster"), RoleSeen(SERVER, VIP, "VIP"), RoleSeen(OTHER, OTHER_BOOSTER, "Booster")],
            members=[
                MemberSeen(SERVER, ALICE, "alice", "Alice"),
                MemberSeen(SERVER, BOB, "bob", nick="Bobby"),
                MemberSeen(SERVER, CAROL, "carol", "Carol"),
                MemberSeen(OTHER, ALICE, "alice", "Alice"),
            ],
        )
    )
    directory_record(batch=DirectoryBatch(departures=[MemberLeft(SERVER, CAROL, "carol", "Carol")]))
    for member, role, guild, hours in (
        (ALICE, BOOSTER, SERVER, 2),
        (BOB, VIP, SERVER, 72),
        (CAROL, BOOSTER, SERVER, 30),
        (DAVE, BOOSTER, SERVER, 1),  # never seen by the bot: shown by id
        (ALICE, OTHER_BOOSTER, OTHER, 5),
    ):
        timer_set(guild_id=guild, member_id=member, role_id=role, duration=timedelta(hours=hours), actor_id=None)
    timer_pause(guild_id=SERVER, member_id=BOB, role_id=VIP, actor_id=None)


def rows(page) -> list[str]:
    return [text.strip() for text in page.locator("#result_list tbody tr").all_inner_texts()]


def search(page, text: str) -> None:
    page.fill("#searchbar", text)
    page.press("#searchbar", "Enter")
    page.wait_for_load_state("load")


def test_the_timers_list_shows_names_time_left_and_filters(page, superuser, timers):
    log_in(page, superuser)
    page.goto("/admin/timers/timedrole/")
    page.wait_for_selector("#result_list")
    shot(page, "timers-names")
    listed = rows(page)
    assert len(listed) == 5
    first_alice = next(r for r in listed if "Alice (@alice)" in r and "My Server" in r)
    assert "@Booster" in first_alice and "active" in first_alice and ("1h 59m" in first_alice or "2h" in first_alice)
    bob = next(r for r in listed if "Bobby (@bob)" in r)
    assert "@VIP" in bob and "(paused)" in bob
    assert any("Carol (@carol), left" in r for r in listed)
    assert any(str(DAVE) in r and "@Booster" in r for r in listed)
    assert "member:<id or name>" in page.inner_text("#changelist-search")

    search(page, '"My Server" role:booster')
    shot(page, "timers-filtered-by-server-and-role")
    assert sorted("Alice" in r or "Carol" in r or str(DAVE) in r for r in rows(page)) == [True, True, True]
    assert all("Other Place" not in r for r in rows(page))

    search(page, "my state:paused")
    assert len(rows(page)) == 1 and "Bobby (@bob)" in rows(page)[0]

    search(page, "other member:ali")
    assert len(rows(page)) == 1 and "Other Place" in rows(page)[0]

    search(page, "my member:zed")
    shot(page, "timers-no-such-member")
    assert rows(page) == [] or all("0 timed roles" in r for r in rows(page))
    assert "No member whose name starts with “zed”" in page.inner_text("body")
