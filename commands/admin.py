"""Django admin for commands, cookies and guild settings.

Balances and the ledger are read-only here: a cookie count changes only through the
services, which write the ledger row in the same transaction.
"""
from django import forms
from django.contrib import admin

from commands.command_templates import compile_template
from commands.errors import CommandError
from commands.models import CommandAlias, CookieBalance, CookieLedger, CustomCommand, GuildSettings
from commands.services import command_cooldown_set, command_create, command_edit, command_enabled_set, command_name_clean


class LargeTableAdmin(admin.ModelAdmin):
    """Defaults for tables that reach millions of rows: no full count, exact-id search."""

    show_full_result_count = False
    list_per_page = 50


@admin.register(GuildSettings)
class GuildSettingsAdmin(admin.ModelAdmin):
    list_display = ("guild_id", "prefix", "manager_role_id", "cookie_pair_cooldown_seconds", "cookie_daily_cap", "updated_at")
    search_fields = ("=guild_id",)


class CustomCommandForm(forms.ModelForm):
    class Meta:
        model = CustomCommand
        fields = ("guild_id", "name", "template", "enabled", "cooldown_seconds", "cooldown_scope", "note")

    def clean_name(self):
        try:
            return command_name_clean(self.cleaned_data["name"])
        except CommandError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_template(self):
        try:
            compile_template(self.cleaned_data["template"])
        except CommandError as exc:
            raise forms.ValidationError(str(exc)) from None
        return self.cleaned_data["template"]


class CommandAliasInline(admin.TabularInline):
    model = CommandAlias
    extra = 0
    fields = ("name",)
    readonly_fields = ("name",)
    can_delete = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(CustomCommand)
class CustomCommandAdmin(LargeTableAdmin):
    form = CustomCommandForm
    list_display = ("name", "guild_id", "enabled", "usage_count", "last_used_at", "author_id", "edited_at")
    list_filter = ("enabled",)
    search_fields = ("=guild_id", "name")
    readonly_fields = ("author_id", "editor_ids", "created_at", "edited_at", "usage_count", "last_used_at")
    inlines = [CommandAliasInline]

    def get_readonly_fields(self, request, obj=None):
        # A command's guild and name are its identity; rename by adding an alias instead.
        return self.readonly_fields + (("guild_id", "name") if obj is not None else ())

    def save_model(self, request, obj, form, change):
        """Save through the services so the rules and the bot's cache stay in step."""
        data = form.cleaned_data
        if not change:
            created = command_create(guild_id=data["guild_id"], name=data["name"], template=data["template"], author_id=None)
            obj.pk = created.pk
        elif "template" in form.changed_data:
            command_edit(guild_id=obj.guild_id, name=obj.name, template=data["template"], editor_id=None)
        command_cooldown_set(guild_id=obj.guild_id, name=obj.name, seconds=data["cooldown_seconds"], scope=data["cooldown_scope"])
        command_enabled_set(guild_id=obj.guild_id, name=obj.name, enabled=data["enabled"], note=data.get("note", ""))
        obj.refresh_from_db()


@admin.register(CookieBalance)
class CookieBalanceAdmin(LargeTableAdmin):
    list_display = ("member_id", "guild_id", "balance", "updated_at")
    search_fields = ("=guild_id", "=member_id")
    readonly_fields = ("guild_id", "member_id", "balance", "updated_at")

    def has_add_permission(self, request):
        return False


@admin.register(CookieLedger)
class CookieLedgerAdmin(LargeTableAdmin):
    list_display = ("created_at", "guild_id", "giver_id", "receiver_id", "delta", "reason")
    list_filter = ("reason",)
    search_fields = ("=guild_id", "=giver_id", "=receiver_id")
    readonly_fields = ("guild_id", "giver_id", "receiver_id", "delta", "reason", "message_id", "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CommandAlias)
class CommandAliasAdmin(LargeTableAdmin):
    list_display = ("name", "command", "guild_id")
    search_fields = ("=guild_id", "name")
    raw_id_fields = ("command",)
    readonly_fields = ("guild_id", "name", "command")

    def has_add_permission(self, request):
        return False
