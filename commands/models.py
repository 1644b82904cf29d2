"""Custom commands, cookies and the per-guild settings that govern them.

Discord ids (guilds, members, roles, channels, messages) are 64-bit snowflakes kept in
BigIntegerFields; they are plain values, not foreign keys, because Discord owns them.
"""

from __future__ import annotations

from typing import cast

from django.db import models

from guilds.models import named

DEFAULT_PREFIX = "!!"


def cookies(count: int) -> str:
    """ "1 cookie", "1,200 cookies": a count as ``__str__`` shows it."""
    return f"{count:,} cookie{'' if abs(count) == 1 else 's'}"


class GuildSettings(models.Model):
    """One row per guild that changed a default. A missing row means all defaults."""

    guild_id = models.BigIntegerField(unique=True)
    prefix = models.CharField(max_length=8, default=DEFAULT_PREFIX)
    manager_role_id = models.BigIntegerField(null=True, blank=True, help_text="May manage custom commands.")
    cookie_pair_cooldown_seconds = models.PositiveIntegerField(
        default=60, help_text="Seconds before the same giver may change the same receiver again (0 = off)."
    )
    cookie_daily_cap = models.PositiveIntegerField(
        null=True, blank=True, default=50, help_text="Gives per giver per 24 hours (empty = no cap)."
    )
    cookie_message_cap = models.PositiveSmallIntegerField(
        default=5, help_text="Mentions followed by ++/-- that count in one message."
    )
    cookie_allow_negative = models.BooleanField(default=True)
    cookie_dm_receiver = models.BooleanField(default=False, help_text="DM the receiver when their count changes.")
    public_leaderboard = models.BooleanField(
        default=False,
        help_text="Publish the cookie leaderboard (ranks, member ids, counts) at /leaderboard/<guild id>/, without login.",
    )
    cookie_roles_keep_all = models.BooleanField(
        default=True, help_text="Keep every cookie role earned; off keeps only the highest."
    )
    thanks_enabled = models.BooleanField(default=False, help_text="'thanks @user' gives a cookie, under the ++ rules.")
    thanks_words = models.JSONField(default=list, blank=True, help_text="Phrases that count as thanks (empty = the defaults).")
    command_refusal = models.CharField(
        max_length=8,
        choices=[("reply", "a short reply"), ("silent", "silent")],
        default="reply",
        help_text="What a member sees when a restricted command refuses them.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "guild settings"
        verbose_name_plural = "guild settings"

    def __str__(self) -> str:
        return named(self, "guild", self.guild_id)


class CooldownScope(models.TextChoices):
    MEMBER = "member", "per member"
    CHANNEL = "channel", "per channel"
    GUILD = "guild", "per guild"


class CustomCommand(models.Model):
    """A chat command whose reply is a template (data, never code)."""

    guild_id = models.BigIntegerField()
    name = models.CharField(max_length=32)
    template = models.TextField()
    author_id = models.BigIntegerField(null=True, blank=True)
    editor_ids = models.JSONField(default=list, blank=True, help_text="Members who edited it, oldest first.")
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    usage_count = models.PositiveBigIntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)
    cooldown_seconds = models.PositiveIntegerField(default=0)
    cooldown_scope = models.CharField(max_length=8, choices=CooldownScope.choices, default=CooldownScope.MEMBER)
    enabled = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True, help_text="Why it is disabled, for instance.")
    # An import's key (``praetbot:<original name>``), so that running the import again finds the row.
    imported_from = models.CharField(max_length=200, blank=True, help_text="The bot and name it was imported from.")
    imported_source = models.TextField(blank=True, help_text="What the import was given: the reply text or the JavaScript body.")
    # Restrictions, checked from the message or interaction data without a query.
    allowed_role_ids = models.JSONField(
        default=list, blank=True, help_text="Only members with one of these roles (empty = anyone)."
    )
    denied_role_ids = models.JSONField(default=list, blank=True, help_text="Never members with one of these roles.")
    allowed_channel_ids = models.JSONField(default=list, blank=True, help_text="Only in these channels (empty = anywhere).")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["guild_id", "name"], name="command_unique_name_per_guild"),
        ]
        indexes = [
            # Search by name prefix and the admin's sorted lists.
            models.Index(fields=["guild_id", "-usage_count"], name="command_guild_usage"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({named(self, 'guild', self.guild_id)})"


class CommandCooldown(models.Model):
    """Until when one caller (a member, a channel or the whole guild) must wait to use a command again.

    A row, not a cache entry: a cooldown is claimed with one conditional UPDATE or INSERT,
    atomic across processes on SQLite and PostgreSQL alike, and a row is never culled.
    """

    command = models.ForeignKey(CustomCommand, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=8, choices=CooldownScope.choices)
    scope_id = models.BigIntegerField(help_text="The member or channel id; 0 for a guild-wide cooldown.")
    until = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["command", "scope", "scope_id"], name="cooldown_unique_caller"),
        ]
        indexes = [
            # Pruning the cooldowns that have run out.
            models.Index(fields=["until"], name="cooldown_until"),
        ]

    def __str__(self) -> str:
        # The command when it was loaded with the row (a delete confirmation's), else its number: never a query.
        command = cast("CustomCommand | None", CommandCooldown.command.field.get_cached_value(self, None))
        if self.scope == CooldownScope.MEMBER:
            caller = named(self, "member", self.scope_id, guild_id=command.guild_id if command is not None else None)
        elif self.scope == CooldownScope.CHANNEL:
            caller = named(self, "channel", self.scope_id)
        else:
            caller = "the whole guild"
        what = command.name if command is not None else f"command #{self.command_id}"
        return f"{what}, for {caller} until {self.until:%H:%M:%S} UTC"


