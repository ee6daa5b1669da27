"""Money is integer cents everywhere inside POPS; decimal strings ("150.00") only at the edges."""

import re

_AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,11})(?:\.([0-9]{1,2}))?$")

AMOUNT_HINT = 'a non-negative decimal string with at most two decimals, like "150.00"'


class AmountError(ValueError):
    """The text is not an amount POPS accepts."""


def parse_amount(text: object) -> int:
    """Parse a non-negative decimal string with at most two decimals into cents.

    >>> parse_amount("150.5")
    15050
    """
    if not isinstance(text, str):
        raise AmountError(f"must be {AMOUNT_HINT}")
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise AmountError(f"must be {AMOUNT_HINT}")
    whole, fraction = match.groups()
    return int(whole) * 100 + int((fraction or "0").ljust(2, "0"))


def format_amount(cents: int) -> str:
    """Cents as a decimal string with two decimals: 15050 -> "150.50"."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole}.{fraction:02d}"


def display_amount(cents: int) -> str:
    """Cents for people: 1234567 -> "$12,345.67"."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{fraction:02d}"
