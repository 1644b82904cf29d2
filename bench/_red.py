"""Red-DiscordBot 3.5.24 for the benches that compare against it: its own venv (bench/red/setup.sh,
outside the repository), an instance in a temporary directory, and the command that starts it
against the fake Discord (bench/red/launch.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RED_VENV = Path(os.environ.get("RED_VENV", "/tmp/red-venv"))
RED_PYTHON = RED_VENV / "bin" / "python"
LAUNCH = HERE / "red" / "launch.py"


class RedUnavailable(Exception):
    """Red could not be installed or set up; the message says why (the row then says so, with no figure)."""


def ensure_installed() -> None:
    done = subprocess.run(
        ["sh", str(HERE / "red" / "setup.sh")], env={**os.environ, "RED_VENV": str(RED_VENV)}, capture_output=True, text=True
    )
    if done.returncode:
        raise RedUnavailable(f"bench/red/setup.sh failed: {(done.stderr or done.stdout).strip()[-500:]}")


class RedInstance:
    """A Red instance with JSON storage in a temporary directory and ``commands`` custom commands
    (cmd0, cmd1, …) in one guild; ``argv(owner)`` starts it, prefix ``!!``, CustomCommands loaded."""

    def __init__(self, guild_id: int, commands: int) -> None:
        ensure_installed()
        self.dir = tempfile.mkdtemp(prefix="guildhall-bench-red-")
        done = subprocess.run(
            [str(RED_PYTHON), str(LAUNCH), "seed", str(guild_id), str(commands)],
            env=self.env(os.environ),
            capture_output=True,
            text=True,
        )
        if done.returncode:
            self.close()
            raise RedUnavailable(f"seeding Red's instance failed: {done.stderr.strip()[-500:]}")

    def env(self, base) -> dict[str, str]:
        return {**base, "RED_BENCH_DIR": self.dir}

    def argv(self, owner_id: int) -> list[str]:
        return [str(RED_PYTHON), str(LAUNCH), "run", str(owner_id)]

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
