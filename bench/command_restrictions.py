"""What a custom command's role and channel restrictions add to a command hit, in the bot's own code.

    .venv/bin/python bench/command_restrictions.py

The check runs on every hit of a cached command (bots/cogs/custom_commands.py): for an
unrestricted command it is one ``is None`` test; for a restricted one, ``refusal_for``
against the author's role ids as discord.py parsed them from the message (a SnowflakeList)
and the channel. Timed per call (best of 5 runs of 200,000), beside the empty call that
every row pays, so the difference is the check's own cost; the hit itself costs about
1 ms of the bot's time (bench/message_path.py), so the rows read as shares of that.
"""

from __future__ import annotations

import timeit

import _setup  # noqa: F401  (Django set-up)
from _setup import print_table
from discord.utils import SnowflakeList

from bots.command_access import refusal_for
from bots.guild_cache import CachedCommand
from commands.restrictions import restriction_compile

CALLS = 200_000


class Author:
    """A message author as discord.py builds it without a member cache: the role ids it carried."""

    def __init__(self, role_ids: list[int]) -> None:
        self._roles = SnowflakeList(role_ids)


class Channel:
    id = 5
    parent_id = None


def per_call(statement) -> float:
    return min(timeit.repeat(statement, number=CALLS, repeat=5)) / CALLS


def main() -> None:
    free = CachedCommand(1, "free", None, True, 0, "member", None)
    limited = CachedCommand(2, "vip", None, True, 0, "member", restriction_compile([22, 99], [77], [5, 6]))
    many = CachedCommand(3, "many", None, True, 0, "member", restriction_compile(list(range(1000, 1025)), [77], [5]))
    author, busy_author = Author([11, 22, 33, 44, 55]), Author(list(range(2000, 2040)) + [99])
    empty = per_call(lambda: None)
    cases = [
        ("unrestricted (one `is None`)", lambda: free.restriction is not None),
        ("3 lists, allowed, 5 roles", lambda: refusal_for(limited, author, Channel)),
        ("3 lists, allowed, 41 roles", lambda: refusal_for(limited, busy_author, Channel)),
        ("25 allowed roles, refused, 5 roles", lambda: refusal_for(many, author, Channel)),
    ]
    rows = []
    for label, statement in cases:
        cost = max(per_call(statement) - empty, 0.0)
        rows.append([label, f"{cost * 1e9:.0f}", f"{cost / 1e-3 * 100:.3f}%"])
    print_table("Command restriction check per hit", ["case", "ns per check", "of a 1 ms hit"], rows)


if __name__ == "__main__":
    main()
