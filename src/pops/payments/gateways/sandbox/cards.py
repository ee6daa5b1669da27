"""The Sandbox's test cards and the card checks its tokenizer makes.

Card numbers exist here only as the published test numbers and as function arguments on their
way to a token; nothing in the Sandbox stores one.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass

from pops.core import card_numbers
from pops.payments.gateways.base import DeclineCode


class Outcome(enum.StrEnum):
    """What a charge with a card does: approve, decline with a code, or approve and time out."""

    APPROVED = "approved"
    DECLINED = DeclineCode.DECLINED.value
    INSUFFICIENT_FUNDS = DeclineCode.INSUFFICIENT_FUNDS.value
    EXPIRED_CARD = DeclineCode.EXPIRED_CARD.value
    INCORRECT_CVV = DeclineCode.INCORRECT_CVV.value
    PROCESSING_ERROR = DeclineCode.PROCESSING_ERROR.value
    NOT_A_TEST_CARD = DeclineCode.NOT_A_TEST_CARD.value
    APPROVED_THEN_TIMEOUT = "approved_then_timeout"

    @property
    def approves(self) -> bool:
        return self in (Outcome.APPROVED, Outcome.APPROVED_THEN_TIMEOUT)

    @property
    def decline_code(self) -> DeclineCode:
        return DeclineCode(self.value)


@dataclass(frozen=True)
class TestCard:
    number: str
    outcome: Outcome
    label: str

    __test__ = False  # not a pytest test class

    @property
    def last4(self) -> str:
        return self.number[-4:]


TEST_CARDS: tuple[TestCard, ...] = (
    TestCard("4111111111111111", Outcome.APPROVED, "Approved"),
    TestCard("4000000000000002", Outcome.DECLINED, "Declined"),
    TestCard("4000000000009995", Outcome.INSUFFICIENT_FUNDS, "Insufficient funds"),
    TestCard("4000000000000069", Outcome.EXPIRED_CARD, "Expired card"),
    TestCard("4000000000000127", Outcome.INCORRECT_CVV, "Incorrect CVV"),
    TestCard("4000000000000119", Outcome.PROCESSING_ERROR, "Processing error"),
    TestCard("4000000000000341", Outcome.APPROVED_THEN_TIMEOUT, "Approved, answer times out"),
)
_OUTCOME_BY_NUMBER = {card.number: card.outcome for card in TEST_CARDS}


class CardError(ValueError):
    """Card input the tokenizer refuses; `field` names the input it concerns."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def luhn_valid(digits: str) -> bool:
    """The Luhn check of a string of ASCII digits (the same check the card-number guard uses)."""
    return card_numbers.luhn_valid(digits.encode("ascii"))


def brand_of(number: str) -> str:
    if number.startswith("4"):
        return "Visa"
    if re.match(r"5[1-5]|2(2[2-9]|[3-6]\d|7[01]|720)", number):
        return "Mastercard"
    if number.startswith(("34", "37")):
        return "American Express"
    if number.startswith(("6011", "65")):
        return "Discover"
    return "Card"


def outcome_of(number: str) -> Outcome:
    return _OUTCOME_BY_NUMBER.get(number, Outcome.NOT_A_TEST_CARD)


def clean_number(value: object) -> str:
    if not isinstance(value, str):
        raise CardError("card_number", "Enter the card number.")
    digits = re.sub(r"[ -]", "", value)
    if not digits:
        raise CardError("card_number", "Enter the card number.")
    if not digits.isascii() or not digits.isdigit() or not 13 <= len(digits) <= 19:
        raise CardError("card_number", "A card number has 13 to 19 digits.")
    if not luhn_valid(digits):
        raise CardError("card_number", "This card number is not valid.")
    return digits


def parse_expiry(value: object, today: dt.date) -> tuple[int, int]:
    """(month, four-digit year) from "MM/YY"; the card must not have expired."""
    if not isinstance(value, str):
        raise CardError("exp", "Enter the expiration date as MM/YY.")
    match = re.fullmatch(r"\s*([0-9]{2})\s*/\s*([0-9]{2})\s*", value)
    if not match or not 1 <= int(match[1]) <= 12:
        raise CardError("exp", "Enter the expiration date as MM/YY.")
    month, year = int(match[1]), 2000 + int(match[2])
    if has_expired(month, year, today):
        raise CardError("exp", "This card has expired.")
    return month, year


def has_expired(month: int, year: int, today: dt.date) -> bool:
    """A card is good through the last day of its expiry month."""
    return (year, month) < (today.year, today.month)


def check_cvv(value: object) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{3,4}", value):
        raise CardError("cvv", "The CVV has 3 or 4 digits.")