class CommandAlias(models.Model):
    """Another name for a command; names and aliases share one namespace per guild."""

    guild_id = models.BigIntegerField()
    name = models.CharField(max_length=32)
    command = models.ForeignKey(CustomCommand, on_delete=models.CASCADE, related_name="aliases")

    class Meta:
        verbose_name_plural = "command aliases"
        constraints = [
            models.UniqueConstraint(fields=["guild_id", "name"], name="alias_unique_name_per_guild"),
        ]

    def __str__(self) -> str:
        # The command's name when it was loaded with the alias (select_related, a formset): never a query.
        command = cast("CustomCommand | None", CommandAlias.command.field.get_cached_value(self, None))
        return f"{self.name} → {command.name if command is not None else f'command #{self.command_id}'}"


class CookieBalance(models.Model):
    """A member's cookie count in one guild; changed only with atomic increments."""

    guild_id = models.BigIntegerField()
    member_id = models.BigIntegerField()
    balance = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["guild_id", "member_id"], name="cookie_unique_member_per_guild"),
        ]
        indexes = [
            # Leaderboard pages and rank: highest first, ties by member id.
            models.Index(fields=["guild_id", "-balance", "member_id"], name="cookie_leaderboard"),
        ]

    def __str__(self) -> str:
        member = named(self, "member", self.member_id, guild_id=self.guild_id)
        return f"{member} in {named(self, 'guild', self.guild_id)}: {cookies(self.balance)}"


class CookieRole(models.Model):
    """A role a member holds while their balance is at or above ``threshold``."""

    guild_id = models.BigIntegerField()
    threshold = models.BigIntegerField()
    role_id = models.BigIntegerField()
    added_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["guild_id", "role_id"], name="cookie_role_unique")]
        indexes = [models.Index(fields=["guild_id", "threshold"], name="cookie_role_threshold")]

    def __str__(self) -> str:
        return f"{named(self, 'role', self.role_id)} from {cookies(self.threshold)} ({named(self, 'guild', self.guild_id)})"


