"""Every /api/v1 operation needs the caller's Django model permission, with a token or a session.

A matrix over every operation and five callers: staff with no permissions, staff with
view permissions only, staff with every API permission except the ones the operation
needs, staff with them all, and a superuser. Refusals are 403 with a message naming the
permission, and change nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from commands.models import CookieBalance, CookieLedger, CookieRole, CustomCommand, GuildSettings
from commands.services import command_create, cookie_give, cookie_role_add
from guilds.services.log import log_record
from ops.api_tokens import api_token_create
from tests.api.conftest import GUILD, OTHER_GUILD, all_api_permissions, bearer, grant
from timers.models import BulkJob, TimedRole, TimerSettings
from timers.services import timer_pause, timer_set
from timers.services.bulk import bulk_job_create

MEMBER, OTHER_MEMBER, ROLE = 200000000000000001, 200000000000000002, 300000000000000001
OTHER_ROLE = 300000000000000002
PAUSED_MEMBER = 200000000000000003
pytestmark = pytest.mark.django_db

C = f"/api/v1/guilds/{GUILD}"
ELSEWHERE = f"/api/v1/guilds/{OTHER_GUILD}"  # where the open bulk job is, so that GUILD may start one
# (operation id, method, url, body, permissions it needs); {active} and {paused} are timer ids.
OPERATIONS = [
    ("commands_list", "get", f"{C}/commands", None, ["commands.view_customcommand"]),
    ("commands_get", "get", f"{C}/commands/hello", None, ["commands.view_customcommand"]),
    ("commands_create", "post", f"{C}/commands", {"name": "fresh", "template": "Hi"}, ["commands.add_customcommand"]),
    ("commands_update", "patch", f"{C}/commands/hello", {"template": "Hey"}, ["commands.change_customcommand"]),
    ("commands_delete", "delete", f"{C}/commands/hello", None, ["commands.delete_customcommand"]),
    ("cookies_balances", "get", f"{C}/cookies/balances", None, ["commands.view_cookiebalance"]),
    ("cookies_standing", "get", f"{C}/cookies/balances/{MEMBER}", None, ["commands.view_cookiebalance"]),
    ("cookies_leaderboard", "get", f"{C}/cookies/leaderboard", None, ["commands.view_cookiebalance"]),
    ("cookies_ledger", "get", f"{C}/cookies/ledger", None, ["commands.view_cookieledger"]),
    ("cookies_set", "put", f"{C}/cookies/balances/{MEMBER}", {"balance": 7}, ["commands.change_cookiebalance"]),
    ("cookie_roles_get", "get", f"{C}/cookies/roles", None, ["commands.view_cookierole"]),
    (
        "cookie_roles_add",
        "post",
        f"{C}/cookies/roles",
        {"threshold": 3, "role_id": str(OTHER_ROLE)},
        ["commands.add_cookierole", "commands.change_cookierole"],
    ),
    ("cookie_roles_delete", "delete", f"{C}/cookies/roles/{ROLE}", None, ["commands.delete_cookierole"]),
    ("timers_list", "get", "/api/v1/timers", None, ["timers.view_timedrole"]),
    ("timers_get", "get", "/api/v1/timers/{active}", None, ["timers.view_timedrole"]),
    (
        "timers_create",
        "post",
        "/api/v1/timers",
        {"guild_id": str(GUILD), "member_id": str(OTHER_MEMBER), "role_id": str(ROLE), "duration": "1h"},
        ["timers.add_timedrole", "timers.change_timedrole"],
    ),
    ("timers_extend", "post", "/api/v1/timers/{active}/extend", {"duration": "1h"}, ["timers.change_timedrole"]),
    ("timers_pause", "post", "/api/v1/timers/{active}/pause", {}, ["timers.change_timedrole"]),
    ("timers_resume", "post", "/api/v1/timers/{paused}/resume", None, ["timers.change_timedrole"]),
    ("timers_clear", "post", "/api/v1/timers/{active}/clear", None, ["timers.change_timedrole"]),
    ("timers_bulk_jobs_list", "get", f"{C}/timers/bulk-jobs", None, ["timers.view_timedrole"]),
    ("timers_bulk_job_get", "get", ELSEWHERE + "/timers/bulk-jobs/{bulk}", None, ["timers.view_timedrole"]),
    (
        "timers_bulk_add",
        "post",
        f"{C}/timers/bulk-jobs/add",
        {"role_id": str(ROLE), "duration": "1d"},
        ["timers.add_timedrole"],
    ),
    ("timers_bulk_clear", "post", f"{C}/timers/bulk-jobs/clear", {"role_id": str(ROLE)}, ["timers.change_timedrole"]),
    ("timers_bulk_cancel", "post", ELSEWHERE + "/timers/bulk-jobs/{bulk}/cancel", None, ["timers.change_timedrole"]),
    ("timers_settings_get", "get", f"{C}/timers/settings", None, ["timers.view_timersettings"]),
    ("timers_settings_update", "patch", f"{C}/timers/settings", {"on_leave": "pause"}, ["timers.change_timersettings"]),
    ("settings_get", "get", f"{C}/settings", None, ["commands.view_guildsettings"]),
    ("settings_update", "patch", f"{C}/settings", {"thanks_enabled": True}, ["commands.change_guildsettings"]),
    ("log_list", "get", f"{C}/log", None, ["guilds.view_logentry"]),
]
VIEW_PERMISSIONS = [p for p in all_api_permissions() if ".view_" in p]
CALLERS = ("no permissions", "view only", "all but the needed", "all permissions", "superuser")


@pytest.fixture
def world() -> dict[str, int]:
    """One command, cookies, an active timer and a paused one, an open bulk job elsewhere, a log entry."""
    command_create(guild_id=GUILD, name="hello", template="Hello {user}!", author_id=None)
    cookie_give(guild_id=GUILD, giver_id=OTHER_MEMBER, receiver_id=MEMBER)
    cookie_role_add(guild_id=GUILD, threshold=5, role_id=ROLE, actor_id=None)
    active = timer_set(guild_id=GUILD, member_id=MEMBER, role_id=ROLE, duration=timedelta(hours=2), actor_id=None).timer
    timer_set(guild_id=GUILD, member_id=PAUSED_MEMBER, role_id=ROLE, duration=timedelta(hours=2), actor_id=None)
    paused = timer_pause(guild_id=GUILD, member_id=PAUSED_MEMBER, role_id=ROLE, actor_id=None).timer
    bulk = bulk_job_create(guild_id=OTHER_GUILD, kind="clear", role_id=ROLE, actor_id=None)
    log_record(guild_id=GUILD, kind="cookie.set", text=f"<@{MEMBER}> set to 1")
    return {"active": active.pk, "paused": paused.pk, "bulk": bulk.pk}


def _state() -> tuple:
    """Everything a write could change."""
    commands = list(CustomCommand.objects.order_by("pk").values_list("name", "template", "enabled", "cooldown_seconds"))
    timers = list(TimedRole.objects.order_by("pk").values_list("member_id", "state", "expires_at", "paused_remaining"))
    roles = list(CookieRole.objects.order_by("pk").values_list("role_id", "threshold"))
    balances = list(CookieBalance.objects.order_by("pk").values_list("member_id", "balance"))
    jobs = list(BulkJob.objects.order_by("pk").values_list("guild_id", "kind", "state", "cancel_requested"))
    settings = list(TimerSettings.objects.values_list("on_leave", "warning_minutes")), list(GuildSettings.objects.values())
    return commands, timers, balances, CookieLedger.objects.count(), roles, jobs, settings


def _caller(kind: str, needed: list[str]) -> User:
    user = User.objects.create_user("caller", password="pw-caller-123", is_staff=True, is_superuser=kind == "superuser")
    if kind == "view only":
        user = grant(user, *VIEW_PERMISSIONS)
    elif kind == "all but the needed":
        user = grant(user, *[p for p in all_api_permissions() if p not in needed])
    elif kind == "all permissions":
        user = grant(user, *all_api_permissions())
    return user


def _client(user: User, auth: str) -> Client:
    if auth == "token":
        _, key = api_token_create(user=user, name="matrix", created_by=None)
        return bearer(key)
    client = Client()  # the test client skips CSRF; test_auth checks that sessions need it
    client.force_login(user)
    return client


def _call(client: Client, method: str, url: str, body):
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, content_type="application/json")


def _allowed(kind: str, needed: list[str]) -> bool:
    if kind in ("superuser", "all permissions"):
        return True
    return kind == "view only" and all(".view_" in p for p in needed)


@pytest.mark.parametrize("auth", ["token", "session"])
@pytest.mark.parametrize("kind", CALLERS)
@pytest.mark.parametrize("operation, method, url, body, needed", OPERATIONS, ids=[op[0] for op in OPERATIONS])
def test_it_answers_each_operation_by_the_callers_permissions(world, auth, kind, operation, method, url, body, needed):
    client = _client(_caller(kind, needed), auth)
    before = _state()
    response = _call(client, method, url.format(**world), body)
    if _allowed(kind, needed):
        assert response.status_code in (200, 201, 204), (response.status_code, response.content)
        if method != "get":
            assert _state() != before
    else:
        assert response.status_code == 403, (response.status_code, response.content)
        detail = response.json()["detail"]
        assert all(p in detail for p in needed) and "lacks the permission" in detail, detail
        assert _state() == before


def test_it_checks_the_permission_before_the_body(world):
    """A caller without the permission learns nothing about the body's problems (403, not 422)."""
    client = _client(_caller("view only", []), "token")
    response = client.post(f"{C}/commands", {"name": "no spaces allowed", "template": ""}, content_type="application/json")
    assert response.status_code == 403


