"""The custom command's change form: restrictions picked by name, and the rendered preview.

Restrictions are picked from the guild's roles and channels by name when the directory
(``guilds.Role`` / ``guilds.Channel``, written by the bot) knows the guild, else typed as ids.
The preview panel shows the reply rendered with sample values (``commands.template_preview``,
the bot's own renderer); on the editable form ``static/commands/command_preview.js`` sends
the template to ``…/customcommand/preview/`` as it is typed and shows the answer there.
"""

from __future__ import annotations

import re

from django import forms
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from commands.models import CustomCommand
from commands.restrictions import FIELDS as RESTRICTION_FIELDS
from commands.restrictions import RestrictionInvalid, restriction_ids_clean
from commands.selectors import restriction_choices
from commands.template_preview import DEFAULT_GUILD_NAME, Preview, command_preview, sample_caption
from config.numbers import parse_int
from guilds.selectors import directory_names

_SEPARATORS = re.compile(r"[\s,;]+")
LABELS = {
    "allowed_role_ids": ("Allowed roles", "Only members with one of these roles may use it (none chosen: anyone)."),
    "denied_role_ids": ("Denied roles", "Members with one of these roles may never use it, even with an allowed role."),
    "allowed_channel_ids": ("Allowed channels", "Only in these channels and their threads (none chosen: anywhere)."),
}
ID_HELP = " The bot has not listed this server's roles and channels yet: give ids, separated by commas."


class IdsField(forms.Field):
    """Discord ids typed into one box, separated by commas or spaces."""

    widget = forms.TextInput

    def to_python(self, value) -> list[int]:
        words = [w for w in _SEPARATORS.split(str(value or "")) if w]
        ids = []
        for word in words:
            number = parse_int(word, minimum=1)
            if number is None:
                raise forms.ValidationError(f"{word[:30]!r} is not a Discord id (digits 0-9 only).")
            ids.append(number)
        return ids

    def prepare_value(self, value):
        return ", ".join(str(i) for i in value) if isinstance(value, (list, tuple)) else value

    def has_changed(self, initial, data) -> bool:
        try:
            return sorted(set(self.to_python(data))) != sorted(initial or [])
        except forms.ValidationError:
            return True


class NamePicker(FilteredSelectMultiple):
    """The admin's two-box picker, wrapped as the admin wraps it for a relation: its script puts
    the boxes first in their parent, which would otherwise push the label past them."""

    def render(self, name, value, attrs=None, renderer=None):
        return format_html('<div class="related-widget-wrapper">{}</div>', super().render(name, value, attrs, renderer))


