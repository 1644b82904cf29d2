"""Django admin for commands, cookies and guild settings.

Balances and the ledger are read-only here: a cookie count changes only through the
services, which write the ledger row in the same transaction. The big tables use
``LargeTableAdmin`` (estimated counts, search by guild id and indexed terms only).
"""

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from commands.admin_commands import CommandPreviewAdmin, RestrictionFields, restriction_changes
from commands.command_templates import compile_template
from commands.errors import CustomCommandError, SettingsInvalid
from commands.models import CommandAlias, CookieBalance, CookieLedger, CookieRole, CustomCommand, GuildSettings
from commands.services import (
    GUILD_SETTINGS_EDITABLE,
    command_create,
    command_delete,
    command_name_clean,
    command_update,
    cookie_reset,
    guild_setting_clean,
    guild_settings_update,
)
from commands.services.cookie_roles import MAX_COOKIE_ROLES, MAX_THRESHOLD, cookie_role_add, cookie_role_remove
from config.admin_tables import LargeTableAdmin, SearchKey
from config.replicas import LagTolerantLists
from guilds.admin_names import GUILD as GUILD_NAME
from guilds.admin_names import MEMBER, ROLE, GuildNameSearch, NamedColumns, guild_names, member_names, named

GUILD = SearchKey("guild_id", names=guild_names)
NAME = SearchKey("name", kind="prefix")
guild_column = named("guild_id", GUILD_NAME)
member_column = named("member_id", MEMBER)


class GuildSettingsForm(forms.ModelForm):
    class Meta:
        model = GuildSettings
        fields = ("guild_id", *sorted(GUILD_SETTINGS_EDITABLE))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "command_refusal" in self.fields:
            self.fields["command_refusal"].required = False  # a form that doesn't send it keeps the guild's choice

    def clean_command_refusal(self):
        return self.cleaned_data.get("command_refusal") or self.instance.command_refusal

    def clean(self):
        cleaned = super().clean() or {}
        for field in GUILD_SETTINGS_EDITABLE & set(cleaned):
            try:
                guild_setting_clean(field, cleaned[field])
            except SettingsInvalid as exc:
                self.add_error(field, str(exc))
        return cleaned


@admin.register(GuildSettings)
class GuildSettingsAdmin(NamedColumns, GuildNameSearch, LagTolerantLists, admin.ModelAdmin):
    form = GuildSettingsForm
    guild, manager_role = guild_column, named("manager_role_id", ROLE, "manager role")
    search_help_text = "A guild id, or the start of its name."
    list_display = (
        "guild",
        "prefix",
        "manager_role",
        "cookie_pair_cooldown_seconds",
        "cookie_daily_cap",
        "public_leaderboard",
        "leaderboard",
        "activity_log",
        "updated_at",
    )
    search_fields = ("=guild_id",)

    def get_readonly_fields(self, request, obj=None):
        return ("guild_id", "activity_log") if obj is not None else ()

    @admin.display(description="activity log")
    def activity_log(self, obj: GuildSettings) -> str:
        """The guild's events page (what the bot and the admins did)."""
        return format_html('<a href="{}?q={}">events</a>', reverse("admin:guilds_logentry_changelist"), obj.guild_id)

    @admin.display(description="cookies")
    def leaderboard(self, obj: GuildSettings) -> str:
        return format_html('<a href="{}">leaderboard</a>', reverse("leaderboard:staff", args=[obj.guild_id]))

    def save_model(self, request, obj, form, change):
        """Save through the service: the same rules as chat, and the bots reload the guild."""
        changes = {f: form.cleaned_data[f] for f in GUILD_SETTINGS_EDITABLE if f in form.cleaned_data}
        obj.pk = guild_settings_update(guild_id=obj.guild_id, **changes).pk


class CustomCommandForm(RestrictionFields, forms.ModelForm):
    class Meta:
        model = CustomCommand
        fields = ("guild_id", "name", "template", "enabled", "cooldown_seconds", "cooldown_scope", "note")

    def clean_name(self):
        try:
            return command_name_clean(self.cleaned_data["name"])
        except CustomCommandError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_template(self):
        try:
            compile_template(self.cleaned_data["template"])
        except CustomCommandError as exc:
            raise forms.ValidationError(str(exc)) from None
        return self.cleaned_data["template"]