def test_it_declares_a_permission_for_every_operation_in_the_schema(api):
    schema = api.get("/api/openapi.json").json()
    declared = {}
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            declared[operation["operationId"]] = operation.get("x-required-permissions")
            assert operation["x-required-permissions"], f"{method.upper()} {path} declares no permission"
            assert set(operation["responses"]) >= {"401", "403", "422"}, f"{method.upper()} {path}"
    assert declared == {op[0]: op[4] for op in OPERATIONS}, "the matrix above must cover every operation"
    for permissions in declared.values():
        for permission in permissions:
            app_label, codename = permission.split(".")
            assert Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists(), permission


def test_it_grants_through_a_group_too(world):
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="timer admins")
    group.permissions.add(*Permission.objects.filter(codename__in=["view_timedrole", "change_timedrole"]))
    user = User.objects.create_user("grouped", password="pw-grouped-123", is_staff=True)
    user.groups.add(group)
    client = _client(user, "token")
    assert client.post(f"/api/v1/timers/{world['active']}/clear").status_code == 200
    assert client.get(f"{C}/commands").status_code == 403


def test_it_declares_the_refusals_each_operation_can_give(api):
    schema = api.get("/api/openapi.json").json()
    responses = {op["operationId"]: set(op["responses"]) for methods in schema["paths"].values() for op in methods.values()}
    assert responses["commands_create"] == {"201", "400", "401", "403", "409", "422"}
    assert responses["commands_get"] == {"200", "401", "403", "404", "422"}
    assert responses["commands_list"] == {"200", "400", "401", "403", "422"}  # 400: a cursor not ours
    assert responses["timers_pause"] == {"200", "400", "401", "403", "404", "409", "422"}
    assert responses["commands_delete"] == {"204", "401", "403", "404", "422"}
    error = schema["components"]["schemas"]["ErrorOut"]
    assert error["properties"]["detail"]["type"] == "string"
