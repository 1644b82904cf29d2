"""`manage.py runbot` against the fake Discord: cookie roles, thanks and the rolling toplists."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django_q.models import OrmQ

from commands.models import CookieBalance, CookieLedger, CookieRole, LedgerReason
from commands.services import cookie_role_add, cookie_set, guild_settings_update
from guilds.models import Member
from tests.bots.conftest import ADMIN, ALICE, BOB, GUILD_ID, no_new_reply, wait_reply
from tests.bots.test_runbot_timers import answer_to

pytestmark = pytest.mark.django_db(transaction=True)
REASON = "Guildhall cookie roles"


def balance(member_id: int) -> int | None:
    return CookieBalance.objects.filter(guild_id=GUILD_ID, member_id=member_id).values_list("balance", flat=True).first()


def role_change(fake, role_id: int, method: str, user_id: int = BOB.id) -> dict:
    return fake.wait_for(
        lambda: next(
            (c for c in fake.role_changes if (c["role_id"], c["method"], c["user_id"]) == (role_id, method, user_id)), None
        ),
        timeout=10,
        message=f"no {method} of role {role_id}",
    )


def cookies_slash(fake, user, options):
    return fake.send_slash(GUILD_ID, fake.guilds[GUILD_ID].text_channel.id, user.id, "cookies", options)


def test_a_give_crossing_the_threshold_adds_the_role_and_a_reset_takes_it(fake, bot, guild):
    regular = guild.role("VIP")
    cookie_role_add(guild_id=GUILD_ID, threshold=10, role_id=regular.id, actor_id=ADMIN.id)
    cookie_set(guild_id=GUILD_ID, member_id=BOB.id, balance=9, actor_id=ADMIN.id)
    wait_reply(fake, ALICE, f"<@{BOB.id}>++", lambda m: m["content"] == f"<@{BOB.id}> has 10 :cookie:'s")
    added = role_change(fake, regular.id, "PUT")
    assert REASON in added["reason"] and "10 cookies" in added["reason"]
    assert regular.id in fake.member_roles(GUILD_ID, BOB.id)
    wait_reply(fake, ADMIN, f"!!cookies reset <@{BOB.id}>", lambda m: "Reset" in m["content"])
    removed = role_change(fake, regular.id, "DELETE")
    assert REASON in removed["reason"] and regular.id not in fake.member_roles(GUILD_ID, BOB.id)
    assert balance(BOB.id) == 0
    assert fake.unhandled == []


def test_highest_mode_swaps_the_lower_role_for_the_higher(fake, bot, guild):
    member_role, vip = guild.role("Member"), guild.role("VIP")
    guild_settings_update(guild_id=GUILD_ID, cookie_roles_keep_all=False)
    cookie_role_add(guild_id=GUILD_ID, threshold=1, role_id=member_role.id, actor_id=ADMIN.id)
    cookie_role_add(guild_id=GUILD_ID, threshold=2, role_id=vip.id, actor_id=ADMIN.id)
    wait_reply(fake, ALICE, f"<@{BOB.id}>++", lambda m: "has 1" in m["content"])
    role_change(fake, member_role.id, "PUT")
    wait_reply(fake, ADMIN, f"<@{BOB.id}>++", lambda m: "has 2" in m["content"])
    role_change(fake, vip.id, "PUT")
    role_change(fake, member_role.id, "DELETE")
    assert set(fake.member_roles(GUILD_ID, BOB.id)) & {member_role.id, vip.id} == {vip.id}
    assert fake.unhandled == []


def test_roles_add_checks_the_caller_and_the_bots_hierarchy_before_promising(fake, bot, guild):
    vip, moderator = guild.role("VIP"), guild.role("Moderator")  # Moderator sits above the bot's role
    refused = answer_to(fake, cookies_slash(fake, ALICE, [("roles", [("add", {"threshold": 10, "role": vip.id})])]))
    assert "Manage Server" in refused["content"]
    above = answer_to(fake, cookies_slash(fake, ADMIN, [("roles", [("add", {"threshold": 10, "role": moderator.id})])]))
    assert "above my highest role" in above["content"], bot.log()
    assert not CookieRole.objects.exists()
    for member, count in ((ALICE.id, 12), (BOB.id, 10), (ADMIN.id, 3)):
        CookieBalance.objects.create(guild_id=GUILD_ID, member_id=member, balance=count)
    done = answer_to(fake, cookies_slash(fake, ADMIN, [("roles", [("add", {"threshold": 10, "role": vip.id})])]))
    assert "from 10 :cookie: on; 2 members at 10+ will be updated" in done["content"]
    assert list(CookieRole.objects.values_list("threshold", "role_id")) == [(10, vip.id)]
    syncs = [q.task["args"][:2] for q in OrmQ.objects.all() if q.task["func"] == "bots.cookie_roles.cookie_roles_resync"]
    assert syncs == [(GUILD_ID, 1)]  # the worker's guild-wide sync, queued once the change committed
    again = answer_to(fake, cookies_slash(fake, ADMIN, [("roles", [("add", {"threshold": 10, "role": vip.id})])]))
    assert "already given from 10 :cookie: on; nothing changed" in again["content"]
    assert sum(q.task["func"] == "bots.cookie_roles.cookie_roles_resync" for q in OrmQ.objects.all()) == 1
    listed = wait_reply(fake, ADMIN, "!!cookies roles", lambda m: "Cookie roles" in m["content"])
    assert f"10+ :cookie: → <@&{vip.id}>" in listed["content"]
    mode = wait_reply(fake, ADMIN, "!!cookies roles mode highest", lambda m: "highest" in m["content"])
    assert "2 members will be updated" in mode["content"]
    wait_reply(fake, ADMIN, "!!cookies roles mode highest", lambda m: "already keep only" in m["content"])
    assert CookieRole.objects.count() == 1
    gone = wait_reply(fake, ADMIN, f"!!cookies roles remove <@&{vip.id}>", lambda m: "no longer" in m["content"])
    assert "it will be taken from 2 members at 10+" in gone["content"] and not CookieRole.objects.exists()
    assert fake.unhandled == []


def test_thanks_give_a_cookie_with_the_usual_reply_under_the_cooldown(fake, bot):
    wait_reply(fake, ALICE, "!!cookies thanks on", lambda m: "Manage Server" in m["content"])
    wait_reply(fake, ADMIN, "!!cookies thanks on", lambda m: "Thanks detection is on" in m["content"])
    wait_reply(fake, ALICE, f"thanks <@{BOB.id}>!", lambda m: m["content"] == f"<@{BOB.id}> has 1 :cookie:'s")
    refused = wait_reply(fake, ALICE, f"thank you <@{BOB.id}>", lambda m: "Slow down" in m["content"])
    assert "again in" in refused["content"]
    # `thanks <@id>++` is one cookie, not two.
    wait_reply(fake, ADMIN, f"ty <@{BOB.id}>++", lambda m: m["content"] == f"<@{BOB.id}> has 2 :cookie:'s")
    reasons = sorted(CookieLedger.objects.filter(receiver_id=BOB.id).values_list("reason", flat=True))
    assert reasons == [LedgerReason.GIVE, LedgerReason.THANKS]
    added = wait_reply(fake, ADMIN, "!!cookies thanks words add Cheers  Mate", lambda m: "Phrases" in m["content"])
    assert "`cheers mate`" in added["content"] and "`thanks`" in added["content"]
    wait_reply(fake, BOB, f"cheers mate <@{ALICE.id}>", lambda m: m["content"] == f"<@{ALICE.id}> has 1 :cookie:'s")
    wait_reply(fake, ADMIN, "!!cookies thanks off", lambda m: "off" in m["content"])
    no_new_reply(fake, ADMIN, f"thanks <@{ALICE.id}>")
    assert fake.unhandled == []


def test_the_weekly_toplist_leaves_out_a_member_who_left_and_shows_my_rank(fake, bot):
    wait_reply(fake, ALICE, f"<@{BOB.id}>++", lambda m: "has 1" in m["content"])
    wait_reply(fake, ADMIN, f"<@{BOB.id}>++", lambda m: "has 2" in m["content"])
    wait_reply(fake, BOB, f"<@{ALICE.id}>++", lambda m: "has 1" in m["content"])
    Member.objects.update_or_create(guild_id=GUILD_ID, user_id=BOB.id, defaults={"username": "bob", "left_at": datetime.now(UTC)})
    answer = answer_to(fake, cookies_slash(fake, ALICE, [("top", {"period": "7d"})]))
    embed = answer["embeds"][0]
    assert embed["title"] == "Cookie leaderboard, last 7 days — page 1"
    assert f"<@{BOB.id}>" not in embed["description"] and f"**#1** <@{ALICE.id}> — 1" in embed["description"]
    assert embed["footer"]["text"] == "Your rank: #1 with 1"
    prefixed = wait_reply(fake, ALICE, "!!cookies top 1 30d", lambda m: bool(m.get("embeds")))
    assert prefixed["embeds"][0]["title"] == "Cookie leaderboard, last 30 days — page 1"
    assert f"<@{BOB.id}>" not in prefixed["embeds"][0]["description"]
    mine = wait_reply(fake, ALICE, "!!cookies", lambda m: "rank" in m["content"])
    assert mine["content"] == f"<@{ALICE.id}> has 1 :cookie:'s (rank #1; last 7 days #1 with 1; last 30 days #1 with 1)"
    assert balance(BOB.id) == 2  # kept
    assert fake.unhandled == []


def test_a_take_right_after_the_crossing_give_takes_the_role_back(fake, bot, guild):
    # The take's message may show Bob's roles from before the bot gave him the role: the bot
    # corrects them by what it set itself, so the role does not stay behind.
    regular = guild.role("VIP")
    cookie_role_add(guild_id=GUILD_ID, threshold=10, role_id=regular.id, actor_id=ADMIN.id)
    cookie_set(guild_id=GUILD_ID, member_id=BOB.id, balance=9, actor_id=ADMIN.id)
    wait_reply(fake, ALICE, f"<@{BOB.id}>++", lambda m: "has 10" in m["content"])
    wait_reply(fake, ADMIN, f"<@{BOB.id}>--", lambda m: "has 9" in m["content"])
    role_change(fake, regular.id, "DELETE")
    fake.wait_for(lambda: regular.id not in fake.member_roles(GUILD_ID, BOB.id) or None, timeout=10, message="role kept")
    assert [c["method"] for c in fake.role_changes if c["role_id"] == regular.id] == ["PUT", "DELETE"]
    assert fake.unhandled == []
