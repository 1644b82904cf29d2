"""manage.py import_praetbot: mongoexport files of Praetbot's `commands` and `cookie` collections."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Sum

from commands.command_templates import RenderContext, compile_template
from commands.models import CookieBalance, CookieLedger, CustomCommand, LedgerReason
from commands.services import command_create, cookie_give
from tests.conftest import GUILD

pytestmark = pytest.mark.django_db(transaction=True)

COMMANDS = [
    {"_id": "hello", "respond": "hi there {friend}"},
    {"_id": "greet", "value": "return 'Hello ' + user.name + ', you said ' + args.join(' ') + '!';"},
    {"_id": "Echo", "value": "return `${args[0]} in ${channel.id}`"},
    {"_id": "fetchy", "value": "const r = fetch('https://x'); return r;"},
    {"_id": "bad name!", "respond": "renamed"},
    {"_id": "help", "respond": "shadows a built-in"},
    {"_id": "BAD_NAME?", "respond": "collides after cleaning"},
]


def write_lines(path, docs, extra_lines=()):
    path.write_text("\n".join([json.dumps(d) for d in docs] + list(extra_lines)) + "\n")
    return str(path)


def run(**options) -> str:
    out = StringIO()
    call_command("import_praetbot", guild=GUILD, stdout=out, **options)
    return out.getvalue()


def render(name: str, **ctx) -> str:
    command = CustomCommand.objects.get(guild_id=GUILD, name=name)
    values = {"user_id": 42, "user_name": "alice", "channel_id": 7, "guild_name": "G", **ctx}
    return compile_template(command.template).render(RenderContext(**values))


def test_it_imports_replies_translates_plain_javascript_and_disables_the_rest(tmp_path):
    output = run(commands=write_lines(tmp_path / "commands.json", COMMANDS))
    assert render("hello") == "<@42> hi there {friend}"  # braces of the text stay literal
    assert render("greet", args=("a", "b")) == "Hello alice, you said a b!"
    assert render("echo", args=("x",)) == "x in 7"
    fetchy = CustomCommand.objects.get(guild_id=GUILD, name="fetchy")
    assert not fetchy.enabled and fetchy.imported_source == COMMANDS[3]["value"]
    assert "Praetbot" in fetchy.note and "`=`" in fetchy.note  # the reason, shown in the admin
    assert CustomCommand.objects.get(guild_id=GUILD, imported_from="praetbot:bad name!").name == "bad_name_"
    assert CustomCommand.objects.get(guild_id=GUILD, imported_from="praetbot:BAD_NAME?").name == "bad_name_-2"
    assert CustomCommand.objects.get(guild_id=GUILD, imported_from="praetbot:help").name == "help-2"
    assert "renamed `bad name!` to `bad_name_`" in output and "renamed `help` to `help-2`" in output
    assert "commands: 7 imported, 0 updated, 0 unchanged, 0 refused" in output


def test_it_reads_a_json_array_in_canonical_extended_json(tmp_path):
    path = tmp_path / "cookie.json"
    docs = [
        {"_id": {"$oid": "5f1d7a0e9c1b2a3d4e5f6071"}, "id": "200000000000000001", "name": "a", "cookies": {"$numberInt": "12"}},
        {
            "_id": {"$oid": "5f1d7a0e9c1b2a3d4e5f6072"},
            "id": {"$numberLong": "200000000000000002"},
            "cookies": {"$numberLong": "3"},
        },
        {"_id": {"$oid": "5f1d7a0e9c1b2a3d4e5f6073"}, "id": "200000000000000003", "cookies": {"$numberDouble": "4.0"}},
    ]
    path.write_text("  \n" + json.dumps(docs, indent=2))
    output = run(cookies=str(path))
    balances = dict(CookieBalance.objects.filter(guild_id=GUILD).values_list("member_id", "balance"))
    assert balances == {200000000000000001: 12, 200000000000000002: 3, 200000000000000003: 4}
    assert "cookies: 3 imported" in output


def test_it_keeps_the_ledger_summing_to_the_balance_and_is_idempotent(tmp_path):
    member = 200000000000000001
    path = write_lines(
        tmp_path / "cookie.json", [{"_id": {"$oid": "5f1d7a0e9c1b2a3d4e5f6071"}, "id": str(member), "cookies": 10}]
    )
    run(cookies=path)
    rows = CookieLedger.objects.filter(guild_id=GUILD, receiver_id=member)
    assert list(rows.values_list("delta", "reason")) == [(10, LedgerReason.IMPORT)]
    again = run(cookies=path)
    assert "0 imported, 0 updated, 1 unchanged" in again and "Nothing to change" in again
    assert rows.count() == 1
    cookie_give(guild_id=GUILD, giver_id=300000000000000001, receiver_id=member)  # a give made here since
    path = write_lines(
        tmp_path / "cookie.json", [{"_id": {"$oid": "5f1d7a0e9c1b2a3d4e5f6071"}, "id": str(member), "cookies": 15}]
    )
    assert "1 updated" in run(cookies=path)
    balance = CookieBalance.objects.get(guild_id=GUILD, member_id=member).balance
    assert balance == 16 == rows.aggregate(s=Sum("delta"))["s"]


def test_it_reports_bad_documents_by_line_and_still_imports_the_good_ones(tmp_path):
    commands = write_lines(
        tmp_path / "commands.json",
        [{"_id": "ok", "respond": "fine"}, {"_id": "nothing"}, {"_id": 5, "respond": "x"}, {"_id": "ok", "respond": "again"}],
        extra_lines=['{"_id": "broken", "respond": ', "[1, 2]", '{"_id": "js", "value": 12}'],
    )
    cookies = write_lines(
        tmp_path / "cookie.json",
        [
            {"id": "200000000000000001", "cookies": 2},
            {"id": "not-a-number", "cookies": 1},
            {"id": "200000000000000002"},
            {"id": "200000000000000003", "cookies": "lots"},
            {"id": "200000000000000001", "cookies": 9},
        ],
    )
    output = run(commands=commands, cookies=cookies)
    assert CustomCommand.objects.filter(guild_id=GUILD).count() == 1
    assert CookieBalance.objects.get(guild_id=GUILD).balance == 2
    for expected in (
        "refused commands line 2: neither `value`",
        "refused commands line 3: `_id` (the command's name) is missing or not text",
        "refused commands line 4: a second command called `ok`",
        "refused commands line 5: not valid JSON",
        "refused commands line 6: not a document",
        "refused commands line 7: `value` is not text",
        "refused cookies line 2: `id` (the member's Discord id) is not a whole number",
        "refused cookies line 3: `cookies` is missing",
        "refused cookies line 4: `cookies` is not a whole number",
        "refused cookies line 5: member 200000000000000001 appears twice",
        "commands: 1 imported, 0 updated, 0 unchanged, 6 refused",
        "cookies: 1 imported, 0 updated, 0 unchanged, 4 refused",
    ):
        assert expected in output, expected


def test_it_runs_twice_without_changing_anything_and_leaves_local_commands_alone(tmp_path):
    command_create(guild_id=GUILD, name="hello", template="ours", author_id=None)
    path = write_lines(tmp_path / "commands.json", COMMANDS)
    run(commands=path)
    assert CustomCommand.objects.get(guild_id=GUILD, name="hello").template == "ours"
    assert CustomCommand.objects.get(guild_id=GUILD, imported_from="praetbot:hello").name == "hello-2"
    before = list(CustomCommand.objects.order_by("pk").values())
    output = run(commands=path)
    assert "commands: 0 imported, 0 updated, 7 unchanged, 0 refused" in output and "Nothing to change" in output
    assert list(CustomCommand.objects.order_by("pk").values()) == before
    changed = [dict(COMMANDS[0], respond="new text")] + COMMANDS[1:]
    assert "1 updated" in run(commands=write_lines(tmp_path / "commands.json", changed))
    assert render("hello-2") == "<@42> new text"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("return user.name.toUpperCase()", "only a single `return`"),
        ("return 'a'; return 'b'", "only a single `return`"),
        ("return args[12]", "args[0] to args[9]"),
        ("return process.env.TOKEN", "`process`"),
        ("return `${user.name + 1}`", "more than a plain value"),
        ("return 1 + 1", "expected name"),
        ("return ''", "empty reply"),
        ("return args.join(',')", "separator"),
    ],
)
def test_it_refuses_javascript_that_is_not_a_plain_reply(tmp_path, body, reason):
    run(commands=write_lines(tmp_path / "commands.json", [{"_id": "js", "value": body}]))
    command = CustomCommand.objects.get(guild_id=GUILD, name="js")
    assert not command.enabled and command.imported_source == body
    assert reason in command.note


def test_it_shows_the_kept_body_and_the_reason_on_the_admin_page(tmp_path, client):
    from django.contrib.auth.models import User
    from django.urls import reverse

    run(commands=write_lines(tmp_path / "commands.json", [COMMANDS[3]]))
    command = CustomCommand.objects.get(guild_id=GUILD, name="fetchy")
    client.force_login(User.objects.create_user("staff", password="pw-staff-123", is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:commands_customcommand_change", args=[command.pk])).content.decode()
    assert "const r = fetch(&#x27;https://x&#x27;); return r;" in page  # read-only, as imported
    assert command.note in page.replace("&#x27;", "'").replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    assert 'name="imported_source"' not in page
