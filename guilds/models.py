"""What Discord told the bot about each guild, and what the bot did there.

The directory (guilds, roles, channels, members) is written by the bot in batches from
gateway events and from the member data that arrives with messages and interactions, so
that pages, the API and exports can show names next to the ids. Rows are never deleted
when something goes away on Discord: ``left_at`` / ``deleted_at`` mark it, and the data
that refers to it (timers, cookies) is kept.

The activity log is one row per thing the bot or an admin did (a timer set, a cookie
balance reset, a command edited, an expiry that failed), written in the same transaction
as the change; the bot posts unposted rows to the guild's log channel in batches.

This app sits below ``commands`` and ``timers``: both write log entries and read who left.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


def name_key(name: str | None) -> str:
    """The form names are searched by: case-folded in Python, so both engines compare the same text."""
    return (name or "").casefold()[:100]


def named(obj: models.Model, kind: str, item_id: int | None, *, guild_id: int | None = None) -> str:
    """How a model's ``__str__`` names an id: the directory's name when a page attached them, else "<kind> <id>".

    ``kind`` is "guild", "role", "channel" or "member" (a member also needs ``guild_id``).
    Admin pages attach a page's names to the objects they show
    (``guilds.admin_titles.names_attach``, one query for all of them); without them this is
    the id, so ``__str__`` never queries.
    """
    names = getattr(obj, "_directory_names", None)
    label = ""
    if names is not None and item_id is not None:
        label = names.member(guild_id, item_id) if kind == "member" else getattr(names, kind)(item_id)
    return label or f"{kind} {item_id}"


def names_attached(obj: models.Model) -> bool:
    """Whether a page attached the directory's names to ``obj`` (``__str__`` may then name related rows)."""
    return getattr(obj, "_directory_names", None) is not None


class Guild(models.Model):
    guild_id = models.BigIntegerField(unique=True)
    name = models.CharField(max_length=100, blank=True)
    name_key = models.CharField(max_length=100, blank=True, db_index=True, editable=False)
    # The bot was removed from the guild (GUILD_DELETE without ``unavailable``).
    left_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name or f"guild {self.guild_id}"


class Role(models.Model):
    guild_id = models.BigIntegerField()
    role_id = models.BigIntegerField(unique=True)
    name = models.CharField(max_length=100, blank=True)
    name_key = models.CharField(max_length=100, blank=True, editable=False)
    position = models.IntegerField(default=0)
    deleted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["guild_id", "name_key"], name="directory_role_name")]

    def __str__(self) -> str:
        return f"@{self.name}" if self.name else f"role {self.role_id}"


class Channel(models.Model):
    guild_id = models.BigIntegerField()
    channel_id = models.BigIntegerField(unique=True)
    name = models.CharField(max_length=100, blank=True)
    name_key = models.CharField(max_length=100, blank=True, editable=False)
    kind = models.SmallIntegerField(default=0, help_text="Discord's channel type.")
    deleted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["guild_id", "name_key"], name="directory_channel_name")]

    def __str__(self) -> str:
        return f"#{self.name}" if self.name else f"channel {self.channel_id}"


class Member(models.Model):
    """A member of a guild as last seen: names, and whether they have left."""

    guild_id = models.BigIntegerField()
    user_id = models.BigIntegerField()
    username = models.CharField(max_length=32, blank=True, help_text="The unique @name.")
    global_name = models.CharField(max_length=32, blank=True, help_text="The display name across Discord.")
    nick = models.CharField(max_length=32, blank=True, help_text="The nickname in this guild.")
    # Case-folded copies for the admin's name search (usernames are lower case already).
    global_key = models.CharField(max_length=32, blank=True, editable=False)
    nick_key = models.CharField(max_length=32, blank=True, editable=False)
    bot = models.BooleanField(default=False)
    joined_at = models.DateTimeField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True, help_text="Set when the member left; cleared on rejoin.")
    seen_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["guild_id", "user_id"], name="directory_member_unique")]
        indexes = [
            models.Index(fields=["guild_id", "username"], name="directory_member_username"),
            models.Index(fields=["guild_id", "nick_key"], name="directory_member_nick"),
            models.Index(fields=["guild_id", "global_key"], name="directory_member_global"),
            # Toplists leave out members who left: the few departed rows of a guild.
            models.Index(fields=["guild_id", "user_id"], condition=Q(left_at__isnull=False), name="directory_member_left"),
        ]

    def __str__(self) -> str:
        if not self.username:
            return f"member {self.user_id}"
        shown = self.display_name
        return f"{shown} (@{self.username})"

    @property
    def display_name(self) -> str:
        return self.nick or self.global_name or self.username


class LogSettings(models.Model):
    """Where a guild's activity log is posted; a missing row means not posted (still kept)."""

    guild_id = models.BigIntegerField(unique=True)
    channel_id = models.BigIntegerField(null=True, blank=True)
    set_by_id = models.BigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The last time the bot could not post there (missing permission, channel deleted): until the
    # channel is set again or POST_RETRY passes, entries are kept without trying (no 403 storm).
    post_error = models.CharField(max_length=200, blank=True)
    post_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "log settings"
        verbose_name_plural = "log settings"

    def __str__(self) -> str:
        channel = named(self, "channel", self.channel_id) if self.channel_id else "not posted"
        return f"{named(self, 'guild', self.guild_id)} → {channel}"


class PostOutcome(models.TextChoices):
    POSTED = "posted", "posted"
    NO_CHANNEL = "no_channel", "kept (no log channel)"
    FORBIDDEN = "forbidden", "kept (the bot may not post there)"
    GONE = "gone", "kept (the channel is gone)"


class LogEntry(models.Model):
    """One thing done in a guild, by whom, for the log channel and the dashboard."""

    guild_id = models.BigIntegerField()
    kind = models.CharField(max_length=32, help_text="For instance timer.set, timer.expire_failed, cookie.reset.")
    actor_id = models.BigIntegerField(null=True, blank=True, help_text="Who asked; empty for the bot itself.")
    member_id = models.BigIntegerField(null=True, blank=True, help_text="The member it was about.")
    role_id = models.BigIntegerField(null=True, blank=True)
    text = models.CharField(max_length=500)
    failed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Posting: claimed with a lease (like the sweeps), marked when the message carrying it is sent
    # (or when it can't be: no log channel, or the bot may not post there; ``post_outcome`` says which).
    posted_at = models.DateTimeField(null=True, blank=True, help_text="When the entry was posted or given up on.")
    post_lease_until = models.DateTimeField(null=True, blank=True)
    post_outcome = models.CharField(max_length=12, choices=PostOutcome.choices, blank=True)

    class Meta:
        verbose_name_plural = "log entries"
        indexes = [
            models.Index(fields=["guild_id", "-id"], name="log_guild_recent"),
            models.Index(fields=["guild_id", "id"], condition=Q(posted_at__isnull=True), name="log_unposted"),
            # The events page narrowed to a kind, or to failures, within a guild: index ranges.
            models.Index(fields=["guild_id", "kind", "-id"], name="log_guild_kind"),
            models.Index(fields=["guild_id", "-id"], condition=Q(failed=True), name="log_guild_failed"),
        ]

    def __str__(self) -> str:
        # The text names people by mention (<@id>): pages show it with names, not here.
        when = f" at {self.created_at:%Y-%m-%d %H:%M}" if self.created_at else ""
        return f"{self.kind}{when}"