class RestrictionFields(forms.Form):
    """Mixed into the command's ModelForm: the three lists, as pickers or id boxes, checked by the service's rules."""

    allowed_role_ids = IdsField(required=False)
    denied_role_ids = IdsField(required=False)
    allowed_channel_ids = IdsField(required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        instance = getattr(self, "instance", None)
        guild_id = getattr(instance, "guild_id", None)
        current = {f: list(getattr(instance, f, None) or []) for f in RESTRICTION_FIELDS}
        roles, channels = (
            restriction_choices(
                guild_id=guild_id, keep=current["allowed_role_ids"] + current["denied_role_ids"] + current["allowed_channel_ids"]
            )
            if guild_id
            else ([], [])
        )
        for f in RESTRICTION_FIELDS:
            label, help_text = LABELS[f]
            choices = channels if f == "allowed_channel_ids" else roles
            if choices:
                missing = [i for i in current[f] if i not in {c for c, _ in choices}]
                kind = "channel" if f == "allowed_channel_ids" else "role"
                listed = [(str(c), name) for c, name in choices] + [
                    (str(i), f"{kind} {i} (not in the directory)") for i in missing
                ]
                field: forms.Field = forms.TypedMultipleChoiceField(
                    choices=listed, coerce=int, required=False, widget=NamePicker(label.lower(), is_stacked=False)
                )
            else:
                field = IdsField(required=False, help_text=help_text + ID_HELP)
            field.label, field.initial = label, current[f]
            if choices:
                field.help_text = help_text
            self.fields[f] = field

    def clean(self):
        cleaned = super().clean() or {}
        guild_id = cleaned.get("guild_id") or getattr(getattr(self, "instance", None), "guild_id", None)
        for f in RESTRICTION_FIELDS:
            if f in cleaned and guild_id:
                try:
                    cleaned[f] = restriction_ids_clean(f, cleaned[f] or [], guild_id=guild_id)
                except RestrictionInvalid as exc:
                    self.add_error(f, str(exc))
        return cleaned


def restriction_changes(form: forms.Form, *, created: bool) -> dict[str, list[int]]:
    """The lists to hand to the service: all given ones for a new command, the changed ones for an edit."""
    data = form.cleaned_data
    return {f: data[f] for f in RESTRICTION_FIELDS if f in data and (data[f] if created else f in form.changed_data)}


class CommandPreviewAdmin:
    """ModelAdmin mixin: the "Preview" field after the reply, its endpoint and its script."""

    class Media:
        js = ("commands/command_preview.js",)
        css = {"all": ("commands/command_preview.css",)}

    def get_urls(self):
        view = self.admin_site.admin_view(require_POST(self.preview_view))  # type: ignore[attr-defined]
        return [path("preview/", view, name="commands_customcommand_preview"), *super().get_urls()]  # type: ignore[misc]

    def _view_only(self, request, obj) -> bool:
        return obj is not None and not self.has_change_permission(request, obj)  # type: ignore[attr-defined]

    def get_readonly_fields(self, request, obj=None):
        shown = ("preview", "restrictions") if self._view_only(request, obj) else ("preview",)
        return (*super().get_readonly_fields(request, obj), *shown)  # type: ignore[misc]

    def get_fields(self, request, obj=None):
        fields = [f for f in super().get_fields(request, obj) if f not in ("preview", "restrictions")]  # type: ignore[misc]
        if self._view_only(request, obj):  # the lists by name rather than as JSON
            fields = [f for f in fields if f not in RESTRICTION_FIELDS] + ["restrictions"]
        at = fields.index("template") + 1 if "template" in fields else len(fields)
        return [*fields[:at], "preview", *fields[at:]]

    def restrictions(self, obj: CustomCommand) -> str:
        ids = [*obj.allowed_role_ids, *obj.denied_role_ids]
        names = directory_names(role_ids=ids, channel_ids=obj.allowed_channel_ids)
        parts = []
        for f, label in (("allowed_role_ids", "only for"), ("denied_role_ids", "never for"), ("allowed_channel_ids", "only in")):
            name_of = names.channel if f == "allowed_channel_ids" else names.role
            listed = ", ".join(name_of(i) or str(i) for i in getattr(obj, f))
            if listed:
                parts.append(f"{label}: {listed}")
        return "; ".join(parts) or "anyone may use it, anywhere"

    def may_preview(self, request: HttpRequest) -> bool:
        """Who types replies: the add or change permission on custom commands."""
        return request.user.has_perm("commands.add_customcommand") or request.user.has_perm("commands.change_customcommand")

    def preview_view(self, request: HttpRequest) -> JsonResponse:
        """POST template (and guild_id): ``{"text": …, "error": …}``, the error being what a save would say."""
        if not self.may_preview(request):
            raise PermissionDenied
        template = request.POST.get("template")
        if template is None:
            return JsonResponse({"text": None, "error": "Send the reply as `template`."}, status=400)
        return JsonResponse(command_preview(template=template, guild_name=_guild_name(request.POST.get("guild_id"))).as_json())

    def preview(self, obj: CustomCommand | None) -> str:
        guild_name = _guild_name(getattr(obj, "guild_id", None))
        template = getattr(obj, "template", "") or ""
        shown = command_preview(template=template, guild_name=guild_name) if template else Preview()
        return format_html(
            '<div id="command-preview" class="command-preview" data-url="{}" data-guild="{}" aria-live="polite">'
            '<p class="command-preview-caption">{}</p>'
            '<div class="command-preview-text"{}>{}</div>'
            '<p class="command-preview-error errornote"{}>{}</p>'
            '<p class="command-preview-hint"{}>Type a reply to see it here.</p></div>',
            reverse("admin:commands_customcommand_preview"),
            getattr(obj, "guild_id", None) or "",
            sample_caption(guild_name),
            "" if shown.text is not None else " hidden",
            shown.text or "",
            "" if shown.error else " hidden",
            shown.error or "",
            "" if not template else " hidden",
        )

    preview.short_description = "Preview"  # type: ignore[attr-defined]


def _guild_name(guild_id: object) -> str:
    number = guild_id if isinstance(guild_id, int) else parse_int(guild_id, minimum=1, maximum=2**63 - 1)
    if not number:
        return DEFAULT_GUILD_NAME
    return directory_names(guild_ids=[number]).guild(number) or DEFAULT_GUILD_NAME