class LedgerReason(models.TextChoices):
    GIVE = "give", "give"
    TAKE = "take", "take"
    ADMIN_SET = "admin_set", "set by an admin"
    ADMIN_RESET = "admin_reset", "reset by an admin"
    THANKS = "thanks", "thanks"
    IMPORT = "import", "import"
    CARRIED = "carried", "carried forward (older rows archived)"


class CookieLedger(models.Model):
    """One row per change of a balance, written in the same transaction as the change."""

    guild_id = models.BigIntegerField()
    giver_id = models.BigIntegerField(null=True, blank=True)
    receiver_id = models.BigIntegerField()
    delta = models.BigIntegerField()
    reason = models.CharField(max_length=16, choices=LedgerReason.choices)
    message_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=False)

    class Meta:
        verbose_name = "cookie ledger entry"
        verbose_name_plural = "cookie ledger"
        indexes = [
            # Pair cooldown: the last change by this giver to this receiver.
            models.Index(fields=["guild_id", "giver_id", "receiver_id", "-created_at"], name="ledger_pair_recent"),
            # Daily cap: gives by this giver in the last 24 hours.
            models.Index(fields=["guild_id", "giver_id", "-created_at"], name="ledger_giver_recent"),
            # The guild's ledger, newest first (API and exports page through it).
            models.Index(fields=["guild_id", "-created_at", "-id"], name="ledger_guild_recent"),
            # A member's history on their page and in the API.
            models.Index(fields=["guild_id", "receiver_id", "-created_at"], name="ledger_receiver_recent"),
        ]

    def __str__(self) -> str:
        giver = named(self, "member", self.giver_id, guild_id=self.guild_id) if self.giver_id else "an admin"
        return f"{giver} → {named(self, 'member', self.receiver_id, guild_id=self.guild_id)}: {self.delta:+d}"


class CookiePeriod(models.TextChoices):
    """The rolling toplists; all time is the balance itself (``CookieBalance``)."""

    WEEK = "7d", "last 7 days"
    MONTH = "30d", "last 30 days"


PERIOD_DAYS = {CookiePeriod.WEEK: 7, CookiePeriod.MONTH: 30}
# The ledger reasons the rolling toplists count: what members gave each other, not what admins set.
TOPLIST_REASONS = ("give", "take", "thanks")


class CookieDay(models.Model):
    """What a member got from other members on one UTC day (gives less takes, plus thanks).

    Kept in the same transaction as each ledger row of those reasons; the rolling windows are
    built from these and lose a day as it falls out of them. Days older than the longest
    window are pruned; the ledger stays the truth (``manage.py cookie_toplists_rebuild``).
    """

    guild_id = models.BigIntegerField()
    member_id = models.BigIntegerField()
    day = models.DateField()
    total = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["guild_id", "member_id", "day"], name="cookie_day_unique")]
        indexes = [models.Index(fields=["day", "guild_id"], name="cookie_day_by_day")]

    def __str__(self) -> str:
        return f"{self.member_id} on {self.day}: {self.total:+d} (guild {self.guild_id})"


class CookieWindow(models.Model):
    """A member's total over a rolling window (7 or 30 days), kept incrementally: a page is an index range."""

    guild_id = models.BigIntegerField()
    member_id = models.BigIntegerField()
    period = models.CharField(max_length=3, choices=CookiePeriod.choices)
    total = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["guild_id", "period", "member_id"], name="cookie_window_unique"),
        ]
        indexes = [
            # Toplist pages and ranks per period: highest first, ties by member id.
            models.Index(fields=["guild_id", "period", "-total", "member_id"], name="cookie_window_top"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.total} over {self.period} (guild {self.guild_id})"


class CookieWindowClock(models.Model):
    """The first day each rolling window holds; the daily roll-off moves it on, one day per transaction."""

    period = models.CharField(max_length=3, choices=CookiePeriod.choices, unique=True)
    first_day = models.DateField()

    def __str__(self) -> str:
        return f"{self.period} from {self.first_day}"
