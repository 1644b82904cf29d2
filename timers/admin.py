"""Django admin for timed roles.

Timer rows are read-only here: a change must reach Discord, so it goes through the
services (extend, pause, resume, clear as list actions) and then to the timer engine
(``timer_role_sync_later``), which grants or removes the role after the commit.
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.template.response import TemplateResponse

from config.admin_tables import MAX_ID, LargeTableAdmin, SearchKey
from config.errors import ApplicationError
from config.numbers import parse_int
from config.replicas import LagTolerantLists
from guilds.admin_names import GuildNameSearch, NamedColumns
from guilds.admin_titles import names_attach
from timers import admin_columns as columns
from timers.durations import parse_duration
from timers.models import LIVE_STATES, AllowedRole, RoleReport, TimedRole, TimerEvent, TimerSettings, TimerState
from timers.notify import timer_role_sync_later
from timers.services import (
    TimerChange,
    allowed_role_add,
    allowed_role_remove,
    report_remove,
    report_set,
    timer_add,
    timer_clear,
    timer_pause,
    timer_resume,
    timer_settings_update,
    timer_warnings_set,
)
from timers.services.guild_config import (
    MAX_REPORT_MINUTES,
    MAX_THRESHOLDS,
    MIN_REPORT_MINUTES,
    timer_warning_minutes_clean,
)
from timers.services.membership import timer_membership_settings_set

# Actions change timers one at a time through the services; a whole role has pause-all.
MAX_TIMERS_PER_ACTION = 100


class TimerSettingsForm(forms.ModelForm):
    admin_role_id = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="May manage other members' timers (empty = Manage Roles only)."
    )
    warning_minutes = forms.CharField(
        required=False,
        max_length=100,
        help_text=f"Minutes before expiry at which a warning is sent, like 60, 10, 1 (at most {MAX_THRESHOLDS}; empty = none).",
    )

    notice_channel_id = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="The channel grant notices go to (with notices in a channel)."
    )

    class Meta:
        model = TimerSettings
        fields = ("guild_id", "admin_role_id", "warning_minutes", "on_leave", "on_role_missing", "notice", "notice_channel_id")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.initial["warning_minutes"] = ", ".join(str(m) for m in self.instance.warning_minutes)

    def clean_warning_minutes(self) -> list[int]:
        values = [parse_int(part) for part in self.cleaned_data["warning_minutes"].replace(",", " ").split()]
        if None in values:
            raise forms.ValidationError("Write the warning times as whole minutes with the digits 0-9, like 60, 10, 1.")
        try:
            return timer_warning_minutes_clean([v for v in values if v is not None])
        except ApplicationError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        cleaned = super().clean() or {}
        if cleaned.get("notice") == "channel" and not cleaned.get("notice_channel_id"):
            self.add_error("notice_channel_id", "Give the channel's id for notices in a channel.")
        return cleaned


@admin.register(TimerSettings)
class TimerSettingsAdmin(NamedColumns, GuildNameSearch, LagTolerantLists, admin.ModelAdmin):
    form = TimerSettingsForm
    list_display = ("guild", "admin_role", "warning_minutes", "on_leave", "on_role_missing", "notice", "updated_at")
    guild, admin_role = columns.guild, columns.admin_role
    search_fields = ("=guild_id",)
    search_help_text = "A guild id, or the start of its name."

    def get_readonly_fields(self, request, obj=None):
        return ("guild_id",) if obj is not None else ()

    def save_model(self, request, obj, form, change):
        """Save through the services: their limits, and live timers' next warnings rescheduled."""
        data = form.cleaned_data
        if not change or "admin_role_id" in form.changed_data:
            timer_settings_update(guild_id=obj.guild_id, admin_role_id=data["admin_role_id"])
        if not change or "warning_minutes" in form.changed_data:
            timer_warnings_set(guild_id=obj.guild_id, minutes=data["warning_minutes"])
        if not change or {"on_leave", "on_role_missing", "notice", "notice_channel_id"} & set(form.changed_data):
            timer_membership_settings_set(
                guild_id=obj.guild_id,
                on_leave=data["on_leave"],
                on_role_missing=data["on_role_missing"],
                notice=data["notice"],
                notice_channel_id=data["notice_channel_id"],
            )
        obj.pk = TimerSettings.objects.values_list("pk", flat=True).get(guild_id=obj.guild_id)
        obj.refresh_from_db()


