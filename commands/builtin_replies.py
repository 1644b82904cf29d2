"""The built-in commands' answers (dice, choices, countdowns), kept free of Discord."""

from __future__ import annotations

import random
import re
from datetime import date

from commands.errors import BuiltinInputInvalid
from config.numbers import has_non_ascii_digit, parse_int

MAX_DICE = 100
MAX_SIDES = 1000
MAX_MODIFIER = 100_000
MAX_ROLL = 10**12
# ASCII digits only (``\d`` also matches ``١`` and ``𝟏``).
_DICE = re.compile(r"^\s*([0-9]{0,3})\s*d\s*([0-9]{1,4})\s*(?:([+-])\s*([0-9]{1,6}))?\s*$", re.IGNORECASE)
EIGHT_BALL = (
    "It is certain.",
    "Without a doubt.",
    "Yes, definitely.",
    "You may rely on it.",
    "Most likely.",
    "Outlook good.",
    "Signs point to yes.",
    "Reply hazy, try again.",
    "Ask again later.",
    "Better not tell you now.",
    "Cannot predict now.",
    "Don't count on it.",
    "My reply is no.",
    "My sources say no.",
    "Outlook not so good.",
    "Very doubtful.",
)


def dice_roll(expression: str, rng: random.Random | None = None) -> str:
    """Roll ``XdY+Z`` (X up to 100 dice of up to 1000 sides) and describe the result."""
    match = _DICE.match(expression or "")
    if match is None:
        raise BuiltinInputInvalid("Roll dice like `2d6`, `d20` or `3d8+2`.")
    count = int(match.group(1) or 1)
    sides = int(match.group(2))
    if not 1 <= count <= MAX_DICE or not 2 <= sides <= MAX_SIDES:
        raise BuiltinInputInvalid(f"Use 1 to {MAX_DICE} dice with 2 to {MAX_SIDES} sides.")
    modifier = int(match.group(4) or 0) * (-1 if match.group(3) == "-" else 1)
    rng = rng or random.SystemRandom()
    rolls = [rng.randint(1, sides) for _ in range(count)]
    total = sum(rolls) + modifier
    shown = " + ".join(map(str, rolls[:20])) + (" + …" if count > 20 else "")
    mod_text = f" {'+' if modifier >= 0 else '-'} {abs(modifier)}" if modifier else ""
    return f"🎲 {count}d{sides}{match.group(3) or ''}{match.group(4) or ''}: {shown}{mod_text} = **{total}**"


def roll_number(text: str, rng: random.Random | None = None) -> str:
    """``roll`` with nothing → 1-100; with a number N → 1-N; with dice → a dice roll."""
    text = (text or "").strip()
    rng = rng or random.SystemRandom()
    if not text:
        return f"🎲 {rng.randint(1, 100)} (1-100)"
    top = parse_int(text, minimum=0)
    if top is None and has_non_ascii_digit(text):
        raise BuiltinInputInvalid("Roll a number written with the digits 0-9, like `roll 20`.")
    if top is not None:
        top = min(top, MAX_ROLL)
        if top < 2:
            raise BuiltinInputInvalid("Roll a number of 2 or more, like `roll 20`.")
        return f"🎲 {rng.randint(1, top)} (1-{top})"
    return dice_roll(text, rng)


def choose_one(text: str, rng: random.Random | None = None) -> str:
    """Pick one of the options, split by `|`, commas or spaces (in that order of preference)."""
    text = (text or "").strip()
    for separator in ("|", ","):
        if separator in text:
            options = [o.strip() for o in text.split(separator) if o.strip()]
            break
    else:
        options = text.split()
    if len(options) < 2:
        raise BuiltinInputInvalid("Give me at least two options, like `choose tea coffee` or `choose red | dark blue`.")
    return (rng or random.SystemRandom()).choice(options)[:1900]


def countdown_text(target_text: str, today: date) -> str:
    """Days until (or since) a ``YYYY-MM-DD`` date."""
    try:
        target = date.fromisoformat((target_text or "").strip())
    except ValueError:
        raise BuiltinInputInvalid("Give a date as YYYY-MM-DD, like `countdown 2027-01-01`.") from None
    days = (target - today).days
    if days > 0:
        return f"⏳ {days} day{'s' if days != 1 else ''} until {target.isoformat()}."
    if days == 0:
        return f"🎉 {target.isoformat()} is today!"
    return f"{target.isoformat()} was {-days} day{'s' if days != -1 else ''} ago."
