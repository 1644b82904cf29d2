"""Admin for the activity log: what the bot and the admins did, per guild."""
