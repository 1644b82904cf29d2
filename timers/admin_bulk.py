"""Bulk timer changes on the dashboard: start one (the same job as ``/timer bulk-add`` / ``bulk-clear``), follow and cancel it.

Permissions are the timers' own: a bulk add gives timers (``timers.add_timedrole``), a bulk
clear ends them (``timers.change_timedrole``), cancelling changes a job
(``change_timedrole``), and the list needs ``view_timedrole``. The worker does the work,
exactly as for a job started in chat; Discord's own refusals (the role above the bot's)
stop the job with the reason shown here.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from config.admin_tables import MAX_ID
from config.errors import ApplicationError
from config.replicas import LagTolerantLists
from guilds.admin_titles import NamedObjects
from guilds.selectors import Names, directory_names
from timers.durations import format_duration, parse_duration
from timers.models import BulkJob, BulkKind, BulkState
from timers.services.bulk import OPEN_STATES, bulk_job_cancel, bulk_job_create

ADD_PERM, CHANGE_PERM, VIEW_PERM = "timers.add_timedrole", "timers.change_timedrole", "timers.view_timedrole"


class BulkJobForm(forms.ModelForm):
    """What a bulk change needs; saved through ``bulk_job_create`` (the admin never writes the row itself)."""

    guild_id = forms.IntegerField(min_value=1, max_value=MAX_ID, label="Server id")
    role_id = forms.IntegerField(min_value=1, max_value=MAX_ID, label="Role id", help_text="The role given, or whose timers end.")
    duration = forms.CharField(
        required=False, max_length=40, help_text="Bulk add only: how long, as in Discord (30d, 24h, 1d 12h)."
    )
    holders_of_role_id = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        label="Holders of role id",
        help_text="Bulk add only: the members holding this role get the timer (empty: who holds the role now). "
        "Members who already have a timer for the role keep it.",
    )

    class Meta:
        model = BulkJob
        fields = ("guild_id", "kind", "role_id", "holders_of_role_id")

    def __init__(self, *args, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self):
        super().clean()
        data = self.cleaned_data
        kind = data.get("kind")
        needed = ADD_PERM if kind == BulkKind.ADD else CHANGE_PERM
        if kind and self.user is not None and not self.user.has_perm(needed):
            raise forms.ValidationError(f"Your account may not start a {BulkKind(kind).label} ({needed} is needed).")
        if kind == BulkKind.ADD:
            text = (data.get("duration") or "").strip()
            if not text:
                self.add_error("duration", "A bulk add needs a duration.")
            else:
                try:
                    data["seconds"] = int(parse_duration(text).total_seconds())
                except ApplicationError as exc:
                    self.add_error("duration", str(exc))
        return data


@admin.register(BulkJob)
class BulkJobAdmin(NamedObjects, LagTolerantLists, admin.ModelAdmin):
    form = BulkJobForm
    list_display = ("id", "change", "server", "state", "progress", "created_at", "cancel_link")
    ordering = ("-id",)
    actions = ["cancel_jobs"]

    # -- permissions: the timers' own ------------------------------------------------------------
    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(VIEW_PERM) or request.user.has_perm(CHANGE_PERM)

    def has_add_permission(self, request):
        return request.user.has_perm(ADD_PERM) or request.user.has_perm(CHANGE_PERM)

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm(CHANGE_PERM)

    def has_delete_permission(self, request, obj=None):
        return False  # a job is the record of what was changed

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    # -- the list ------------------------------------------------------------------------------
    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        jobs = list(changelist.result_list)
        # The page's names from the directory in one query ("My Server", "@Booster"); ids where unknown.
        names = directory_names(
            guild_ids=[j.guild_id for j in jobs], role_ids=[r for j in jobs for r in (j.role_id, j.holders_of_role_id)]
        )
        for job in jobs:
            job.names = names
        return changelist

    @staticmethod
    def _label(name: str, item_id: int | None) -> str:
        return f"{name} ({item_id})" if name else str(item_id)

    @admin.display(description="change")
    def change(self, job: BulkJob) -> str:
        names = getattr(job, "names", None) or Names()
        role = self._label(names.role(job.role_id), job.role_id)
        if job.kind == BulkKind.CLEAR:
            return f"clear every timer of {role}"
        holders = (
            "its holders"
            if job.holders_of_role_id in (None, job.role_id)
            else ("holders of " + self._label(names.role(job.holders_of_role_id), job.holders_of_role_id))
        )
        return f"give {role} for {format_duration(timedelta(seconds=job.seconds or 0))} to {holders}"

    @admin.display(description="server", ordering="guild_id")
    def server(self, job: BulkJob) -> str:
        names = getattr(job, "names", None) or Names()
        return self._label(names.guild(job.guild_id), job.guild_id)

    @admin.display(description="progress")
    def progress(self, job: BulkJob) -> str:
        if job.total is None:
            return "counting members…" if job.state == BulkState.RUNNING else "not started"
        processed = job.done_count + job.skipped_count + job.failed_count
        counts = [f"{n:,} {word}" for n, word in ((job.skipped_count, "skipped"), (job.failed_count, "failed")) if n]
        return f"{processed:,} of {job.total:,}" + (f" ({', '.join(counts)})" if counts else "")

    @admin.display(description="")
    def cancel_link(self, job: BulkJob) -> str:
        if job.state not in OPEN_STATES:
            return ""
        if job.cancel_requested:
            return "cancelling…"
        # Inside the changelist's own form (which carries the CSRF token): a button posting it to the cancel URL.
        url = reverse("admin:timers_bulkjob_cancel", args=[job.pk])
        return format_html('<button type="submit" class="button" formaction="{}">Cancel</button>', url)

    def get_urls(self):
        extra = [path("<int:job_id>/cancel/", self.admin_site.admin_view(self.cancel_view), name="timers_bulkjob_cancel")]
        return extra + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra = {
            "title": "Bulk timer changes",
            "subtitle": "The worker goes through each server's members in id order; reload for progress.",
        }
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    # -- writes, through the services ------------------------------------------------------------
    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)

        class WithUser(form_class):  # type: ignore[valid-type,misc]
            def __init__(self, *args, **kw):
                super().__init__(*args, user=request.user, **kw)

        return WithUser

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in BulkJob._meta.fields] if obj is not None else []

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("guild_id", "kind", "role_id", "duration", "holders_of_role_id")
        return [f.name for f in BulkJob._meta.fields]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        hidden: dict[str, object]
        if object_id is not None:  # a job is read-only: it changes by working or by Cancel
            hidden = {"show_save": False, "show_save_and_continue": False, "show_save_and_add_another": False}
        else:  # one Save: it starts the job
            hidden = {"show_save_and_continue": False, "show_save_and_add_another": False, "title": "Start a bulk timer change"}
        extra_context = {**hidden, **(extra_context or {})}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if change:
            raise PermissionDenied("A bulk job can't be edited; cancel it and start another.")
        data = form.cleaned_data
        try:
            job = bulk_job_create(
                guild_id=data["guild_id"],
                kind=data["kind"],
                role_id=data["role_id"],
                seconds=data.get("seconds"),
                holders_of_role_id=data.get("holders_of_role_id"),
                actor_id=None,
            )
        except ApplicationError as exc:
            form.add_error(None, str(exc))
            raise _Refused(str(exc)) from None
        obj.pk = job.pk

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except _Refused as refused:
            messages.error(request, str(refused))
            return HttpResponseRedirect(request.get_full_path())

    def cancel_view(self, request, job_id: int):
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:timers_bulkjob_changelist"))
        if not self.has_change_permission(request):
            raise PermissionDenied
        job = BulkJob.objects.filter(pk=job_id).first()
        if job is None:
            messages.error(request, f"Bulk job #{job_id} does not exist.")
        else:
            self._cancel(request, job)
        return HttpResponseRedirect(reverse("admin:timers_bulkjob_changelist"))

    def _cancel(self, request, job: BulkJob) -> None:
        try:
            done = bulk_job_cancel(guild_id=job.guild_id, job_id=job.pk, actor_id=None)
        except ApplicationError as exc:
            messages.error(request, str(exc))
            return
        if done.state == BulkState.CANCELLED:
            messages.success(request, f"Bulk job #{done.pk} cancelled.")
        else:
            messages.success(request, f"Bulk job #{done.pk} stops after the member it is on.")

    @admin.action(description="Cancel the selected jobs", permissions=["change"])
    def cancel_jobs(self, request, queryset):
        for job in queryset.filter(state__in=OPEN_STATES).order_by("pk")[:100]:
            self._cancel(request, job)


class _Refused(Exception):
    """The service refused the job (another one under way, a role not on the list): shown, nothing saved."""
