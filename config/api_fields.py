"""Field types shared by the API's schemas: Discord ids in and out, seconds, plain text, paging, request bodies.

Discord ids are 64-bit; JavaScript numbers hold 53 bits, so responses carry them as
strings, and requests may send either a string of digits or a number.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from ninja import Query
from pydantic import (
    BaseModel,
    BeforeValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from config.pagination import DEFAULT_LIMIT, MAX_LIMIT

MAX_ID = 2**63 - 1


def _at_most(limit: str) -> str:
    """A regular expression for the numbers of exactly ``len(limit)`` digits that are at most ``limit``."""
    parts = []
    for i, digit in enumerate(limit):
        low = "1" if i == 0 else "0"
        if int(digit) > int(low):
            below = low if int(digit) - 1 == int(low) else f"[{low}-{int(digit) - 1}]"
            rest = len(limit) - i - 1
            parts.append(limit[:i] + below + (f"[0-9]{{{rest}}}" if rest else ""))
    return "|".join([*parts, limit])


# Documented for an id sent as a string: every number from 1 to MAX_ID (up to 18 digits, or 19 at most
# 9223372036854775807), exactly what the validation accepts, so the schema neither admits an id that is
# refused nor refuses one that is accepted.
ID_PATTERN = rf"^(?:[1-9][0-9]{{0,17}}|{_at_most(str(MAX_ID))})$"
_DIGITS = re.compile(r"^[1-9][0-9]{0,18}$")  # what is accepted: any id up to MAX_ID, checked below
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


def whole_number_parse(value: Any) -> Any:
    """A request body's integer: 5 or 5.0 (JSON's integers include 5.0), never true; anything else as it is.

    Use as ``Annotated[int, Field(ge=…, le=…), Strict(), BeforeValidator(whole_number_parse)]``:
    the Field first, so that the limits apply to the integer and reach the schema; Strict,
    so that "5" and 5.5 stay refused.
    """
    if isinstance(value, bool):
        raise ValueError("a number is wanted here, not true or false")
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT_FLOAT:
        return int(value)
    return value


def minutes_as_text(value: Any) -> Any:
    """A bare number of minutes (``90``, ``90.0``) as the text the duration parser reads; anything else as it is."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT_FLOAT:
        value = int(value)
    return str(value) if isinstance(value, int) else value


def _no_nul(value: Any) -> Any:
    # PostgreSQL text can't hold NUL; refuse it here rather than fail in the database.
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    return value


class _NoNul:
    """Annotation for text fields: refuses NUL characters, and says so in the JSON schema (a pattern)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(_no_nul, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = "^[^\x00]*$"
        return json_schema


NoNul = _NoNul()
"""Put last in a text field's ``Annotated[str, Field(max_length=…), NoNul]`` (after the Field, whose
limits then apply to the string itself and read "at most N characters")."""


class RequestBody(BaseModel):
    """The base of request bodies: a JSON object. (ninja's Schema reads attributes of any value, so ``[]`` passed.)"""


# Cursors are django.core.signing tokens: URL-safe base64 and colons.
Cursor = Query(None, max_length=1000, pattern=r"^[A-Za-z0-9_:=-]*$", description="`next_cursor` of the previous page.")
Limit = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Rows per page.")
