"""Who may use a custom command, and where: allowed roles, denied roles, allowed channels.

The lists are stored on the command (``CustomCommand.allowed_role_ids`` …) and compiled
once, when a bot loads the guild, into a :class:`CommandRestriction` of frozensets; the
check then reads only the message's or interaction's own data (the author's role ids, the
channel id), so a refusal costs no query. A command with no restriction compiles to None,
so the usual case costs one ``is None`` test. Denied beats allowed. Built-in commands are
never restricted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from commands.errors import CustomCommandError
from config.numbers import is_int

MAX_RESTRICTION_IDS = 25  # per list: Discord's own permission overwrites stay far below this in practice
MAX_ID = 2**63 - 1
FIELDS = ("allowed_role_ids", "denied_role_ids", "allowed_channel_ids")
_WHAT = {"allowed_role_ids": "allowed role", "denied_role_ids": "denied role", "allowed_channel_ids": "allowed channel"}
_SHOWN = 3  # ids named in a refusal before "…"


class RestrictionInvalid(CustomCommandError):
    pass


@dataclass(frozen=True, slots=True)
class CommandRestriction:
    """A command's restrictions as sets; ``refusal`` says why a caller may not use it (None = may)."""

    allowed_roles: frozenset[int]
    denied_roles: frozenset[int]
    allowed_channels: frozenset[int]

    def refusal(self, role_ids: Iterable[int], channel_id: int, parent_id: int | None = None) -> str | None:
        """Why the member with ``role_ids`` may not use the command in ``channel_id`` (a thread's
        ``parent_id`` counts as its channel), or None. Denied roles first: denied beats allowed."""
        if self.denied_roles and not self.denied_roles.isdisjoint(role_ids):
            return "isn't available to " + _roles(self.denied_roles & set(role_ids))
        if self.allowed_roles and self.allowed_roles.isdisjoint(role_ids):
            return "is only for members with " + _roles(self.allowed_roles, joiner=" or ")
        if self.allowed_channels and channel_id not in self.allowed_channels and parent_id not in self.allowed_channels:
            return "works only in " + _listed("<#{}>", self.allowed_channels, " or ")
        return None


def _roles(ids: Iterable[int], joiner: str = ", ") -> str:
    return _listed("<@&{}>", ids, joiner)


def _listed(shape: str, ids: Iterable[int], joiner: str) -> str:
    ordered = sorted(ids)
    shown = joiner.join(shape.format(i) for i in ordered[:_SHOWN])
    return shown + (f" (and {len(ordered) - _SHOWN} more)" if len(ordered) > _SHOWN else "")


def restriction_compile(
    allowed_role_ids: object, denied_role_ids: object, allowed_channel_ids: object
) -> CommandRestriction | None:
    """The stored lists as a CommandRestriction, or None when there is nothing to check.

    Tolerant of what a row may hold after a hand edit or an old import: anything that is not
    a Discord id is left out rather than taking the guild's commands down.
    """
    allowed, denied, channels = (_ids(value) for value in (allowed_role_ids, denied_role_ids, allowed_channel_ids))
    if not (allowed or denied or channels):
        return None
    return CommandRestriction(allowed, denied, channels)


def _ids(value: object) -> frozenset[int]:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(i for i in value if is_int(i, minimum=1, maximum=MAX_ID))


def restriction_ids_clean(field: str, value: object, *, guild_id: int) -> list[int]:
    """A restriction list as it is stored (ids, sorted, no repeats), or RestrictionInvalid saying why.

    Ids may come as numbers or strings of digits (the API, forms). The guild's own id is its
    @everyone role, which every member holds: refused, since it means "unrestricted".
    """
    what = _WHAT[field]
    if not isinstance(value, (list, tuple)):
        raise RestrictionInvalid(f"The {what}s are a list of ids.")
    cleaned: set[int] = set()
    for item in value:
        number = int(item) if isinstance(item, str) and item.isascii() and item.isdigit() else item
        if not isinstance(number, int) or not is_int(number, minimum=1, maximum=MAX_ID):
            raise RestrictionInvalid(f"{str(item)[:30]!r} is not a Discord id; an {what} is given by its id.")
        if number == guild_id and field != "allowed_channel_ids":
            raise RestrictionInvalid("@everyone is every member: to let anyone use the command, remove its role restrictions.")
        cleaned.add(number)
    if len(cleaned) > MAX_RESTRICTION_IDS:
        raise RestrictionInvalid(f"A command takes at most {MAX_RESTRICTION_IDS} {what}s.")
    return sorted(cleaned)