class CommandAliasInline(admin.TabularInline):
    model = CommandAlias
    extra = 0
    fields = ("name",)
    readonly_fields = ("name",)
    can_delete = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("command")  # each row reads "hi → hello"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(CustomCommand)
class CustomCommandAdmin(CommandPreviewAdmin, NamedColumns, LagTolerantLists, LargeTableAdmin):
    form = CustomCommandForm
    list_display = ("name", "guild", "enabled", "usage_count", "last_used_at", "author", "edited_at")
    guild, author = guild_column, named("author_id", MEMBER, "author")
    # (guild_id, name) is the unique index: a guild's commands by name, a name prefix within a guild.
    search_keys = {"guild": GUILD, "name": NAME}
    scoped_ordering = ("guild_id", "name")
    export_dataset = "commands"
    readonly_fields = (
        "author_id",
        "editor_ids",
        "created_at",
        "edited_at",
        "usage_count",
        "last_used_at",
        "imported_from",
        "imported_source",
    )
    inlines = [CommandAliasInline]

    def get_readonly_fields(self, request, obj=None):
        # A command's guild and name are its identity; rename by adding an alias instead.
        return (*super().get_readonly_fields(request, obj), *(("guild", "guild_id", "name", "author") if obj is not None else ()))

    def save_model(self, request, obj, form, change):
        """Save through the services so the rules and the bot's cache stay in step.

        A new command is created with all of the form's fields in one service call; an
        edit sends ``command_update`` only the fields that changed, as the API does.
        """
        data = form.cleaned_data
        options = {f: data[f] for f in ("cooldown_seconds", "cooldown_scope", "enabled", "note") if f in data}
        if not change:
            created = command_create(
                guild_id=data["guild_id"],
                name=data["name"],
                template=data["template"],
                author_id=None,
                **options,
                **restriction_changes(form, created=True),
            )
            obj.pk = created.pk
        else:
            fields = ("template", *options)
            changes = {f: data[f] for f in fields if f in form.changed_data}
            changes.update(restriction_changes(form, created=False))
            if changes:
                command_update(guild_id=obj.guild_id, name=obj.name, **changes)
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        command_delete(guild_id=obj.guild_id, name=obj.name)


