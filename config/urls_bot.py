"""The bot process serves no pages (config/settings_bot.py): an empty URLconf for its system checks."""

urlpatterns: list = []
