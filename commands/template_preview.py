"""A command's reply rendered with sample values, for the dashboard's preview.

The same compiler and renderer as the bot (``commands.command_templates``), with a sample
caller, channel, arguments and count; mentions of the sample member and channel are shown
as Discord shows them ("@Alice", "#general"), and ``{random: …}`` picks with a fixed seed so
that the preview stays put while the admin types.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from commands.command_templates import RenderContext, compile_template
from commands.errors import CustomCommandError

SAMPLE_USER_ID = 100000000000000042
SAMPLE_CHANNEL_ID = 100000000000000043
SAMPLE_USER_NAME = "Alice"
SAMPLE_CHANNEL_NAME = "general"
SAMPLE_ARGS = ("first", "second", "third")
SAMPLE_COOKIES = 42
DEFAULT_GUILD_NAME = "My Server"
MAX_PREVIEW_INPUT = 20_000  # past the template limit, so the preview says "too long" like a save would


@dataclass(frozen=True)
class Preview:
    """The rendering (``text``), or why the template can't be saved (``error``)."""

    text: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"text": self.text, "error": self.error}


def sample_caption(guild_name: str = DEFAULT_GUILD_NAME) -> str:
    """What the sample stands for, in words shown above the preview."""
    return (
        f"As if {SAMPLE_USER_NAME} typed it with the arguments “{' '.join(SAMPLE_ARGS)}” "
        f"in #{SAMPLE_CHANNEL_NAME} of {guild_name}, holding {SAMPLE_COOKIES} cookies."
    )


def command_preview(*, template: object, guild_name: str = DEFAULT_GUILD_NAME) -> Preview:
    """The template rendered with the sample values, or the error the bot and a save would give."""
    if isinstance(template, str) and len(template) > MAX_PREVIEW_INPUT:
        return Preview(error=f"The reply is {len(template)} characters long; the limit is 2000.")
    try:
        compiled = compile_template(template)  # type: ignore[arg-type]  # a non-string is refused there
    except CustomCommandError as exc:
        return Preview(error=str(exc))
    context = RenderContext(
        user_id=SAMPLE_USER_ID,
        user_name=SAMPLE_USER_NAME,
        channel_id=SAMPLE_CHANNEL_ID,
        guild_name=guild_name or DEFAULT_GUILD_NAME,
        args=SAMPLE_ARGS,
        cookies=SAMPLE_COOKIES,
    )
    text = compiled.render(context, rng=random.Random(0))
    text = text.replace(f"<@{SAMPLE_USER_ID}>", f"@{SAMPLE_USER_NAME}").replace(
        f"<#{SAMPLE_CHANNEL_ID}>", f"#{SAMPLE_CHANNEL_NAME}"
    )
    return Preview(text=text)
