"""The activity log as the channel shows it: one line per entry, runs of alike entries folded into one
line, and the lines packed into as few messages as Discord's embed limits allow.

A burst of expiries is hundreds of entries that differ only in the member ("<@m>'s <@&r> timer ran
out; the role was removed"): those become one line per role and outcome listing the members, so 500
expiries take two or three messages instead of ten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from guilds.models import LogEntry

EMBED_CHARS = 4000  # an embed's description holds 4,096
MESSAGE_CHARS = 5800  # a message's embeds hold 6,000 characters together
EMBEDS_PER_MESSAGE = 10
FOLD_AT = 3  # this many alike entries in a batch are folded into one line
FOLDED_CHARS = 2800  # a folded line is split so that two fill a message (two embeds)


@dataclass
class LogMessage:
    """One message to post: its embeds' descriptions and the entries it carries."""

    descriptions: list[str] = field(default_factory=list)
    entry_ids: list[int] = field(default_factory=list)

    @property
    def chars(self) -> int:
        return sum(len(d) for d in self.descriptions)


def _stamp(entry: LogEntry) -> str:
    # Discord shows the time in each reader's own zone.
    return f"<t:{int(entry.created_at.timestamp())}:t> " if entry.created_at else ""


def _mark(entry: LogEntry) -> str:
    return "⚠️ " if entry.failed else ""


def _about_member(entry: LogEntry) -> str | None:
    """The text after "<@member>'s " when the entry is about its member that way, else None."""
    head = f"<@{entry.member_id}>'s "
    return entry.text[len(head) :] if entry.member_id and entry.text.startswith(head) else None


def log_lines(entries: list[LogEntry], name: Callable[[str], str]) -> list[tuple[list[int], str]]:
    """``(entry ids, line)`` in entry order; ``name`` turns a text's mentions into names."""
    alike: dict[tuple[str, str, bool], list[LogEntry]] = {}
    for entry in entries:
        rest = _about_member(entry)
        if rest is not None:
            alike.setdefault((entry.kind, rest, entry.failed), []).append(entry)
    folded = {id(e): key for key, group in alike.items() if len(group) >= FOLD_AT for e in group}
    lines: list[tuple[list[int], str]] = []
    done: set[tuple[str, str, bool]] = set()
    for entry in entries:
        key = folded.get(id(entry))
        if key is None:
            lines.append(([entry.pk], f"{_stamp(entry)}{_mark(entry)}{name(entry.text)}"))
        elif key not in done:
            done.add(key)
            lines.extend(_folded(alike[key], key[1], name))
    return lines


def _folded(group: list[LogEntry], rest: str, name: Callable[[str], str]) -> list[tuple[list[int], str]]:
    """One line (or a few, if long) for alike entries: "12:00 ⚠️ 137 × @VIP timer ran out…: Alice, <@2>, …"."""
    first = group[0]
    head = f"{_stamp(first)}{_mark(first)}**{len(group)} ×** {name(rest)}: "
    lines: list[tuple[list[int], str]] = []
    ids: list[int] = []
    who: list[str] = []
    for entry in group:
        label = name(f"<@{entry.member_id}>")
        if who and len(head) + sum(len(w) + 2 for w in who) + len(label) > FOLDED_CHARS:
            lines.append((ids, head + ", ".join(who)))
            ids, who = [], []
            head = f"{_stamp(first)}{_mark(first)}{name(rest)} (continued): "
        ids.append(entry.pk)
        who.append(label)
    lines.append((ids, head + ", ".join(who)))
    return lines


def log_pack(lines: list[tuple[list[int], str]]) -> list[LogMessage]:
    """Pack ``(entry ids, line)`` in order into as few messages as the embed limits allow."""
    messages: list[LogMessage] = []
    current = LogMessage()
    description = ""
    for entry_ids, line in lines:
        line = line[: EMBED_CHARS - 1]
        grown = f"{description}\n{line}" if description else line
        if len(grown) <= EMBED_CHARS and current.chars + len(grown) <= MESSAGE_CHARS:
            description = grown
        else:
            if description:
                current.descriptions.append(description)
            if len(current.descriptions) >= EMBEDS_PER_MESSAGE or current.chars + len(line) > MESSAGE_CHARS:
                messages.append(current)
                current = LogMessage()
            description = line
        current.entry_ids.extend(entry_ids)
    if description:
        current.descriptions.append(description)
    if current.entry_ids:
        messages.append(current)
    return messages
