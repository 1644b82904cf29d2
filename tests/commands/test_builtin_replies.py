"""The built-ins' answers: numbers are read in ASCII digits only, and odd ones get a clear refusal."""

from __future__ import annotations

import random

import pytest

from commands.builtin_replies import MAX_ROLL, dice_roll, roll_number
from commands.errors import BuiltinInputInvalid


def test_it_rolls_up_to_a_number():
    assert roll_number("20", random.Random(1)).endswith("(1-20)")
    assert roll_number("", random.Random(1)).endswith("(1-100)")
    assert roll_number("9" * 30, random.Random(1)).endswith(f"(1-{MAX_ROLL})")


@pytest.mark.parametrize("text", ["²", "²²", "١٢", "𝟏𝟐", "１２", "3²"])
def test_it_refuses_a_roll_in_other_digits_saying_to_use_0_to_9(text):
    with pytest.raises(BuiltinInputInvalid, match="digits 0-9"):
        roll_number(text)


@pytest.mark.parametrize("text", ["١d6", "2d𝟔", "²d6", "2d6+²"])
def test_it_refuses_dice_in_other_digits(text):
    with pytest.raises(BuiltinInputInvalid):
        dice_roll(text)
