"""Backup pages in the admin's look: staff list; ``ops.create_backup`` creates; superusers download, delete and restore."""

from __future__ import annotations

from functools import wraps

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.errors import ApplicationError
from ops.backups import storage
from ops.backups.catalog import backup_get, sidecar_name
from ops.backups.errors import BackupNotFound, BackupStorageUnreachable
from ops.backups.services import backup_create, backup_delete, backup_restore, backups_list
from ops.pitr.engines import pitr_window_shown
from ops.schedules import SCHEDULES


def superuser_required(view):
    """Staff get past staff_member_required; only superusers get here (403 for the rest)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_superuser:
            raise PermissionDenied("Only superusers may do this.")
        return view(request, *args, **kwargs)

    return staff_member_required(wrapper)


def storage_reachable(view):
    """A page about one backup whose storage (S3) can't be reached goes back to the list, which says why."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except BackupStorageUnreachable as exc:
            messages.error(request, f"{exc} Nothing was changed.")
            return redirect("backups:index")

    return wrapper


def _context(request, **extra) -> dict:
    return {**admin.site.each_context(request), **extra}


def _backup_or_404(name: str):
    try:
        return backup_get(name)
    except BackupNotFound as exc:
        raise Http404(str(exc)) from None


@never_cache
@staff_member_required
@require_GET
def backup_list(request):
    schedule = next((s for s in SCHEDULES if s.func == "ops.backups.tasks.backup_scheduled"), None)
    try:
        backups = backups_list()
    except ApplicationError as exc:  # the storage (S3) cannot be reached: say so, on the page
        messages.error(request, str(exc))
        backups = []
    return render(
        request,
        "ops/backups/list.html",
        _context(
            request,
            title="Backups",
            backups=backups,
            backup_dir=storage.storage_location(),
            keep_count=settings.BACKUP_KEEP_COUNT,
            keep_days=settings.BACKUP_KEEP_DAYS,
            schedule=schedule,
            can_create=request.user.has_perm(CREATE_PERMISSION),
            recovery=pitr_window_shown(),  # point-in-time recovery (pgBackRest or Litestream), None when off
            sqlite=connection.vendor == "sqlite",  # which engine's recovery to suggest when it is off
        ),
    )


CREATE_PERMISSION = "ops.create_backup"


@staff_member_required
@require_POST
def backup_create_now(request):
    if not request.user.has_perm(CREATE_PERMISSION):
        raise PermissionDenied("Creating a backup needs the permission “Can create a backup now”.")
    try:
        backup = backup_create(kind="manual", user=request.user)
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Backup {backup.name} made ({backup.size:,} bytes).")
    return redirect("backups:index")


@never_cache
@superuser_required
@require_GET
@storage_reachable
def backup_download(request, name: str):
    backup = _backup_or_404(name)
    sidecar = request.GET.get("part") == "sidecar"
    name = sidecar_name(backup.name) if sidecar else backup.name
    try:
        stream = storage.open_stream(name)  # streamed from the storage, local or S3
    except FileNotFoundError:
        raise Http404("This backup has no sidecar.") from None
    response = FileResponse(
        stream, as_attachment=True, filename=name, content_type="application/json" if sidecar else "application/octet-stream"
    )
    if not sidecar:
        response["Content-Length"] = str(backup.size)
    return response


@never_cache
@superuser_required
@require_http_methods(["GET", "POST"])
@storage_reachable
def backup_delete_confirm(request, name: str):
    backup = _backup_or_404(name)
    if request.method == "POST":
        backup_delete(name=backup.name, user=request.user)
        messages.success(request, f"Backup {backup.name} deleted.")
        return redirect("backups:index")
    return render(request, "ops/backups/delete.html", _context(request, title="Delete a backup", backup=backup))


class RestoreForm(forms.Form):
    confirmation = forms.CharField(label="Type the backup's name to confirm", max_length=255, strip=True)
    trust_unsigned = forms.BooleanField(
        required=False,
        label="I brought this file from another installation myself: restore it although this installation did not sign it",
    )

    def __init__(self, *args, name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.name = name

    def clean_confirmation(self) -> str:
        typed = self.cleaned_data["confirmation"]
        if typed != self.name:
            raise forms.ValidationError("That is not this backup's name; nothing was restored.")
        return typed


@never_cache
@superuser_required
@require_http_methods(["GET", "POST"])
@storage_reachable
def backup_restore_confirm(request, name: str):
    backup = _backup_or_404(name)
    form = RestoreForm(request.POST or None, name=backup.name)
    if request.method == "POST" and form.is_valid():
        try:
            trust = form.cleaned_data["trust_unsigned"]
            outcome = backup_restore(name=backup.name, user=request.user, trust_unsigned=trust)
        except ApplicationError as exc:
            # Shown here, next to the form (and the override for unsigned files), not on the list.
            messages.error(request, str(exc))
        else:
            text = f"Restored {outcome.name}. The database as it was before is in {outcome.snapshot}."
            if outcome.pending_migrations:
                text += f" {outcome.pending_migrations} migrations are pending: run manage.py migrate."
            messages.success(request, text)
            return redirect("backups:index")
    return render(
        request,
        "ops/backups/restore.html",
        _context(
            request,
            title="Restore a backup",
            backup=backup,
            form=form,
        ),
    )
