"""Cookie leaderboards on the web: a staff page per guild, and an optional public one.

The public page exists only for a guild whose settings turn it on
(``GuildSettings.public_leaderboard``); it shows ranks, member ids and counts, nothing
else, and only its first pages (each page is an index range scan plus one count).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from commands.selectors import (
    PERIOD_NAMES,
    PERIODS,
    cookie_leaderboard,
    cookie_leaderboard_position,
    cookie_standing,
    leaderboard_is_public,
)
from config.numbers import parse_int
from guilds.selectors import directory_names

STAFF_PAGE_SIZE = 50
PUBLIC_PAGE_SIZE = 25
PUBLIC_MAX_PAGE = 100
STAFF_MAX_PAGE = 1_000_000  # 50 million rows in: past any guild, and an OFFSET every database takes
MAX_ID = 2**63 - 1


def _period(raw: str | None) -> str:
    """The toplist asked for: all time unless ``?period=`` names another."""
    return raw if raw in PERIODS else "all"


def _periods(base: str, current: str) -> list[dict]:
    """The period switch: each toplist's link, the current one marked."""
    return [
        {
            "key": key,
            "name": PERIOD_NAMES[key],
            "url": base if key == "all" else f"{base}?period={key}",
            "current": key == current,
        }
        for key in PERIODS
    ]


def _page_url(base: str, period: str, page: int) -> str:
    return f"{base}?page={page}" if period == "all" else f"{base}?period={period}&page={page}"


def _page(raw: str | None, last: int = STAFF_MAX_PAGE) -> int:
    """The page asked for, at most ``last``; anything that isn't a number 1 or more in digits 0-9 is page 1."""
    return min(parse_int(raw, minimum=1) or 1, last)


@staff_member_required
@require_GET
def leaderboard_staff(request, guild_id: int | None = None):
    """A guild's cookie leaderboard in the admin; ``?member=<id>`` jumps to that member's page."""
    if not request.user.has_perm("commands.view_cookiebalance"):
        raise PermissionDenied
    if guild_id is None:
        picked = parse_int(request.GET.get("guild"), minimum=1, maximum=MAX_ID)
        if picked is not None:
            return redirect("leaderboard:staff", guild_id=picked)
        context = {**admin.site.each_context(request), "title": "Cookie leaderboard", "guild_id": None}
        return TemplateResponse(request, "commands/leaderboard_staff.html", context)
    if guild_id > MAX_ID:
        raise Http404
    page = _page(request.GET.get("page"))
    period = _period(request.GET.get("period"))
    member = parse_int(request.GET.get("member"), minimum=1, maximum=MAX_ID)
    standing = None
    if member is not None:
        standing = cookie_standing(guild_id=guild_id, member_id=member, period=period)
        position = cookie_leaderboard_position(guild_id=guild_id, member_id=member, period=period)
        if position is not None:
            page = position // STAFF_PAGE_SIZE + 1
    standings = cookie_leaderboard(guild_id=guild_id, page=page, per_page=STAFF_PAGE_SIZE, period=period)
    names = directory_names(guild_ids=[guild_id], members=[(guild_id, row.member_id) for row in standings])
    base = reverse("leaderboard:staff", args=[guild_id])
    context = {
        **admin.site.each_context(request),
        "title": f"Cookie leaderboard of {names.guild(guild_id) or f'guild {guild_id}'}, {PERIOD_NAMES[period]}",
        "guild_id": guild_id,
        "rows": [(row, names.members.get((guild_id, row.member_id), "")) for row in standings],
        "standing": standing,
        "member": member,
        "page": page,
        "period": period,
        "period_name": PERIOD_NAMES[period],
        "periods": _periods(base, period),
        "standings": standings,
        "previous_url": _page_url(base, period, page - 1) if page > 1 else None,
        "next_url": _page_url(base, period, page + 1) if len(standings) == STAFF_PAGE_SIZE else None,
        "public_enabled": leaderboard_is_public(guild_id=guild_id),
    }
    return TemplateResponse(request, "commands/leaderboard_staff.html", context)


@require_GET
def leaderboard_public(request, guild_id: int):
    """The public, read-only leaderboard: 404 unless the guild turned it on."""
    if guild_id > MAX_ID or not leaderboard_is_public(guild_id=guild_id):
        raise Http404("No public leaderboard here.")
    page = _page(request.GET.get("page"), PUBLIC_MAX_PAGE)
    period = _period(request.GET.get("period"))
    standings = cookie_leaderboard(guild_id=guild_id, page=page, per_page=PUBLIC_PAGE_SIZE, period=period)
    base = reverse("leaderboard-public", args=[guild_id])
    more = len(standings) == PUBLIC_PAGE_SIZE and page < PUBLIC_MAX_PAGE
    context = {
        "guild_id": guild_id,
        "standings": standings,
        "page": page,
        "period_name": PERIOD_NAMES[period],
        "periods": _periods(base, period),
        "previous_url": _page_url(base, period, page - 1) if page > 1 else None,
        "next_url": _page_url(base, period, page + 1) if more else None,
    }
    response = TemplateResponse(request, "commands/leaderboard_public.html", context)
    response["Cache-Control"] = "public, max-age=60"
    return response
