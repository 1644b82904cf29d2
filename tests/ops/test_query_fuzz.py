"""No query parameter of any page answers 500: every GET page, admin list, export and
leaderboard, as a superuser and anonymously, with the values that used to crash them
(``²`` passes ``str.isdigit()`` and then ``int()`` raises) and other nasty ones."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import resolve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.services import command_alias_add, command_create, cookie_give, guild_settings_update
from tests.ops.test_security import _sample_urls
from timers.services import allowed_role_add, report_set, timer_set, timer_settings_update

GUILD = 557
NASTY = [
    "²",
    "١٢",
    "𝟏𝟐",
    "１２",
    "-1",
    "9" * 5000,
    "1e3",
    "",
    "\x00",
    "' OR 1=1 --<script>",
    f"{GUILD} member:² name:\x00",
    "../../etc/passwd",
]
BASE_PARAMS = ["q", "p", "o", "e", "all", "page", "member", "guild", "_to_field", "_popup", "_changelist_filters", "cursor"]


def _params(url: str | None = None) -> list[str]:
    """The parameters a page may read: the common ones, plus its model's fields and filters on an admin page."""
    names = set(BASE_PARAMS)
    admins = admin.site._registry.values()
    if url is not None:
        model_admin = getattr(resolve(url).func, "model_admin", None)
        admins = [model_admin] if model_admin is not None else []
    for model_admin in admins:
        names.update(field.name for field in model_admin.model._meta.fields)
        names.update(f for f in model_admin.list_filter if isinstance(f, str))
    return sorted(names)


def _get_urls() -> list[str]:
    # The API has its own schema fuzzing (schemathesis); everything else is here.
    return [url for url in _sample_urls() if not url.startswith("/api/")]


@pytest.fixture
def filled(db):
    command_create(guild_id=GUILD, name="hello", template="Hi {user}!", author_id=1)
    command_alias_add(guild_id=GUILD, name="hello", alias="hi")
    cookie_give(guild_id=GUILD, giver_id=1, receiver_id=2)
    guild_settings_update(guild_id=GUILD, prefix="?", public_leaderboard=True)
    timer_settings_update(guild_id=GUILD, admin_role_id=9)
    allowed_role_add(guild_id=GUILD, role_id=7, actor_id=1)
    report_set(guild_id=GUILD, role_id=7, channel_id=3, interval_minutes=60, actor_id=1)
    timer_set(guild_id=GUILD, member_id=2, role_id=7, duration=timedelta(hours=2), actor_id=1)


@pytest.fixture
def clients(filled):
    superuser = Client(raise_request_exception=False)
    superuser.force_login(User.objects.create_user("root", password="pw-root-12345", is_staff=True, is_superuser=True))
    return {"superuser": superuser, "anonymous": Client(raise_request_exception=False)}


def _errors(client: Client, url: str, query: dict[str, str]) -> list[str]:
    response = client.get(url, query)
    if response.status_code == 405:
        return []  # a POST-only view
    # A crash is a 500; /health/ready's 503 ("fail") is an answer, given by design.
    return [f"{url} {query!r} → 500"] if response.status_code == 500 else []


@pytest.mark.parametrize("who", ["superuser", "anonymous"])
def test_every_parameter_of_every_get_page_survives_nasty_values(clients, who):
    client, urls, every_param = clients[who], _get_urls(), _params()
    assert any(u.startswith("/admin/commands/customcommand/") for u in urls) and "/leaderboard/1/" in urls
    failures: list[str] = []
    for url in urls:
        for value in NASTY:  # every parameter of every page at once
            failures += _errors(client, url, dict.fromkeys(every_param, value))
        for name in _params(url):  # each parameter the page may read, alone, with the value that used to crash
            failures += _errors(client, url, {name: "²"})
    assert failures == [], "\n".join(f[:300] for f in failures[:30])


def test_the_public_leaderboard_and_admin_search_survive_unicode_digits(clients):
    anonymous, superuser = clients["anonymous"], clients["superuser"]
    assert anonymous.get(f"/leaderboard/{GUILD}/", {"page": "²"}).status_code == 200
    for path in ("/admin/commands/customcommand/", "/admin/timers/timedrole/", "/admin/commands/cookieledger/"):
        refused = superuser.get(path, {"q": "²"})
        assert refused.status_code == 200, path
    assert superuser.get("/admin/ops/exports/commands.csv", {"guild": "²"}).status_code == 400


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(max_size=30), name=st.sampled_from(["q", "page", "member", "guild", "p", "o"]))
def test_arbitrary_text_in_the_common_parameters_never_answers_500(clients, value, name):
    superuser = clients["superuser"]
    for url in (
        "/admin/commands/customcommand/",
        "/admin/commands/cookiebalance/",
        "/admin/timers/timedrole/",
        "/admin/timers/timerevent/",
        f"/admin/ops/leaderboard/{GUILD}/",
        "/admin/ops/leaderboard/",
        "/admin/ops/exports/timers.jsonl",
        f"/leaderboard/{GUILD}/",
    ):
        assert _errors(superuser, url, {name: value}) == []