class AllowedRoleForm(forms.ModelForm):
    role_id = forms.IntegerField(min_value=1, max_value=MAX_ID)

    class Meta:
        model = AllowedRole
        fields = ("guild_id", "role_id")


@admin.register(AllowedRole)
class AllowedRoleAdmin(NamedColumns, GuildNameSearch, LagTolerantLists, admin.ModelAdmin):
    form = AllowedRoleForm
    list_display = ("role", "guild", "added_by_id", "created_at")
    guild, role = columns.guild, columns.role
    search_fields = ("=guild_id", "=role_id")
    search_help_text = "A guild or role id, or the start of the guild's name."

    def get_readonly_fields(self, request, obj=None):
        # A listed role is its guild and role: change one by removing it and adding another.
        return ("guild_id", "role_id", "added_by_id", "created_at") if obj is not None else ()

    def save_model(self, request, obj, form, change):
        if not change:
            obj.pk = allowed_role_add(guild_id=obj.guild_id, role_id=obj.role_id, actor_id=None).pk

    def delete_model(self, request, obj):
        allowed_role_remove(guild_id=obj.guild_id, role_id=obj.role_id)

    def delete_queryset(self, request, queryset):
        for role in queryset:
            self.delete_model(request, role)


class RoleReportForm(forms.ModelForm):
    role_id = forms.IntegerField(min_value=1, max_value=MAX_ID)
    channel_id = forms.IntegerField(min_value=1, max_value=MAX_ID)
    interval_minutes = forms.IntegerField(
        min_value=MIN_REPORT_MINUTES, max_value=MAX_REPORT_MINUTES, initial=1440, help_text="From 60 (hourly) to 43200 (30 days)."
    )

    class Meta:
        model = RoleReport
        fields = ("guild_id", "role_id", "channel_id", "interval_minutes")


