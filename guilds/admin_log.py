"""Admin for the activity log: what the bot and the admins did, per guild, newest first. Read-only.

The events page is a big table's list (``LargeTableAdmin``): estimated counts, newest first
by the primary key, narrowed by the search box only: a guild (its id or the start of its
name), then ``kind:`` (``log_guild_kind``) or ``failed:yes`` (``log_guild_failed``). Each
page names the members, roles and channels its texts mention in one query.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages

from config.admin_tables import LargeTableAdmin, SearchKey
from config.replicas import LagTolerantLists
from guilds.admin_names import CHANNEL, GUILD, MEMBER, ROLE, NamedColumns, guild_names, named
from guilds.log_selectors import log_names
from guilds.log_selectors import named as text_named
from guilds.models import LogEntry, LogSettings

GUILD_KEY = SearchKey("guild_id", names=guild_names)
LOG_KINDS = (
    "timer.set",
    "timer.add",
    "timer.remove",
    "timer.pause",
    "timer.resume",
    "timer.clear",
    "timer.pause_all",
    "timer.resume_all",
    "timer.auto_resume",
    "timer.expire",
    "timer.expire_failed",
    "timer.leave",
    "timer.rejoin",
    "timer.role_missing",
    "timer.reconcile",
    "cookie.set",
    "cookie.reset",
    "command.create",
    "command.edit",
    "command.delete",
    "settings.log_channel",
)
FAILED_CHOICES = {"yes": True, "no": False}
POSTED_SHOWN = {
    "posted": "posted",
    "no_channel": "not posted: no log channel",
    "forbidden": "not posted: the bot may not post there",
    "gone": "not posted: the channel is gone",
}


class ReadOnly:
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LogEntry)
class LogEntryAdmin(ReadOnly, NamedColumns, LagTolerantLists, LargeTableAdmin):
    list_display = ("created_at", "guild", "what", "kind", "result", "posted")
    list_display_links = ("created_at",)
    guild = named("guild_id", GUILD)
    search_keys = {"guild": GUILD_KEY, "kind": SearchKey("kind", kind="choice", choices=LOG_KINDS)}
    actor = named("actor_id", MEMBER, "who asked")
    member = named("member_id", MEMBER, "about")
    role = named("role_id", ROLE, "role")
    # The change page: what an admin reads, the ids under the names; the posting lease is the poster's.
    fields = readonly_fields = (
        "guild",
        "what",
        "kind",
        "result",
        "actor",
        "member",
        "role",
        "created_at",
        "posted",
        "posted_at",
        "text",
    )

    def __init__(self, model, admin_site) -> None:
        super().__init__(model, admin_site)
        extra = "For instance kind:timer.expire_failed; only failures: failed:yes (with the guild)."
        self.search_help_text = f"{self.search_help_text} {extra}"  # type: ignore[misc]

    @admin.display(description="what happened")
    def what(self, obj: LogEntry) -> str:
        names = getattr(obj, "_log_names", None)
        if names is None:  # a change page: just this entry
            names = log_names([obj])
        return text_named(obj.text, names)

    @admin.display(description="result")
    def result(self, obj: LogEntry) -> str:
        # Not Django's boolean icon: its green tick would read as "all went well" for a failure.
        return "⚠️ failed" if obj.failed else "done"

    @admin.display(description="in the log channel")
    def posted(self, obj: LogEntry) -> str:
        if obj.posted_at is None:
            return "waiting to be posted"
        return POSTED_SHOWN.get(obj.post_outcome, obj.get_post_outcome_display() or "-")

    def get_changelist(self, request, **kwargs):
        base = super().get_changelist(request, **kwargs)

        class LogChangeList(base):  # type: ignore[valid-type,misc]
            def get_results(self, request) -> None:
                super().get_results(request)
                rows: list[Any] = list(self.result_list)  # type: ignore[has-type]
                self.result_list = rows
                names = log_names(rows)  # one query for the page's mentions
                for row in rows:
                    row._log_names = names

        return LogChangeList

    def get_search_results(self, request, queryset, search_term):
        kept, failed = [], None
        for token in search_term.split():
            key, sep, value = token.partition(":")
            if not (sep and key.lower() == "failed"):
                kept.append(token)
                continue
            if value.lower() not in FAILED_CHOICES:
                messages.error(request, "failed must be yes or no.")
                return queryset.none(), False
            failed = FAILED_CHOICES[value.lower()]
        rest = " ".join(kept)
        if failed is not None and not rest:
            messages.error(
                request, "Add the guild (its id or name) to list failures: without it the search would read the whole log."
            )
            return queryset.none(), False
        queryset, duplicates = super().get_search_results(request, queryset, rest)
        return (queryset.filter(failed=failed) if failed is not None else queryset), duplicates

    def _request_terms(self, request) -> dict[str, object]:
        # The failed: term is this page's own; the shared parser knows the others.
        query = " ".join(t for t in request.GET.get("q", "").split() if not t.lower().startswith("failed:"))
        try:
            return self.search_terms(query)
        except Exception:
            return {}


@admin.register(LogSettings)
class LogSettingsAdmin(ReadOnly, NamedColumns, admin.ModelAdmin):
    """Where each guild's log goes; set from Discord with /settings log-channel, which checks the bot may post there."""

    list_display = ("guild", "channel", "post_error", "post_error_at", "updated_at")
    guild = named("guild_id", GUILD)
    channel = named("channel_id", CHANNEL, "log channel")
    readonly_fields = ("guild", "channel", *(f.name for f in LogSettings._meta.fields))
    search_fields = ("=guild_id",)
