"""Every model's admin pages open for staff and are closed to everyone else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from commands.models import CookieBalance, CookieRole, CustomCommand
from commands.services import command_alias_add, command_create, cookie_give, guild_settings_update
from guilds.models import Channel, Guild, LogSettings, Member, Role
from guilds.services.log import log_record
from timers.models import BulkJob, RoleReport
from timers.services import allowed_role_add, timer_set, timer_settings_update
from timers.services.reconcile import reconcile_claim, reconcile_finish

GUILD = 555


@pytest.fixture
def filled(db):
    command_create(guild_id=GUILD, name="hello", template="Hi {user}!", author_id=1)
    command_alias_add(guild_id=GUILD, name="hello", alias="hi")
    cookie_give(guild_id=GUILD, giver_id=1, receiver_id=2)
    guild_settings_update(guild_id=GUILD, prefix="?")
    timer_settings_update(guild_id=GUILD, admin_role_id=9)
    allowed_role_add(guild_id=GUILD, role_id=7, actor_id=1)
    timer_set(guild_id=GUILD, member_id=2, role_id=7, duration=timedelta(hours=2), actor_id=1)
    RoleReport.objects.create(guild_id=GUILD, role_id=7, channel_id=3, next_run_at=timezone.now())
    reconcile_claim(guild_id=GUILD, owner="bot")
    reconcile_finish(guild_id=GUILD, owner="bot", checked=1, restored=0, paused=0, away=0, untracked=0)
    CookieRole.objects.create(guild_id=GUILD, threshold=10, role_id=8, added_by_id=1)
    BulkJob.objects.create(guild_id=GUILD, kind="add", role_id=7, seconds=3600, requested_by_id=1, total=3, done_count=1)
    Guild.objects.create(guild_id=GUILD, name="My Server")
    Role.objects.create(guild_id=GUILD, role_id=7, name="Booster")
    Channel.objects.create(guild_id=GUILD, channel_id=3, name="general")
    Member.objects.create(guild_id=GUILD, user_id=2, username="alice")
    LogSettings.objects.create(guild_id=GUILD, channel_id=3, set_by_id=1)
    log_record(guild_id=GUILD, kind="timer.set", text="<@2>'s <@&7> timer set by <@1>", actor_id=1, member_id=2, role_id=7)


@pytest.fixture
def staff_client(client, filled):
    user = User.objects.create_user("staff", password="pw-staff-123", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def _model_urls():
    for model in admin.site._registry:
        if model._meta.app_label in ("commands", "timers", "guilds"):
            yield model


@pytest.mark.parametrize("model", list(_model_urls()), ids=lambda m: m.__name__)
def test_it_opens_the_list_and_detail_pages_for_staff(staff_client, model):
    info = (model._meta.app_label, model._meta.model_name)
    listing = staff_client.get(reverse("admin:%s_%s_changelist" % info))
    assert listing.status_code == 200
    obj = model.objects.first()
    assert obj is not None, f"no {model.__name__} row to open"
    detail = staff_client.get(reverse("admin:%s_%s_change" % info, args=[obj.pk]))
    assert detail.status_code == 200
    searched = staff_client.get(reverse("admin:%s_%s_changelist" % info), {"q": str(GUILD)})
    assert searched.status_code == 200


@pytest.mark.parametrize("model", list(_model_urls()), ids=lambda m: m.__name__)
def test_it_sends_anonymous_users_to_the_login_page(client, filled, model):
    url = reverse("admin:%s_%s_changelist" % (model._meta.app_label, model._meta.model_name))
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_it_refuses_a_logged_in_member_who_is_not_staff(client, filled):
    client.force_login(User.objects.create_user("member", password="pw-member-123"))
    response = client.get(reverse("admin:commands_customcommand_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_it_saves_a_command_through_the_rules(staff_client):
    url = reverse("admin:commands_customcommand_add")
    bad = staff_client.post(
        url,
        {
            "guild_id": GUILD,
            "name": "evil",
            "template": "{0.__class__}",
            "cooldown_seconds": 0,
            "cooldown_scope": "member",
            "enabled": "on",
            "aliases-TOTAL_FORMS": 0,
            "aliases-INITIAL_FORMS": 0,
        },
    )
    assert bad.status_code == 200 and "not a placeholder" in bad.content.decode()
    assert not CustomCommand.objects.filter(name="evil").exists()
    good = staff_client.post(
        url,
        {
            "guild_id": GUILD,
            "name": "Wave",
            "template": "waves at {0}",
            "cooldown_seconds": 5,
            "cooldown_scope": "channel",
            "enabled": "on",
            "aliases-TOTAL_FORMS": 0,
            "aliases-INITIAL_FORMS": 0,
        },
    )
    assert good.status_code == 302, good.content.decode()[:2000]
    saved = CustomCommand.objects.get(guild_id=GUILD, name="wave")
    assert (saved.cooldown_seconds, saved.cooldown_scope) == (5, "channel")


def test_it_keeps_cookie_balances_read_only(staff_client):
    balance = CookieBalance.objects.get(guild_id=GUILD, member_id=2)
    url = reverse("admin:commands_cookiebalance_change", args=[balance.pk])
    staff_client.post(url, {"balance": 999})
    balance.refresh_from_db()
    assert balance.balance == 1


def test_it_saves_guild_settings_through_the_rules(staff_client):
    from commands.models import GuildSettings

    row = GuildSettings.objects.get(guild_id=GUILD)
    url = reverse("admin:commands_guildsettings_change", args=[row.pk])
    form = {"prefix": "!! x", "cookie_pair_cooldown_seconds": 60, "cookie_daily_cap": 50, "cookie_message_cap": 5}
    refused = staff_client.post(url, form)
    assert refused.status_code == 200 and "no spaces" in refused.content.decode()
    row.refresh_from_db()
    assert row.prefix == "?"
    saved = staff_client.post(url, {**form, "prefix": "$"})
    assert saved.status_code == 302
    row.refresh_from_db()
    assert row.prefix == "$"
