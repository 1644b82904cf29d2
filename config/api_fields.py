"""Field types shared by the API's schemas: Discord ids in and out, seconds, plain text.

Discord ids are 64-bit; JavaScript numbers hold 53 bits, so responses carry them as
strings, and requests may send either a string of digits or a number.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

MAX_ID = 2**63 - 1
ID_PATTERN = r"^[1-9][0-9]{0,18}$"
_DIGITS = re.compile(ID_PATTERN)
_EXACT_FLOAT = 2**53  # JSON may write 8 as 8.0; floats are exact only this far


def discord_id_parse(value: Any) -> int:
    """A Discord id from a string of ASCII digits or a whole number, 1 to 2**63-1; else ValueError."""
    if isinstance(value, bool):
        raise ValueError('a Discord id is a number written as a string, like "123456789012345678"')
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value.strip()):
            raise ValueError('a Discord id is 1 to 19 digits with no leading zero, like "123456789012345678"')
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer() and abs(value) < _EXACT_FLOAT:
        value = int(value)
    if not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise ValueError(f"a Discord id is a whole number from 1 to {MAX_ID}")
    return value


DiscordId = Annotated[
    int,
    BeforeValidator(discord_id_parse),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": ID_PATTERN},
                {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            ],
            "description": "A Discord id (snowflake); send it as a string.",
        },
        mode="validation",
    ),
]
"""A Discord id in a request: ``"123…"`` or ``123…``."""

Snowflake = Annotated[
    int,
    PlainSerializer(lambda v: str(v), return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]+$", "description": "A Discord id (snowflake)."}),
]
"""A Discord id in a response, written as a string."""

SnowflakeList = Annotated[
    list[int],
    PlainSerializer(lambda v: [str(i) for i in v], return_type=list[str]),
    WithJsonSchema({"type": "array", "items": {"type": "string", "pattern": "^[0-9]+$"}}),
]

Seconds = Annotated[
    timedelta,
    PlainSerializer(lambda v: int(v.total_seconds()), return_type=int),
    WithJsonSchema({"type": "integer", "description": "Seconds."}),
]


def _no_nul(value: Any) -> Any:
    # PostgreSQL text can't hold NUL; refuse it here rather than fail in the database.
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    return value


NoNul = BeforeValidator(_no_nul)
"""Put in a text field's ``Annotated[str, NoNul, Field(max_length=…)]``: refuses NUL characters."""
