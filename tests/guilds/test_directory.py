"""The directory's writes (bulk upserts) and reads (names for ids, ids for names) on the real database."""

from __future__ import annotations

import datetime
import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from guilds.models import Channel, Guild, Member, Role
from guilds.selectors import (
    channel_ids_named,
    directory_names,
    guild_ids_named,
    member_ids_named,
    members_left,
    role_ids_named,
)
from guilds.services.directory import (
    ChannelSeen,
    DirectoryBatch,
    Gone,
    GuildSeen,
    MemberLeft,
    MemberSeen,
    RoleSeen,
    Roster,
    directory_record,
)

pytestmark = pytest.mark.django_db
G1, G2 = 111_111_111_111_111_111, 222_222_222_222_222_222
JOINED = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def alice(**changes) -> MemberSeen:
    values = {"guild_id": G1, "user_id": 1039, "username": "alice", "global_name": "Alice", "joined_at": JOINED}
    return MemberSeen(**(values | changes))


def seed() -> None:
    directory_record(
        batch=DirectoryBatch(
            guilds=[GuildSeen(G1, "My Server"), GuildSeen(G2, "Other Place")],
            roles=[RoleSeen(G1, 777, "Booster", 3), RoleSeen(G2, 888, "Booster club", 1), RoleSeen(G1, G1, "@everyone")],
            channels=[ChannelSeen(G1, 55, "general"), ChannelSeen(G2, 66, "general", 0)],
            members=[alice(), MemberSeen(G1, 1040, "bob", nick="Bobby"), MemberSeen(G2, 1039, "alice", "Alice", "Al")],
        )
    )


def test_it_writes_a_batch_in_a_few_statements_whatever_its_size():
    members = [MemberSeen(G1, 10_000 + n, f"user{n}") for n in range(1200)]
    with CaptureQueriesContext(connection) as queries:
        written = directory_record(batch=DirectoryBatch(guilds=[GuildSeen(G1, "My Server")], members=members))
    assert written == 1201 and Member.objects.filter(guild_id=G1).count() == 1200
    # One upsert per batch of rows (500 on PostgreSQL, fewer under SQLite's 999-variable limit): never one per member.
    inserts = [q for q in queries.captured_queries if "INSERT" in q["sql"]]
    per_insert = 500 if connection.vendor == "postgresql" else 999 // 12  # SQLite: 999 variables, 12 a row
    assert len(inserts) == 1 + sum(math.ceil(chunk / per_insert) for chunk in (500, 500, 200))


def test_it_updates_names_and_keeps_the_rest():
    seed()
    directory_record(batch=DirectoryBatch(guilds=[GuildSeen(G1, "Renamed")], members=[alice(nick="Ally", global_name="")]))
    assert Guild.objects.get(guild_id=G1).name == "Renamed" and Guild.objects.count() == 2
    row = Member.objects.get(guild_id=G1, user_id=1039)
    assert (row.nick, row.global_name, row.nick_key, row.joined_at) == ("Ally", "", "ally", JOINED)
    assert str(row) == "Ally (@alice)"


def test_it_marks_departures_and_clears_them_on_rejoin():
    seed()
    directory_record(batch=DirectoryBatch(departures=[MemberLeft(G1, 1039, "alice", "Alice")]))
    row = Member.objects.get(guild_id=G1, user_id=1039)
    assert row.left_at is not None and row.nick == "" and row.username == "alice"
    assert members_left(guild_id=G1, user_ids=[1039, 1040]) == {1039}
    assert directory_names(members=[(G1, 1039)]).member(G1, 1039) == "Alice (@alice), left"
    directory_record(batch=DirectoryBatch(members=[alice()]))
    assert Member.objects.get(guild_id=G1, user_id=1039).left_at is None
    assert members_left(guild_id=G1, user_ids=[1039]) == set()
    # A departure of someone never seen is recorded too (their timers and cookies name them).
    directory_record(batch=DirectoryBatch(departures=[MemberLeft(G2, 5, "ghost")]))
    assert Member.objects.get(guild_id=G2, user_id=5).left_at is not None


