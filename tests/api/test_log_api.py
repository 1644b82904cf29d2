"""/api/v1/guilds/{guild}/log: the activity log, newest first, narrowed by kind and failed, with names."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from guilds.models import LogEntry
from guilds.services.directory import DirectoryBatch, GuildSeen, MemberSeen, RoleSeen, directory_record
from guilds.services.log import log_record
from ops.api_tokens import api_token_create
from tests.api.conftest import GUILD, OTHER_GUILD, bearer, grant, post
from timers.services import timer_set

pytestmark = pytest.mark.django_db
LOG = f"/api/v1/guilds/{GUILD}/log"
ALICE, ADMIN, BOOSTER = 200000000000000001, 200000000000000009, 300000000000000001


def test_it_lists_what_was_done_newest_first_with_names(api):
    directory_record(
        batch=DirectoryBatch(
            guilds=[GuildSeen(GUILD, "My Server")],
            roles=[RoleSeen(GUILD, BOOSTER, "Booster")],
            members=[MemberSeen(GUILD, ALICE, "alice", "Alice"), MemberSeen(GUILD, ADMIN, "boss")],
        )
    )
    timer_set(guild_id=GUILD, member_id=ALICE, role_id=BOOSTER, duration=timedelta(hours=1), actor_id=ADMIN)
    log_record(guild_id=GUILD, kind="cookie.reset", text=f"<@{ALICE}>'s cookies reset", actor_id=ADMIN, member_id=ALICE)
    log_record(guild_id=OTHER_GUILD, kind="cookie.reset", text="elsewhere")
    items = api.get(LOG).json()["items"]
    assert [i["kind"] for i in items] == ["cookie.reset", "timer.set"]
    timer = items[1]
    assert timer["text"].startswith(f"<@{ALICE}>'s <@&{BOOSTER}> timer")
    assert timer["text_named"].startswith("Alice (@alice)'s @Booster timer") and "boss (@boss)" in timer["text_named"]
    assert (timer["guild_name"], timer["actor_name"], timer["member_name"], timer["role_name"]) == (
        "My Server",
        "boss (@boss)",
        "Alice (@alice)",
        "@Booster",
    )
    assert timer["actor_id"] == str(ADMIN) and timer["failed"] is False and timer["posted_at"] is None


def test_it_narrows_by_kind_and_failed_a_page_at_a_time(api):
    for n in range(6):
        log_record(guild_id=GUILD, kind="timer.expire_failed" if n % 2 else "timer.expire", text=f"#{n}", failed=bool(n % 2))
    log_record(guild_id=GUILD, kind="command.create", text="made", failed=False)
    failures = api.get(LOG, {"failed": "true"}).json()["items"]
    assert [i["text"] for i in failures] == ["#5", "#3", "#1"]
    assert [i["text"] for i in api.get(LOG, {"kind": "timer.expire"}).json()["items"]] == ["#4", "#2", "#0"]
    assert api.get(LOG, {"kind": "timer.expire", "failed": "true"}).json()["items"] == []
    assert len(api.get(LOG, {"failed": "false"}).json()["items"]) == 4
    first = api.get(LOG, {"limit": 4}).json()
    rest = api.get(LOG, {"limit": 4, "cursor": first["next_cursor"]}).json()
    assert [i["text"] for i in first["items"] + rest["items"]] == ["made", "#5", "#4", "#3", "#2", "#1", "#0"]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"kind": "DROP TABLE"}, 422),
        ({"kind": "timer"}, 422),
        ({"failed": "maybe"}, 422),
        ({"limit": 0}, 422),
        ({"cursor": "not-ours"}, 400),
    ],
)
def test_it_refuses_bad_filters(api, query, status):
    log_record(guild_id=GUILD, kind="cookie.set", text="x")
    response = api.get(LOG, query)
    assert response.status_code == status, response.content
    assert response.json()["detail"]


def test_a_page_costs_two_queries_for_names(api):
    for n in range(30):
        log_record(guild_id=GUILD, kind="cookie.set", text=f"<@{ALICE + n}> set to 1 by <@{ADMIN}>", member_id=ALICE + n)
    with CaptureQueriesContext(connection) as queries:
        assert len(api.get(LOG, {"limit": 30}).json()["items"]) == 30
    assert sum(1 for q in queries.captured_queries if "guilds_member" in q["sql"]) == 2


def test_it_needs_view_logentry_and_is_read_only():
    log_record(guild_id=GUILD, kind="cookie.set", text="x")
    plain = grant(User.objects.create_user("timers-only", password="pw-caller-123", is_staff=True), "timers.view_timedrole")
    _, key = api_token_create(user=plain, name="log", created_by=None)
    refused = bearer(key).get(LOG)
    assert refused.status_code == 403 and "guilds.view_logentry" in refused.json()["detail"]
    grant(plain, "guilds.view_logentry")
    assert bearer(key).get(LOG).status_code == 200
    assert post(bearer(key), LOG, {}).status_code == 405  # no writes: the log is what happened
    assert LogEntry.objects.count() == 1
