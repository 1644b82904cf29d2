"""Reply templates: every placeholder, the refusals at save time and the output's limits."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.command_templates import (
    MAX_OUTPUT_LENGTH,
    CompiledTemplate,
    RenderContext,
    compile_template,
    defuse_mentions,
)
from commands.errors import TemplateInvalid
from config.errors import ApplicationError

CTX = RenderContext(
    user_id=222333444555666777,
    user_name="Ada",
    channel_id=888999000111222333,
    guild_name="The Guildhall",
    args=("first", "second", "third"),
    cookies=7,
)


def render(template: str, ctx: RenderContext = CTX, seed: int = 0) -> str:
    return compile_template(template).render(ctx, rng=random.Random(seed))


def refusal(template: str) -> str:
    with pytest.raises(TemplateInvalid) as excinfo:
        compile_template(template)
    assert isinstance(excinfo.value, ApplicationError)
    return str(excinfo.value)


# --- placeholders ------------------------------------------------------------------


def test_it_renders_user_as_a_mention():
    assert render("hi {user}") == "hi <@222333444555666777>"


def test_it_renders_user_name_and_id():
    assert render("{user.name} is {user.id}") == "Ada is 222333444555666777"


def test_it_renders_channel_as_a_channel_mention():
    assert render("in {channel}") == "in <#888999000111222333>"


def test_it_renders_guild_name():
    assert render("welcome to {guild}!") == "welcome to The Guildhall!"


def test_it_renders_args_joined_by_spaces():
    assert render("you said: {args}") == "you said: first second third"


def test_it_renders_args_as_empty_without_args():
    ctx = RenderContext(user_id=1, user_name="a", channel_id=2, guild_name="g")
    assert render("[{args}]", ctx) == "[]"


def test_it_renders_positional_args():
    assert render("{0}/{1}/{2}") == "first/second/third"


def test_it_renders_missing_positional_args_as_empty():
    assert render("<{3}><{9}>") == "<><>"


def test_it_renders_all_ten_positional_args():
    ctx = RenderContext(user_id=1, user_name="a", channel_id=2, guild_name="g", args=tuple(f"a{i}" for i in range(10)))
    assert render("".join("{%d}" % i for i in range(10)), ctx) == "a0a1a2a3a4a5a6a7a8a9"


def test_it_renders_cookies():
    assert render("you have {cookies} cookies") == "you have 7 cookies"


def test_it_renders_unknown_cookies_as_zero():
    ctx = RenderContext(user_id=1, user_name="a", channel_id=2, guild_name="g", cookies=None)
    assert render("{cookies}", ctx) == "0"


def test_it_marks_templates_that_use_cookies():
    assert compile_template("{cookies}").uses_cookies is True
    assert compile_template("{user} {args}").uses_cookies is False


def test_it_accepts_spaces_inside_a_placeholder():
    assert render("{ user.name }") == "Ada"


def test_it_picks_one_random_option():
    template = compile_template("{random: a | b | c}")
    seen = {template.render(CTX, rng=random.Random(seed)) for seed in range(200)}
    assert seen == {"a", "b", "c"}


def test_it_picks_the_same_random_option_for_the_same_seed():
    template = compile_template("pick: {random: red | green | blue | yellow}")
    assert template.render(CTX, rng=random.Random(42)) == template.render(CTX, rng=random.Random(42))
    assert template.render(CTX, rng=random.Random(42)) == "pick: " + random.Random(42).choice(["red", "green", "blue", "yellow"])


def test_it_keeps_random_options_as_plain_text():
    assert render("{random: only one}") == "only one"


def test_it_treats_doubled_braces_as_literal_braces():
    assert render("{{user}} is {user.name}, }} and {{") == "{user} is Ada, } and {"


def test_it_renders_plain_text_unchanged():
    assert render("just text: 100% ok") == "just text: 100% ok"


# --- refusals ------------------------------------------------------------------------


def test_it_refuses_attribute_access():
    message = refusal("{0.__class__}")
    assert "{0.__class__}" in message
    assert "not a placeholder" in message


def test_it_refuses_indexing():
    assert "not a placeholder" in refusal("{args[0]}")


def test_it_refuses_format_specs():
    message = refusal("{0:>99999}")
    assert "`{0}`" in message
    assert "formatting" in message


def test_it_refuses_conversions():
    message = refusal("{user!r}")
    assert "`{user}`" in message
    assert "conversions" in message


def test_it_refuses_conversions_on_random():
    assert "conversion" in refusal("{random!r: a | b}")


def test_it_refuses_unknown_placeholders():
    message = refusal("hello {unknown}")
    assert "`{unknown}`" in message
    assert "{user}" in message  # says what is allowed


def test_it_shortens_a_long_unknown_name_in_the_message():
    message = refusal("{" + "x" * 500 + "}")
    assert "x" * 41 not in message
    assert "…" in message


def test_it_refuses_empty_braces():
    assert "not a placeholder" in refusal("{}")


@pytest.mark.parametrize("template", ["{user", "user}", "{", "}", "a { b", "{{user}"])
def test_it_refuses_unbalanced_braces(template):
    message = refusal(template)
    assert "unmatched" in message
    assert "{{" in message  # tells how to write a literal brace


@pytest.mark.parametrize("template", ["", "   ", "\n\t"])
def test_it_refuses_an_empty_template(template):
    assert "can't be empty" in refusal(template)


def test_it_refuses_a_template_over_2000_characters():
    message = refusal("x" * 2001)
    assert "2001" in message
    assert "2000" in message


def test_it_accepts_a_template_of_exactly_2000_characters():
    assert render("x" * 2000) == "x" * 2000


@pytest.mark.parametrize("template", ["{random}", "{random:}", "{random:   }", "{random: | | }"])
def test_it_refuses_random_without_options(template):
    assert "needs options" in refusal(template)


def test_it_refuses_placeholders_inside_random_options():
    assert "plain text" in refusal("{random: {user} | b}")


def test_it_refuses_too_many_random_options():
    assert "at most" in refusal("{random: " + " | ".join(str(i) for i in range(51)) + "}")


# --- output limits and mentions ----------------------------------------------------


def test_it_caps_output_at_2000_characters():
    ctx = RenderContext(user_id=1, user_name="a", channel_id=2, guild_name="g", args=("y" * 5000,))
    out = render("{args}", ctx)
    assert len(out) == MAX_OUTPUT_LENGTH
    assert out == "y" * MAX_OUTPUT_LENGTH


def test_it_caps_output_built_from_many_placeholders():
    template = "{user}" * 333  # 1998 characters of template, far more of output
    out = render(template)
    assert len(out) == MAX_OUTPUT_LENGTH


def test_it_defuses_everyone_and_here_in_template_text():
    out = render("@everyone and @here look")
    assert "@everyone" not in out
    assert "@here" not in out
    assert "everyone" in out and "here" in out


def test_it_defuses_everyone_and_here_in_args():
    ctx = RenderContext(user_id=1, user_name="a", channel_id=2, guild_name="g", args=("@everyone", "@here"))
    for template in ("{args}", "{0} {1}", "say {0}!"):
        out = render(template, ctx)
        assert "@everyone" not in out
        assert "@here" not in out


def test_it_defuses_mentions_split_between_text_and_args():
    ctx = RenderContext(user_id=1, user_name="a", channel_id=2, guild_name="g", args=("everyone", "ere"))
    out = render("@{0} @h{1}", ctx)
    assert "@everyone" not in out
    assert "@here" not in out


def test_it_defuses_mentions_in_names_and_random_options():
    ctx = RenderContext(user_id=1, user_name="@everyone", channel_id=2, guild_name="@here")
    for seed in range(10):
        out = render("{user.name} {guild} {random: @everyone | @here}", ctx, seed=seed)
        assert "@everyone" not in out
        assert "@here" not in out


def test_it_defuses_mentions_with_a_zero_width_space():
    assert defuse_mentions("@everyone @here") == "@\u200beveryone @\u200bhere"


# --- properties ----------------------------------------------------------------------

_TRICKY_PIECES = [
    "{",
    "}",
    "{{",
    "}}",
    ":",
    "!",
    ".",
    "[",
    "]",
    "|",
    " ",
    "0",
    "9",
    "r",
    "s",
    "a",
    "user",
    "user.name",
    "random",
    "args",
    "cookies",
    "__class__",
    ">99999",
    "@everyone",
    "@here",
    "@",
    "everyone",
    "here",
    "\u200b",
    "é",
    "\n",
]
tricky_text = st.lists(st.sampled_from(_TRICKY_PIECES), max_size=40).map("".join)
template_text = st.one_of(st.text(), tricky_text, st.text(alphabet="{}:!.[]|0r a@", max_size=40))


@settings(max_examples=300, deadline=None, database=None)
@given(text=template_text)
def test_it_compiles_or_refuses_any_text(text):
    try:
        compiled = compile_template(text)
    except ApplicationError as exc:
        assert str(exc)  # a message the member can read
    else:
        assert isinstance(compiled, CompiledTemplate)


_VALID_PIECES = st.one_of(
    st.sampled_from(
        [
            "{user}",
            "{user.name}",
            "{user.id}",
            "{channel}",
            "{guild}",
            "{args}",
            "{cookies}",
            *("{%d}" % i for i in range(10)),
            "{random: @everyone | @here | x}",
            "{random: a | b}",
            "{{",
            "}}",
            "@everyone",
            "@here",
            "@",
            "everyone",
            "here",
            "@every",
            "one",
        ]
    ),
    st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=30),
)
valid_template = st.lists(_VALID_PIECES, min_size=1, max_size=60).map("".join)
mention_bits = st.sampled_from(["@everyone", "@here", "@", "everyone", "here", "ere", "@h", "x" * 300, "y" * 2100])
arg_text = st.one_of(st.text(max_size=300), mention_bits, st.just("z" * 2100))  # long enough to need the cap


@settings(max_examples=300, deadline=None, database=None)
@given(
    text=st.one_of(valid_template, template_text),
    args=st.lists(arg_text, max_size=12),
    user_name=arg_text,
    guild_name=arg_text,
    cookies=st.one_of(st.none(), st.integers(min_value=-(10**15), max_value=10**15)),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_it_renders_any_compiled_template_safely(text, args, user_name, guild_name, cookies, seed):
    try:
        compiled = compile_template(text)
    except ApplicationError:
        return
    ctx = RenderContext(
        user_id=123456789012345678,
        user_name=user_name,
        channel_id=987654321098765432,
        guild_name=guild_name,
        args=tuple(args),
        cookies=cookies,
    )
    out = compiled.render(ctx, rng=random.Random(seed))
    assert isinstance(out, str)
    assert len(out) <= MAX_OUTPUT_LENGTH
    assert "@everyone" not in out
    assert "@here" not in out
