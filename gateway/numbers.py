"""Decimal numbers from headers, query strings and XML: ASCII digits only.

str.isdigit() also accepts digits such as '²' that int() then rejects, so a check with
isdigit() followed by int() turns such input into a 500; every place that reads a number a
client sent uses these instead.
"""

from __future__ import annotations


def is_decimal(text: str) -> bool:
    """True for a non-empty run of ASCII digits."""
    return text.isascii() and text.isdigit()


def decimal(text: str | None) -> int | None:
    """The value of an ASCII decimal number, or None for anything else."""
    if text is None or not is_decimal(text):
        return None
    return int(text)
