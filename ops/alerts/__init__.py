"""Alerts: conditions evaluated every minute by the worker, posted once when they start and once when they
clear (Discord webhook, mail), listed on the Status page and in /health/ready."""
