#!/bin/sh
# Red-DiscordBot 3.5.24 in its own venv, outside the repository (it pins its own discord.py,
# aiohttp and friends; nothing of it goes into .venv or requirements*.txt). The benches that
# measure Red call this when the venv is missing. RED_VENV overrides the place.
set -eu
RED_VENV="${RED_VENV:-/tmp/red-venv}"
if [ -x "$RED_VENV/bin/redbot" ] && "$RED_VENV/bin/python" -c 'import redbot, sys; sys.exit(redbot.__version__ != "3.5.24")' 2>/dev/null; then
    exit 0
fi
python3.11 -m venv "$RED_VENV"
"$RED_VENV/bin/pip" install -q "Red-DiscordBot==3.5.24"
"$RED_VENV/bin/python" -c 'import redbot, discord; print("Red-DiscordBot", redbot.__version__, "discord.py", discord.__version__)'
