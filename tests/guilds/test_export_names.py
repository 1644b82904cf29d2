"""Exports carry the directory's names next to the ids, one directory query per chunk."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from commands.services import cookie_give
from guilds.services.directory import DirectoryBatch, GuildSeen, MemberSeen, RoleSeen, directory_record
from ops import exports
from timers.services import timer_set

pytestmark = pytest.mark.django_db
GUILD, ALICE, BOB, ROLE = 111_111_111_111_111_111, 1039, 1040, 777


@pytest.fixture
def staff(client):
    directory_record(
        batch=DirectoryBatch(
            guilds=[GuildSeen(GUILD, "My Server")],
            roles=[RoleSeen(GUILD, ROLE, "Booster")],
            members=[MemberSeen(GUILD, ALICE, "alice", "Alice")],
        )
    )
    client.force_login(User.objects.create_user("staff", password="pw-staff-123", is_staff=True, is_superuser=True))
    return client


def body(client, dataset: str, fmt: str) -> str:
    response = client.get(reverse("exports:download", kwargs={"dataset": dataset, "fmt": fmt}) + f"?guild={GUILD}")
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


def test_the_timers_export_names_the_guild_member_and_role(staff):
    timer_set(guild_id=GUILD, member_id=ALICE, role_id=ROLE, duration=timedelta(hours=1), actor_id=None)
    timer_set(guild_id=GUILD, member_id=BOB, role_id=ROLE, duration=timedelta(hours=1), actor_id=None)
    rows = {row["member_id"]: row for row in csv.DictReader(io.StringIO(body(staff, "timers", "csv")))}
    assert rows[str(ALICE)]["member_name"] == "Alice (@alice)" and rows[str(ALICE)]["guild_name"] == "My Server"
    assert rows[str(ALICE)]["role_name"] == "'@Booster"  # a leading @ is neutralized like any formula start
    assert rows[str(BOB)]["member_name"] == "" and rows[str(BOB)]["role_id"] == str(ROLE)
    records = [json.loads(line) for line in body(staff, "timers", "jsonl").splitlines()]
    assert {r["member_id"]: r["role_name"] for r in records} == {str(ALICE): "@Booster", str(BOB): "@Booster"}


def test_the_ledger_export_names_giver_and_receiver_once_per_chunk(staff, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK_ROWS", 2)
    for receiver in (BOB, BOB + 1, BOB + 2, BOB + 3, BOB + 4):
        cookie_give(guild_id=GUILD, giver_id=ALICE, receiver_id=receiver)
    with CaptureQueriesContext(connection) as queries:
        records = [json.loads(line) for line in body(staff, "cookie-ledger", "jsonl").splitlines()]
    assert [r["giver_name"] for r in records] == ["Alice (@alice)"] * 5 and {r["receiver_name"] for r in records} == {""}
    assert sum(1 for q in queries.captured_queries if "guilds_" in q["sql"]) == 3  # 5 rows in chunks of 2
