"""Admin for the directory of guilds, roles, channels and members."""