@admin.register(RoleReport)
class RoleReportAdmin(NamedColumns, GuildNameSearch, LagTolerantLists, admin.ModelAdmin):
    form = RoleReportForm
    list_display = ("role", "guild", "channel", "interval_minutes", "next_run_at", "last_run_at")
    guild, role, channel = columns.guild, columns.role, columns.channel
    search_fields = ("=guild_id",)
    search_help_text = "A guild id, or the start of its name."

    def get_readonly_fields(self, request, obj=None):
        # A report is its guild, role and channel; the interval is what changes.
        identity = ("guild_id", "role_id", "channel_id") if obj is not None else ()
        return (*identity, "next_run_at", "last_run_at")

    def save_model(self, request, obj, form, change):
        """Through ``report_set``: its limits, and the next run moved to match the interval."""
        saved = report_set(
            guild_id=obj.guild_id,
            role_id=obj.role_id,
            channel_id=obj.channel_id,
            interval_minutes=form.cleaned_data["interval_minutes"],
            actor_id=None,
        )
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        report_remove(guild_id=obj.guild_id, report_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for report in queryset:
            self.delete_model(request, report)


class TimerEventInline(admin.TabularInline):
    model = TimerEvent
    extra = 0
    fields = ("created_at", "kind", "actor_id", "seconds", "detail")
    readonly_fields = fields
    ordering = ("-created_at",)
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class ExtendForm(forms.Form):
    duration = forms.CharField(
        max_length=40,
        help_text="Time to add, as in Discord: 90m, 24h, 1d, 2w or 1d 12h 30m.",
        widget=forms.TextInput(attrs={"autofocus": True}),
    )

    def clean_duration(self):
        try:
            return parse_duration(self.cleaned_data["duration"])
        except ApplicationError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(TimedRole)
class TimedRoleAdmin(NamedColumns, LagTolerantLists, LargeTableAdmin):
    list_display = ("member", "role", "guild", "state", "time_left", "expires_at", "outcome")
    member, role, guild, time_left = columns.member, columns.role, columns.guild, staticmethod(columns.time_left)
    # timer_guild_member_state and timer_guild_role_state start with the guild; names resolve to
    # ids through the directory's indexes first.
    search_keys = {
        "guild": columns.GUILD_KEY,
        "member": columns.MEMBER_KEY,
        "role": columns.ROLE_KEY,
        "state": SearchKey("state", kind="choice", choices=tuple(TimerState.values)),
    }
    export_dataset = "timers"
    inlines = [TimerEventInline]
    actions = ["extend_timers", "pause_timers", "resume_timers", "clear_timers"]

    def get_readonly_fields(self, request, obj=None):
        return ["member", "role", "guild", "time_left", *(f.name for f in TimedRole._meta.fields)]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # ended timers stay as history; live ones end by "clear"

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Every field is read-only: a Save button would promise a change it can't make.
        hidden = {"show_save": False, "show_save_and_continue": False, "show_save_and_add_another": False}
        return super().changeform_view(request, object_id, form_url, {**hidden, **(extra_context or {})})

    def _change_each(self, request, queryset, change: Callable[[TimedRole], TimerChange], done_text: str) -> None:
        """Apply ``change`` to each selected live timer, then queue its sync with Discord."""
        timers = list(queryset.order_by("pk")[: MAX_TIMERS_PER_ACTION + 1])
        if len(timers) > MAX_TIMERS_PER_ACTION:
            messages.error(
                request,
                f"Select at most {MAX_TIMERS_PER_ACTION} timers at a time (for a whole role, use /timer pause-all).",
            )
            return
        changed = 0
        names_attach(timers)  # the messages name each timer ("@Booster for Alice (@alice) in My Server")
        for timer in timers:
            label = str(timer)
            if timer.state not in LIVE_STATES:
                messages.error(request, f"{label}: that timer has already ended.")
                continue
            try:
                result = change(timer)
            except ApplicationError as exc:
                messages.error(request, f"{label}: {exc}")
                continue
            timer_role_sync_later(result.timer.pk)
            changed += 1
        if changed:
            noun = "timer" if changed == 1 else "timers"
            messages.success(request, f"{done_text} {changed} {noun}; the worker updates the roles on Discord.")

    @staticmethod
    def _ids(timer: TimedRole) -> dict:
        return {"guild_id": timer.guild_id, "member_id": timer.member_id, "role_id": timer.role_id, "actor_id": None}

    @admin.action(description="Extend the selected timers…", permissions=["change"])
    def extend_timers(self, request, queryset):
        form = ExtendForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            duration = form.cleaned_data["duration"]
            self._change_each(request, queryset, lambda t: timer_add(**self._ids(t), duration=duration), "Extended")
            return None
        timers = list(queryset.order_by("pk")[: MAX_TIMERS_PER_ACTION + 1])
        if len(timers) > MAX_TIMERS_PER_ACTION:
            messages.error(request, f"Select at most {MAX_TIMERS_PER_ACTION} timers at a time.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Extend timers",
            "opts": self.opts,
            "form": form,
            "timers": timers,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/timers/timedrole/extend_timers.html", context)

    @admin.action(description="Pause the selected timers", permissions=["change"])
    def pause_timers(self, request, queryset):
        self._change_each(request, queryset, lambda t: timer_pause(**self._ids(t)), "Paused")

    @admin.action(description="Resume the selected timers", permissions=["change"])
    def resume_timers(self, request, queryset):
        self._change_each(request, queryset, lambda t: timer_resume(**self._ids(t)), "Resumed")

    @admin.action(description="Clear the selected timers (take the role away now)", permissions=["change"])
    def clear_timers(self, request, queryset):
        self._change_each(request, queryset, lambda t: timer_clear(**self._ids(t)), "Cleared")


@admin.register(TimerEvent)
class TimerEventAdmin(NamedColumns, LagTolerantLists, LargeTableAdmin):
    list_display = ("created_at", "timer", "kind", "actor_id", "seconds")
    raw_id_fields = ("timer",)

    def get_queryset(self, request):
        # An event is named after its timer ("time added: @Booster for Alice (@alice) …"): loaded with it.
        return super().get_queryset(request).select_related("timer")

    # A bare number is a timer id: the timer_event_recent index.
    search_keys = {"timer": SearchKey("timer_id")}
    search_scope = "timer"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in TimerEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# Registered from their own modules: the bulk jobs and the reconciliation records.
from timers import admin_bulk, admin_reconcile  # noqa: E402,F401