@admin.register(CookieBalance)
class CookieBalanceAdmin(NamedColumns, LagTolerantLists, LargeTableAdmin):
    list_display = ("member", "guild", "balance", "updated_at")
    member, guild = member_column, guild_column
    search_keys = {"guild": GUILD, "member": SearchKey("member_id", names=member_names)}
    # A guild's balances in leaderboard order: the cookie_leaderboard index.
    scoped_ordering = ("guild_id", "-balance", "member_id")
    export_dataset = "cookie-balances"
    readonly_fields = ("member", "guild", "guild_id", "member_id", "balance", "updated_at")
    actions = ["reset_to_zero"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Reset the selected members' cookies to 0", permissions=["change"])
    def reset_to_zero(self, request, queryset):
        """Through ``cookie_reset`` (a ledger row each, logged); the worker then takes their cookie roles."""
        done = 0
        for guild_id, member_id in queryset.values_list("guild_id", "member_id")[:1000]:
            # No actor id: a dashboard user is not a Discord member (the admin log records who).
            done += cookie_reset(guild_id=guild_id, actor_id=None, member_id=member_id, sync_roles_later=True)
        self.message_user(request, f"Reset {done} member(s)' cookies to 0 (at most 1,000 at a time).")

    def changelist_links(self, request, terms):
        links = super().changelist_links(request, terms)
        if isinstance(terms.get("guild"), int):
            links.insert(0, ("Leaderboard", reverse("leaderboard:staff", args=[terms["guild"]])))
        return links


@admin.register(CookieLedger)
class CookieLedgerAdmin(NamedColumns, LagTolerantLists, LargeTableAdmin):
    # Newest first by primary key (rows are appended as changes happen), so the list needs
    # no index of its own on created_at; giver and receiver searches use the ledger_* indexes.
    list_display = ("created_at", "guild", "giver", "receiver", "delta", "reason")
    guild, giver, receiver = guild_column, named("giver_id", MEMBER, "giver"), named("receiver_id", MEMBER, "receiver")
    search_keys = {
        "guild": GUILD,
        "giver": SearchKey("giver_id", names=member_names),
        "receiver": SearchKey("receiver_id", names=member_names),
    }
    export_dataset = "cookie-ledger"
    readonly_fields = (
        "guild",
        "giver",
        "receiver",
        "guild_id",
        "giver_id",
        "receiver_id",
        "delta",
        "reason",
        "message_id",
        "created_at",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CommandAlias)
class CommandAliasAdmin(NamedColumns, LagTolerantLists, LargeTableAdmin):
    list_display = ("name", "command_name", "guild")
    guild = guild_column
    search_keys = {"guild": GUILD, "name": NAME}
    scoped_ordering = ("guild_id", "name")
    raw_id_fields = ("command",)
    readonly_fields = ("guild", "guild_id", "name", "command")

    def get_queryset(self, request):
        # An alias is shown as "hi → hello": its command comes in the same query.
        return super().get_queryset(request).select_related("command")

    @admin.display(description="command")
    def command_name(self, alias: CommandAlias) -> str:
        return alias.command.name

    def has_add_permission(self, request):
        return False


class CookieRoleForm(forms.ModelForm):
    class Meta:
        model = CookieRole
        fields = ("guild_id", "threshold", "role_id")
        help_texts = {
            "threshold": "Members hold the role from this many cookies on (1 or more).",
            "role_id": "The role's id. The bot must have Manage Roles and sit above it, or Discord refuses it.",
        }

    def clean(self):
        cleaned = super().clean() or {}
        threshold = cleaned.get("threshold")
        if threshold is not None and not 1 <= threshold <= MAX_THRESHOLD:
            self.add_error("threshold", f"A threshold is a whole number from 1 to {MAX_THRESHOLD:,}.")
        if cleaned.get("role_id") is not None and cleaned.get("role_id") == cleaned.get("guild_id"):
            self.add_error("role_id", "@everyone can't be a cookie role.")
        guild_id = cleaned.get("guild_id", self.instance.guild_id)
        full = guild_id is not None and CookieRole.objects.filter(guild_id=guild_id).count() >= MAX_COOKIE_ROLES
        if self.instance.pk is None and full:
            raise forms.ValidationError(f"A server has at most {MAX_COOKIE_ROLES} cookie roles; remove one first.")
        return cleaned


@admin.register(CookieRole)
class CookieRoleAdmin(NamedColumns, LagTolerantLists, admin.ModelAdmin):
    """Cookie roles per guild; saved through the services (the same limits as `/cookies roles add`)."""

    form = CookieRoleForm
    guild, role, added_by = guild_column, named("role_id", ROLE, "role"), named("added_by_id", MEMBER, "added by")
    list_display = ("guild", "threshold", "role", "added_by", "created_at")
    list_filter = ()
    search_fields = ("=guild_id", "=role_id")
    ordering = ("guild_id", "threshold")

    def get_readonly_fields(self, request, obj=None):
        # A row is a role's place in one guild: move its threshold, or remove it and add another.
        return ("guild_id", "role_id") if obj is not None else ()

    def save_model(self, request, obj, form, change):
        row, _ = cookie_role_add(guild_id=obj.guild_id, threshold=obj.threshold, role_id=obj.role_id, actor_id=None)
        obj.pk = row.pk

    def delete_model(self, request, obj):
        cookie_role_remove(guild_id=obj.guild_id, role_id=obj.role_id)

    def delete_queryset(self, request, queryset):
        for row in queryset:
            cookie_role_remove(guild_id=row.guild_id, role_id=row.role_id)
