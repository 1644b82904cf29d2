"""Thanks detection: ``thanks @user``, ``thank you @user``, ``ty @user`` give a cookie under the ``++`` rules.

Only for guilds that turn it on (``GuildSettings.thanks_enabled``), with the guild's phrases
(``thanks_words``; the defaults when empty). The bot calls ``thanks_mentions_parse`` only
after a cheap test (a mention and one of the phrases somewhere in the text), so a plain
message never reaches the regex.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

DEFAULT_THANKS_WORDS = ("thanks", "thank you", "thank u", "thx", "ty", "tysm")
# Mentions right after the phrase on the same line, separated by spaces, commas or "and".
_MENTIONS = r"((?:<@!?[0-9]{1,20}>(?:[ \t]*(?:,|and|&)?[ \t]*))+)"
_MENTION_ID = re.compile(r"<@!?([0-9]{1,20})>")


def thanks_words(configured: Sequence[str] | None) -> tuple[str, ...]:
    """The phrases in use: the guild's, or the defaults when it set none."""
    return tuple(configured) if configured else DEFAULT_THANKS_WORDS


@lru_cache(maxsize=256)
def _pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    phrases = "|".join(r"[ \t]+".join(map(re.escape, w.split())) for w in sorted(words, key=len, reverse=True))
    # A whole phrase (not "city <@1>"), then optional punctuation, then the mentions.
    return re.compile(r"(?<![\w@])(?:" + phrases + r")(?![\w])[ \t]*[,:!.-]*[ \t]*(?:to[ \t]+)?" + _MENTIONS, re.IGNORECASE)


def thanks_might_match(content: str, words: tuple[str, ...]) -> bool:
    """The cheap test before the regex: a mention and a phrase's first word somewhere in the text."""
    if "<@" not in content:
        return False
    lowered = content.lower()
    return any(word.split()[0] in lowered for word in words)


def thanks_mentions_parse(content: str, words: tuple[str, ...], cap: int) -> list[int]:
    """The members thanked in ``content`` (first time each, at most ``cap``), skipping mentions followed by ++/--."""
    if cap < 1 or not thanks_might_match(content, words):
        return []
    found: list[int] = []
    for match in _pattern(words).finditer(content):
        for mention in _MENTION_ID.finditer(match.group(1)):
            member_id = int(mention.group(1))
            after = content[match.start(1) + mention.end() :].lstrip(" \t")
            if after.startswith(("++", "--")) or member_id in found or not 0 < member_id < 2**63:
                continue  # a `<@id>++` is the ++ parser's
            found.append(member_id)
            if len(found) >= cap:
                return found
    return found
