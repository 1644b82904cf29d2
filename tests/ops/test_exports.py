"""Exports stream CSV or JSON Lines to staff, chunk by chunk, with formula cells neutralized."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from commands.services import command_alias_add, command_create, command_update, cookie_give
from ops import exports
from timers.services import timer_set

GUILD = 555
OTHER = 556
SNOWFLAKE = 1_234_567_890_123_456_789


@pytest.fixture
def filled(db):
    command_create(guild_id=GUILD, name="sum", template="=1+1", author_id=SNOWFLAKE)
    command_alias_add(guild_id=GUILD, name="sum", alias="add")
    command_alias_add(guild_id=GUILD, name="sum", alias="plus")
    command_create(guild_id=GUILD, name="hello", template="Hi {user}!", author_id=1)
    command_update(guild_id=GUILD, name="hello", enabled=False, note="@here was in it")
    command_create(guild_id=OTHER, name="other", template="elsewhere", author_id=1)
    cookie_give(guild_id=GUILD, giver_id=1, receiver_id=SNOWFLAKE)
    cookie_give(guild_id=OTHER, giver_id=1, receiver_id=2)
    timer_set(guild_id=GUILD, member_id=2, role_id=7, duration=timedelta(hours=2), actor_id=1)


@pytest.fixture
def staff(client, filled):
    client.force_login(User.objects.create_user("staff", password="pw-staff-123", is_staff=True, is_superuser=True))
    return client


def _url(dataset: str, fmt: str, **query) -> str:
    url = reverse("exports:download", kwargs={"dataset": dataset, "fmt": fmt})
    return url + ("?" + urlencode(query) if query else "")


def _body(response) -> str:
    assert response.streaming, "an export must stream"
    return b"".join(response.streaming_content).decode()


def test_it_streams_commands_as_csv_with_formulas_neutralized(staff):
    response = staff.get(_url("commands", "csv", guild=GUILD))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"] and f"-{GUILD}-" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert [row["name"] for row in rows] == ["sum", "hello"]
    by_name = {row["name"]: row for row in rows}
    assert by_name["sum"]["template"] == "'=1+1"
    assert by_name["sum"]["aliases"] == "add plus"
    assert by_name["sum"]["author_id"] == str(SNOWFLAKE)
    assert by_name["hello"]["note"] == "'@here was in it"
    assert by_name["hello"]["enabled"] == "false"


def test_it_streams_the_ledger_as_json_lines_with_ids_as_strings(staff):
    response = staff.get(_url("cookie-ledger", "jsonl", guild=GUILD))
    assert response["Content-Type"].startswith("application/jsonl")
    records = [json.loads(line) for line in _body(response).splitlines()]
    assert len(records) == 1
    record = records[0]
    assert record["receiver_id"] == str(SNOWFLAKE) and record["guild_id"] == str(GUILD)
    assert record["delta"] == 1 and record["reason"] == "give"
    assert set(record) == set(exports.DATASETS["cookie-ledger"].header)


def test_it_keeps_negative_numbers_as_numbers_in_csv(staff):
    from commands.services import cookie_set

    cookie_set(guild_id=GUILD, member_id=SNOWFLAKE, balance=-3, actor_id=1)
    rows = list(csv.DictReader(io.StringIO(_body(staff.get(_url("cookie-ledger", "csv", guild=GUILD))))))
    assert [row["delta"] for row in rows] == ["1", "-4"]


@pytest.mark.parametrize("dataset", sorted(exports.DATASETS))
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_it_exports_every_dataset_in_both_formats(staff, dataset, fmt):
    everything = _body(staff.get(_url(dataset, fmt)))
    one_guild = _body(staff.get(_url(dataset, fmt, guild=GUILD)))
    if fmt == "csv":
        header, *rows = list(csv.reader(io.StringIO(everything)))
        assert tuple(header) == exports.DATASETS[dataset].header
    else:
        rows = [json.loads(line) for line in everything.splitlines()]
    assert rows, f"{dataset} exported nothing"
    assert len(one_guild.splitlines()) <= len(everything.splitlines())


def test_it_streams_in_chunks_in_id_order_without_repeats(staff, monkeypatch):
    for receiver in range(100, 107):
        cookie_give(guild_id=GUILD, giver_id=1, receiver_id=receiver)
    monkeypatch.setattr(exports, "CHUNK_ROWS", 3)
    records = [json.loads(line) for line in _body(staff.get(_url("cookie-balances", "jsonl"))).splitlines()]
    ids = [record["id"] for record in records]
    assert ids == sorted(set(ids)) and len(ids) == 9


def test_it_refuses_a_bad_guild_and_an_unknown_dataset(staff):
    assert staff.get(_url("commands", "csv", guild="abc")).status_code == 400
    for nasty in ("²", "١٢", "𝟏𝟐", "１２", "0", "-5", "9" * 5000):
        refused = staff.get(_url("commands", "csv", guild=nasty))
        assert refused.status_code == 400 and b"digits 0-9" in refused.content, nasty
    assert staff.get(_url("passwords", "csv")).status_code == 404


def test_it_sends_anonymous_users_to_the_login_page(client, filled):
    response = client.get(_url("commands", "csv"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_it_refuses_staff_without_the_view_permission(client, filled):
    user = User.objects.create_user("helper", password="pw-helper-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_customcommand"))
    client.force_login(user)
    assert client.get(_url("commands", "csv")).status_code == 200
    assert client.get(_url("timers", "csv")).status_code == 403


def test_it_links_the_exports_from_the_list_pages(staff):
    for model, dataset in (
        ("customcommand", "commands"),
        ("cookiebalance", "cookie-balances"),
        ("cookieledger", "cookie-ledger"),
    ):
        page = staff.get(reverse(f"admin:commands_{model}_changelist")).content.decode()
        assert _url(dataset, "csv") in page and _url(dataset, "jsonl") in page
    page = staff.get(reverse("admin:timers_timedrole_changelist")).content.decode()
    assert _url("timers", "csv") in page
