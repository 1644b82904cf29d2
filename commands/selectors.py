"""Reads for custom commands and cookies."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from commands.models import CommandAlias, CookieBalance, CookieLedger, CookieRole, CookieWindow, CustomCommand, GuildSettings
from commands.restrictions import FIELDS as RESTRICTION_FIELDS
from commands.restrictions import restriction_lines
from commands.services.cookie_roles import CookieRolePlan, cookie_role_plan_for
from config.database import lag_tolerant_alias
from guilds import models as directory
from guilds.models import Member

LEADERBOARD_PAGE_SIZE = 10
MAX_SEARCH_RESULTS = 25
MAX_NAMES_LISTED = 400
MAX_TEMPLATE_SHOWN = 1500


def command_get(*, guild_id: int, name: str) -> CustomCommand | None:
    """The command called ``name`` or aliased so, or None."""
    name = (name or "").strip().lower()
    command = CustomCommand.objects.filter(guild_id=guild_id, name=name).first()
    if command is None:
        alias = CommandAlias.objects.select_related("command").filter(guild_id=guild_id, name=name).first()
        command = alias.command if alias is not None else None
    return command


def command_list(*, guild_id: int) -> QuerySet[CustomCommand]:
    """The guild's commands by name."""
    return CustomCommand.objects.filter(guild_id=guild_id).order_by("name")


def command_search(*, guild_id: int, query: str) -> QuerySet[CustomCommand]:
    """Commands whose name or reply contains ``query`` (name matches first)."""
    query = (query or "").strip()[:100]
    found = CustomCommand.objects.filter(guild_id=guild_id).filter(Q(name__icontains=query) | Q(template__icontains=query))
    name_first = Case(When(name__icontains=query, then=Value(0)), default=Value(1), output_field=IntegerField())
    return found.order_by(name_first, "name")[:MAX_SEARCH_RESULTS]


def command_aliases(*, command: CustomCommand) -> list[str]:
    return list(command.aliases.order_by("name").values_list("name", flat=True))


def command_names(*, guild_id: int, query: str | None = None, enabled_only: bool = False) -> QuerySet:
    """The names of the guild's commands (``query`` narrows to a search), as a values list."""
    rows = command_search(guild_id=guild_id, query=query) if query else command_list(guild_id=guild_id)
    if enabled_only:
        rows = rows.filter(enabled=True)
    return rows.values_list("name", flat=True)


def command_names_page(*, guild_id: int, query: str | None = None, limit: int = MAX_NAMES_LISTED) -> list[str]:
    """Up to ``limit`` names for a chat listing."""
    return list(command_names(guild_id=guild_id, query=query)[:limit])


def command_names_listing(*, guild_id: int, limit: int) -> tuple[list[str], int]:
    """Up to ``limit`` names of the guild's enabled commands, and how many there are in all (for `help`)."""
    rows = command_names(guild_id=guild_id, enabled_only=True)
    return list(rows[:limit]), rows.count()


def command_template_block(template: str, limit: int = MAX_TEMPLATE_SHOWN) -> str:
    """A reply template shown as written, in a code block nobody can close early."""
    return "```\n" + template.replace("```", "`\u200b``")[:limit] + "\n```"


def command_describe(*, guild_id: int, name: str) -> str | None:
    """A command's details as chat shows them (`/command show` and `help <name>`), or None."""
    command = command_get(guild_id=guild_id, name=name)
    if command is None:
        return None
    aliases = command_aliases(command=command)
    lines = [
        f"**{command.name}** — {'enabled' if command.enabled else 'disabled'}; used {command.usage_count} times",
        f"author: {f'<@{command.author_id}>' if command.author_id else 'unknown'}"
        + (f"; last edited <t:{int(command.edited_at.timestamp())}:R>" if command.edited_at else ""),
    ]
    if aliases:
        lines.append("aliases: " + ", ".join(f"`{a}`" for a in aliases))
    if command.cooldown_seconds:
        lines.append(f"cooldown: {command.cooldown_seconds}s per {command.cooldown_scope}")
    if command.note:
        lines.append(f"note: {command.note}")
    restricted = restriction_lines(
        allowed_role_ids=command.allowed_role_ids,
        denied_role_ids=command.denied_role_ids,
        allowed_channel_ids=command.allowed_channel_ids,
    )
    lines += restricted or ["anyone may use it, anywhere"]
    lines.append(command_template_block(command.template))
    return "\n".join(lines)


def command_raw(*, guild_id: int, name: str, limit: int = MAX_TEMPLATE_SHOWN) -> str | None:
    """A command's reply template as written (`/command raw`), or None."""
    command = command_get(guild_id=guild_id, name=name)
    return None if command is None else command_template_block(command.template, limit)