def restriction_lines(*, allowed_role_ids: list[int], denied_role_ids: list[int], allowed_channel_ids: list[int]) -> list[str]:
    """The restrictions as chat shows them (`/command show`); empty when there are none."""
    lines = []
    if allowed_role_ids:
        lines.append("only for: " + ", ".join(f"<@&{i}>" for i in allowed_role_ids))
    if denied_role_ids:
        lines.append("never for: " + ", ".join(f"<@&{i}>" for i in denied_role_ids))
    if allowed_channel_ids:
        lines.append("only in: " + ", ".join(f"<#{i}>" for i in allowed_channel_ids))
    return lines


@dataclass(frozen=True)
class RestrictionEdit:
    """A change to a command's restriction lists, from chat: applied by ``command_update`` to what
    the row holds under its lock, so that two changes made at once both count."""

    add: tuple[tuple[str, int], ...] = ()
    remove: tuple[tuple[str, int], ...] = ()
    clear: bool = False

    @classmethod
    def allow_role(cls, role_id: int) -> RestrictionEdit:
        """Allow a role (and stop denying it)."""
        return cls(add=(("allowed_role_ids", role_id),), remove=(("denied_role_ids", role_id),))

    @classmethod
    def deny_role(cls, role_id: int) -> RestrictionEdit:
        """Deny a role (and stop allowing it)."""
        return cls(add=(("denied_role_ids", role_id),), remove=(("allowed_role_ids", role_id),))

    @classmethod
    def allow_channel(cls, channel_id: int) -> RestrictionEdit:
        return cls(add=(("allowed_channel_ids", channel_id),))

    @classmethod
    def lift_role(cls, role_id: int) -> RestrictionEdit:
        """Neither allow nor deny a role any more."""
        return cls(remove=(("allowed_role_ids", role_id), ("denied_role_ids", role_id)))

    @classmethod
    def lift_channel(cls, channel_id: int) -> RestrictionEdit:
        return cls(remove=(("allowed_channel_ids", channel_id),))

    @classmethod
    def lift_all(cls) -> RestrictionEdit:
        return cls(clear=True)

    def apply(self, current: dict[str, list[int]]) -> dict[str, list]:
        """The lists after the change (only those it touches)."""
        fields = set(FIELDS) if self.clear else {f for f, _ in self.add + self.remove}
        after: dict[str, list] = {f: [] if self.clear else list(current.get(f) or []) for f in fields}
        for f, value in self.remove:
            after[f] = [i for i in after[f] if i != value]
        for f, value in self.add:
            if value not in after[f]:
                after[f].append(value)
        return after


def restrictions_clean(given: Mapping[str, object], *, guild_id: int) -> dict[str, list[int]]:
    """The lists given (None = not given) as stored, or RestrictionInvalid; for the services."""
    return {f: restriction_ids_clean(f, value, guild_id=guild_id) for f, value in given.items() if value is not None}


def restrictions_assign(command, lists: dict[str, list[int]], edit: RestrictionEdit | None, *, guild_id: int) -> list[str]:
    """Set a command's restriction lists (replaced by ``lists``, then changed by ``edit``) and
    return the fields that changed; the edit's result is checked like a list given whole."""
    after = dict(lists)
    if edit is not None:
        current = {f: after.get(f, getattr(command, f)) for f in FIELDS}
        after.update(restrictions_clean(edit.apply(current), guild_id=guild_id))
    changed = []
    for f, value in after.items():
        if sorted(getattr(command, f) or []) != value:
            setattr(command, f, value)
            changed.append(f)
    return changed
