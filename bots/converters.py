"""Arguments typed in chat, read the one way the services read them.

discord.py reads an ``int`` parameter with ``int()``, which takes ``١٢`` as 12 and ``𝟏𝟐`` as
12; a whole number here is ASCII 0-9 only (config.numbers). The slash form stays an integer
option, which Discord itself checks, so only the prefix form needs reading.
"""

from __future__ import annotations

from typing import Annotated

import discord
from discord import app_commands
from discord.ext import commands

from config.numbers import ASCII_DIGITS_HELP, parse_int


class WholeNumberConverter(commands.Converter[int], app_commands.Transformer):
    """A whole number in ASCII digits (an optional leading ``-``); anything else is a clear refusal."""

    async def convert(self, ctx: commands.Context, argument: str) -> int:
        value = parse_int(argument)
        if value is None:
            raise commands.BadArgument(
                f"`{discord.utils.escape_markdown(argument[:20])}` is not a whole number. {ASCII_DIGITS_HELP}"
            )
        return value

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.integer

    async def transform(self, interaction: discord.Interaction, value: int, /) -> int:
        return int(value)  # Discord sends an integer option as a JSON number


WholeNumber = Annotated[int, WholeNumberConverter]
