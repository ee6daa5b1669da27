"""S-4 in the database itself: a stored card's last 4 are exactly four digits, its brand is a
short name with no digit in it, its expiry month is a month. The rows are written with the ORM's
`create`, which validates nothing, so the database's check constraints are what refuse them, on
SQLite as on PostgreSQL."""

from typing import Any

import pytest
from django.db import DataError, IntegrityError, transaction

from pops.core.audit import Actor
from pops.groups.services import prepare_practice
from pops.ledger.models import Guarantor
from pops.payments.merchant_accounts import default_account
from pops.payments.models import StoredCard
from tests.conftest import run_import
from tests.test_import_documents import small_document

pytestmark = pytest.mark.django_db

GOOD = {"brand": "Visa", "last4": "1111", "exp_month": 12, "exp_year": 2030}


@pytest.fixture
def owner() -> dict[str, Any]:
    practice = run_import(small_document()).practice
    prepare_practice(practice, actor=Actor.command("tests"))
    return {
        "practice": practice,
        "guarantor": Guarantor.objects.filter(practice=practice).first(),
        "merchant_account": default_account(practice),
    }


def store(owner: dict[str, Any], token: str, **card: Any) -> StoredCard:
    with transaction.atomic():
        return StoredCard.objects.create(**owner, vault_token=token, **{**GOOD, **card})


def test_a_card_of_brand_last_4_and_expiry_is_stored(owner):
    for index, brand in enumerate(["Visa", "Mastercard", "American Express", "Card"]):
        store(owner, f"vlt_{index}", brand=brand, exp_month=1 + index)

    assert StoredCard.objects.count() == 4


@pytest.mark.parametrize(
    "last4",
    [
        "111",  # too short
        "",
        "11a1",  # not digits
        "\u0661" * 4,  # digits, but Arabic-Indic ones
        "111\n",  # "$" in a regular expression would let a trailing newline through
        "11111",  # longer than the column (PostgreSQL refuses it as too long for varchar(4))
    ],
)
def test_last_4_must_be_exactly_four_digits(owner, last4):
    with pytest.raises((IntegrityError, DataError)):
        store(owner, "vlt_1", last4=last4)
    assert not StoredCard.objects.exists()


@pytest.mark.parametrize(
    "brand",
    [
        "",
        "Visa 4111111111111111",  # a card number cannot hide in the brand
        "Visa 4",
        "A brand name much too long",
    ],
)
def test_the_brand_is_a_short_name_without_digits(owner, brand):
    with pytest.raises((IntegrityError, DataError)):
        store(owner, "vlt_1", brand=brand)
    assert not StoredCard.objects.exists()


@pytest.mark.parametrize("month", [0, 13, 99])
def test_the_expiry_month_is_a_month(owner, month):
    with pytest.raises(IntegrityError):
        store(owner, "vlt_1", exp_month=month)
    assert not StoredCard.objects.exists()
