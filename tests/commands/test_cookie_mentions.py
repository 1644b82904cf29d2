"""Which `<@id>++` / `<@id>--` in a message count: the sign must follow the mention on its line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.services import cookie_mentions_parse

LINE_BREAKS = ["\n", "\r\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize(
    "content",
    [
        "thanks <@123>\n-- Bob",
        "<@123>\n\n ++",
        "<@123>\n++",
        "<@123> \n --",
        "<@!123>\r\n++",
        "hi <@123>\u2028++",
    ],
)
def test_it_ignores_a_sign_on_a_later_line(content):
    assert cookie_mentions_parse(content, 5) == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("<@123> ++", [(123, 1)]),
        ("<@123>++", [(123, 1)]),
        ("<@!123>++", [(123, 1)]),
        ("<@123>\t--", [(123, -1)]),
        ("<@123>\u00a0++", [(123, 1)]),  # a no-break space is still the same line
        ("first line\n<@123>++ second line", [(123, 1)]),
        ("<@1>\n-- sig\n<@2> ++", [(2, 1)]),
    ],
)
def test_it_still_reads_a_sign_on_the_mentions_line(content, expected):
    assert cookie_mentions_parse(content, 5) == expected


@pytest.mark.parametrize("content", ["<@١٢٣>++", "<@𝟏𝟐𝟑>++", "<@１２３>++"])
def test_it_reads_only_ascii_digit_mentions(content):
    assert cookie_mentions_parse(content, 5) == []


@settings(max_examples=300, deadline=None)
@given(
    member_id=st.integers(min_value=1, max_value=2**63 - 1),
    before=st.text(alphabet=" \t", max_size=3),
    after=st.text(alphabet=" \t", max_size=3),
    line_break=st.sampled_from(LINE_BREAKS),
    sign=st.sampled_from(["++", "--"]),
    bang=st.booleans(),
)
def test_a_line_break_between_mention_and_sign_never_counts(member_id, before, after, line_break, sign, bang):
    mention = f"<@{'!' if bang else ''}{member_id}>"
    assert cookie_mentions_parse(f"{mention}{before}{line_break}{after}{sign}", 5) == []
    assert cookie_mentions_parse(f"{mention}{before}{after}{sign}", 5) == [(member_id, 1 if sign == "++" else -1)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["<@", "<@!", ">", "1", "2", "+", "-", " ", "\n", "x"]), max_size=40).map("".join))
def test_every_counted_change_has_its_sign_on_the_mentions_line(content):
    for member_id, delta in cookie_mentions_parse(content, 25):
        sign = "++" if delta > 0 else "--"
        assert any(f"{member_id}>{sign}" in line.replace(" ", "") for line in content.splitlines()), (content, member_id, delta)