def commands_for_cache(*, guild_id: int) -> QuerySet:
    """What a bot keeps of each of the guild's commands, as tuples (streamed in chunks)."""
    return CustomCommand.objects.filter(guild_id=guild_id).values_list(
        "pk", "name", "template", "enabled", "cooldown_seconds", "cooldown_scope", *RESTRICTION_FIELDS
    )


def command_aliases_for_cache(*, guild_id: int) -> QuerySet:
    """``(alias, command pk)`` for every alias in the guild."""
    return CommandAlias.objects.filter(guild_id=guild_id).values_list("name", "command_id")


def cookie_balance(*, guild_id: int, member_id: int) -> int:
    """A member's count (0 when they never had any)."""
    found = CookieBalance.objects.filter(guild_id=guild_id, member_id=member_id).values_list("balance", flat=True).first()
    return found or 0


PERIODS = ("all", "7d", "30d")  # all time (the balance) and the rolling windows (commands.CookieWindow)
PERIOD_NAMES = {"all": "all time", "7d": "last 7 days", "30d": "last 30 days"}


@dataclass(frozen=True)
class Standing:
    member_id: int
    balance: int  # the count for the period: the balance for all time, the window's total otherwise
    rank: int | None  # None for a member with no row (never given or taken) or who left the server


def _ranked(guild_id: int, period: str) -> tuple[QuerySet, str]:
    """The period's rows of members still in the guild, and the field they rank by.

    Members who left (``guilds.Member.left_at``, a partial index of a few rows) are left out
    with one NOT IN, so a page stays a range of the ranking index.
    """
    left = Member.objects.filter(guild_id=guild_id, left_at__isnull=False).values("user_id")
    if period == "all":
        rows: QuerySet = CookieBalance.objects.using(lag_tolerant_alias()).filter(guild_id=guild_id)
        field = "balance"
    elif period in PERIODS:
        # A window at zero (a give and a take) is no place on the toplist.
        rows = CookieWindow.objects.using(lag_tolerant_alias()).filter(guild_id=guild_id, period=period).exclude(total=0)
        field = "total"
    else:
        raise ValueError(f"unknown period {period!r}")
    return rows.exclude(member_id__in=left), field


def _value(guild_id: int, member_id: int, period: str) -> int | None:
    rows: QuerySet
    if period == "all":
        rows = CookieBalance.objects.filter(guild_id=guild_id, member_id=member_id).values_list("balance", flat=True)
    else:
        rows = CookieWindow.objects.filter(guild_id=guild_id, period=period, member_id=member_id).values_list("total", flat=True)
    return rows.first()


def _has_left(guild_id: int, member_id: int) -> bool:
    return Member.objects.filter(guild_id=guild_id, user_id=member_id, left_at__isnull=False).exists()


def cookie_standing(*, guild_id: int, member_id: int, period: str = "all") -> Standing:
    """A member's count and rank in ``period`` (1 = most cookies; ties share a rank)."""
    value = _value(guild_id, member_id, period)
    if value is None or _has_left(guild_id, member_id):
        return Standing(member_id=member_id, balance=value or 0, rank=None)
    rows, field = _ranked(guild_id, period)
    return Standing(member_id=member_id, balance=value, rank=rows.filter(**{f"{field}__gt": value}).count() + 1)


def cookie_standings(*, guild_id: int, member_id: int) -> dict[str, Standing]:
    """A member's standing in every period (what `/cookies` shows)."""
    return {period: cookie_standing(guild_id=guild_id, member_id=member_id, period=period) for period in PERIODS}


def cookie_leaderboard(
    *, guild_id: int, page: int = 1, per_page: int = LEADERBOARD_PAGE_SIZE, period: str = "all"
) -> list[Standing]:
    """One page of the guild's toplist for ``period``, highest first (an index range scan)."""
    page = max(1, page)
    ranked, field = _ranked(guild_id, period)
    rows = list(
        ranked.order_by(f"-{field}", "member_id").values_list("member_id", field)[(page - 1) * per_page : page * per_page]
    )
    if not rows:
        return []
    # Ranks share ties: the first row's rank is counted; the rest follow from the page.
    first_rank = ranked.filter(**{f"{field}__gt": rows[0][1]}).count() + 1
    standings: list[Standing] = []
    for position, (member_id, balance) in enumerate(rows):
        if position and balance == standings[-1].balance:
            rank = standings[-1].rank
        else:
            rank = first_rank if position == 0 else (page - 1) * per_page + position + 1
        standings.append(Standing(member_id=member_id, balance=balance, rank=rank))
    return standings