def test_it_marks_deleted_roles_channels_and_removed_guilds_without_deleting_them():
    seed()
    directory_record(batch=DirectoryBatch(gone=[Gone("role", 777), Gone("channel", 55), Gone("guild", G2)]))
    names = directory_names(guild_ids=[G1, G2], role_ids=[777], channel_ids=[55])
    assert names.role(777) == "@Booster (deleted)" and names.channel(55) == "#general (deleted)"
    assert names.guild(G2) == "Other Place (bot removed)" and names.guild(G1) == "My Server"
    # Seen again (the bot re-added): present again.
    directory_record(batch=DirectoryBatch(guilds=[GuildSeen(G2, "Other Place")]))
    assert Guild.objects.get(guild_id=G2).left_at is None


def test_a_roster_marks_what_went_away_while_the_bot_was_offline():
    seed()
    directory_record(batch=DirectoryBatch(rosters=[Roster(G1, frozenset({G1}), frozenset())]))
    assert Role.objects.get(role_id=777).deleted_at is not None and Role.objects.get(role_id=G1).deleted_at is None
    assert Channel.objects.get(channel_id=55).deleted_at is not None
    assert Role.objects.get(role_id=888).deleted_at is None  # another guild's


def test_it_names_a_page_of_ids_in_one_query():
    seed()
    with CaptureQueriesContext(connection) as queries:
        names = directory_names(
            guild_ids=[G1, G2, 999, None],
            role_ids=[777, 888, G1, 4],
            channel_ids=[55],
            members=[(G1, 1039), (G1, 1040), (G2, 1039), (G2, 1040), (None, 1)],
        )
    assert len(queries.captured_queries) == 1
    assert (names.guild(G1), names.guild(999), names.guild(None)) == ("My Server", "", "")
    assert (names.role(777), names.role(888), names.role(G1), names.role(4)) == ("@Booster", "@Booster club", "@everyone", "")
    assert names.channel(55) == "#general"
    assert names.member(G1, 1039) == "Alice (@alice)" and names.member(G1, 1040) == "Bobby (@bob)"
    assert names.member(G2, 1039) == "Al (@alice)" and names.member(G2, 1040) == ""
    with CaptureQueriesContext(connection) as queries:
        assert directory_names() == directory_names(members=[(None, None)])
    assert queries.captured_queries == []


def test_it_finds_ids_by_the_start_of_a_name_in_any_case():
    seed()
    assert guild_ids_named("my s") == [G1] and guild_ids_named("OTHER") == [G2] and guild_ids_named("nothing") == []
    assert sorted(role_ids_named(guild_ids=[G1, G2], text="@booster")) == [777, 888]
    assert role_ids_named(guild_ids=[G1], text="Booster C") == []
    assert channel_ids_named(guild_ids=[G2], text="#Gen") == [66]
    assert member_ids_named(guild_ids=[G1], text="ali") == [1039]  # the display name and the @name
    assert member_ids_named(guild_ids=[G1], text="bobby") == [1040]  # the nickname
    assert member_ids_named(guild_ids=[G2], text="bob") == []
    assert member_ids_named(guild_ids=[], text="ali") == []
    # Characters that mean something to LIKE are plain text here.
    assert member_ids_named(guild_ids=[G1], text="%") == [] and guild_ids_named("_") == []


@pytest.mark.postgres
def test_the_name_searches_use_the_directory_indexes_on_postgresql():
    seed()
    Member.objects.bulk_create([Member(guild_id=G1, user_id=20_000 + n, username=f"u{n}") for n in range(3000)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE guilds_member")
    from guilds.selectors import _prefix

    plan = (
        Member.objects.filter((_prefix("nick_key", "bob") | _prefix("username", "bob")), guild_id=G1)
        .values_list("user_id")
        .explain()
    )
    assert "directory_member_nick" in plan and "directory_member_username" in plan, plan
