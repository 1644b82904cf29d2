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

from commands.models import GuildSettings
from commands.selectors import cookie_leaderboard, cookie_leaderboard_position, cookie_standing

STAFF_PAGE_SIZE = 50
PUBLIC_PAGE_SIZE = 25
PUBLIC_MAX_PAGE = 100
MAX_ID = 2**63 - 1


def _positive_int(raw: str | None, default: int | None = None) -> int | None:
    raw = (raw or "").strip()
    if raw.isdigit() and 0 < int(raw) <= MAX_ID:
        return int(raw)
    return default


@staff_member_required
@require_GET
def leaderboard_staff(request, guild_id: int | None = None):
    """A guild's cookie leaderboard in the admin; ``?member=<id>`` jumps to that member's page."""
    if not request.user.has_perm("commands.view_cookiebalance"):
        raise PermissionDenied
    if guild_id is None:
        picked = _positive_int(request.GET.get("guild"))
        if picked is not None:
            return redirect("leaderboard:staff", guild_id=picked)
        context = {**admin.site.each_context(request), "title": "Cookie leaderboard", "guild_id": None}
        return TemplateResponse(request, "commands/leaderboard_staff.html", context)
    if guild_id > MAX_ID:
        raise Http404
    page = _positive_int(request.GET.get("page"), 1)
    member = _positive_int(request.GET.get("member"))
    standing = None
    if member is not None:
        standing = cookie_standing(guild_id=guild_id, member_id=member)
        position = cookie_leaderboard_position(guild_id=guild_id, member_id=member)
        if position is not None:
            page = position // STAFF_PAGE_SIZE + 1
    standings = cookie_leaderboard(guild_id=guild_id, page=page, per_page=STAFF_PAGE_SIZE)
    base = reverse("leaderboard:staff", args=[guild_id])
    context = {
        **admin.site.each_context(request),
        "title": f"Cookie leaderboard of guild {guild_id}",
        "guild_id": guild_id,
        "standings": standings,
        "standing": standing,
        "member": member,
        "page": page,
        "previous_url": f"{base}?page={page - 1}" if page > 1 else None,
        "next_url": f"{base}?page={page + 1}" if len(standings) == STAFF_PAGE_SIZE else None,
        "public_enabled": GuildSettings.objects.filter(guild_id=guild_id, public_leaderboard=True).exists(),
    }
    return TemplateResponse(request, "commands/leaderboard_staff.html", context)


@require_GET
def leaderboard_public(request, guild_id: int):
    """The public, read-only leaderboard: 404 unless the guild turned it on."""
    if guild_id > MAX_ID or not GuildSettings.objects.filter(guild_id=guild_id, public_leaderboard=True).exists():
        raise Http404("No public leaderboard here.")
    page = min(_positive_int(request.GET.get("page"), 1), PUBLIC_MAX_PAGE)
    standings = cookie_leaderboard(guild_id=guild_id, page=page, per_page=PUBLIC_PAGE_SIZE)
    base = reverse("leaderboard-public", args=[guild_id])
    context = {
        "guild_id": guild_id,
        "standings": standings,
        "page": page,
        "previous_url": f"{base}?page={page - 1}" if page > 1 else None,
        "next_url": (f"{base}?page={page + 1}" if len(standings) == PUBLIC_PAGE_SIZE and page < PUBLIC_MAX_PAGE else None),
    }
    response = TemplateResponse(request, "commands/leaderboard_public.html", context)
    response["Cache-Control"] = "public, max-age=60"
    return response