def cookie_ledger(*, guild_id: int, member_id: int | None = None) -> QuerySet[CookieLedger]:
    """Ledger rows, newest first, optionally those received by one member."""
    rows = CookieLedger.objects.filter(guild_id=guild_id)
    if member_id is not None:
        rows = rows.filter(receiver_id=member_id)
    return rows.order_by("-created_at", "-pk")


def cookie_leaderboard_position(*, guild_id: int, member_id: int, period: str = "all") -> int | None:
    """How many rows come before the member in the toplist's order (ties by member id), or None.

    Unlike the rank, this says which page the member is on when a tie spans pages.
    """
    value = _value(guild_id, member_id, period)
    if value is None or _has_left(guild_id, member_id):
        return None
    ranked, field = _ranked(guild_id, period)
    ahead = Q(**{f"{field}__gt": value}) | Q(**{field: value, "member_id__lt": member_id})
    return ranked.filter(ahead).count()


def cookie_roles_list(*, guild_id: int) -> list[CookieRole]:
    """The guild's cookie roles, lowest threshold first."""
    return list(CookieRole.objects.filter(guild_id=guild_id).order_by("threshold", "role_id"))


def cookie_role_plan(*, guild_id: int, member_id: int) -> CookieRolePlan | None:
    """The cookie roles the member should hold now (their current balance), or None when the guild has none."""
    keep_all = GuildSettings.objects.filter(guild_id=guild_id).values_list("cookie_roles_keep_all", flat=True).first()
    balance = cookie_balance(guild_id=guild_id, member_id=member_id)
    return cookie_role_plan_for(guild_id=guild_id, balance=balance, keep_all=True if keep_all is None else keep_all)


def leaderboard_is_public(*, guild_id: int) -> bool:
    """Whether the guild publishes its leaderboard at /leaderboard/<guild id>/."""
    return GuildSettings.objects.filter(guild_id=guild_id, public_leaderboard=True).exists()


CHANNEL_CATEGORY = 4  # Discord's channel type of a category: no messages in it


def restriction_choices(*, guild_id: int, keep: Iterable[int] = ()) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """The guild's roles and channels as the directory knows them, ``(id, "@name")`` by name, for
    picking a command's restrictions; ids in ``keep`` (chosen already) are listed even when
    deleted. Empty lists: the directory holds nothing of the guild yet."""
    keep = set(keep)
    roles = directory.Role.objects.filter(Q(deleted_at__isnull=True) | Q(role_id__in=keep), guild_id=guild_id)
    channels = directory.Channel.objects.filter(Q(deleted_at__isnull=True) | Q(channel_id__in=keep), guild_id=guild_id)
    role_rows = [
        (role_id, ("" if name.startswith("@") else "@") + name + (" (deleted)" if gone else ""))
        for role_id, name, gone in roles.exclude(role_id=guild_id).values_list("role_id", "name", "deleted_at")
    ]
    channel_rows = [
        (channel_id, f"#{name}" + (" (deleted)" if gone else ""))
        for channel_id, name, gone in channels.exclude(kind=CHANNEL_CATEGORY).values_list("channel_id", "name", "deleted_at")
    ]
    return sorted(role_rows, key=lambda row: row[1].lower()), sorted(channel_rows, key=lambda row: row[1].lower())


def cookie_roles_resync_rows(*, guild_id: int, floor: int, after: tuple[int, int] | None) -> QuerySet[CookieBalance]:
    """Members at ``floor`` cookies or more who have not left, highest first (the cookie_leaderboard
    index), after the ``(balance, member id)`` cursor."""
    rows = CookieBalance.objects.filter(guild_id=guild_id, balance__gte=floor)
    if after is not None:
        rows = rows.filter(Q(balance__lt=after[0]) | Q(balance=after[0], member_id__gt=after[1]))
    left = Member.objects.filter(guild_id=guild_id, left_at__isnull=False).values("user_id")
    return rows.exclude(member_id__in=left).order_by("-balance", "member_id")


def cookie_roles_resync_page(*, guild_id: int, floor: int, after: tuple[int, int] | None, size: int) -> list[tuple[int, int]]:
    """One page of :func:`cookie_roles_resync_rows` as ``(member id, balance)``."""
    rows = cookie_roles_resync_rows(guild_id=guild_id, floor=floor, after=after)
    return list(rows.values_list("member_id", "balance")[:size])


def cookie_roles_reach(*, guild_id: int, floor: int) -> int:
    """How many members (not left) have ``floor`` cookies or more: those a guild-wide sync visits."""
    left = Member.objects.filter(guild_id=guild_id, left_at__isnull=False).values("user_id")
    return CookieBalance.objects.filter(guild_id=guild_id, balance__gte=floor).exclude(member_id__in=left).count()
