"""The migrations build exactly what the models say: no model change is left without its
migration, and the stored-card table the database really holds has only the allowed columns
(S-4; tests/payments/test_stored_cards.py checks the same list on the model alone)."""

import io

import pytest
from django.core.management import call_command
from django.db import connection

from pops.payments.models import StoredCard

pytestmark = pytest.mark.django_db

# Every column of the stored-card table: the keys, the gateway's opaque vault token, the brand,
# the last 4, the expiry month and year, the active flag and when it was stored.
STORED_CARD_COLUMNS = {
    "id",
    "practice_id",
    "guarantor_id",
    "merchant_account_id",
    "vault_token",
    "brand",
    "last4",
    "exp_month",
    "exp_year",
    "is_active",
    "created_at",
}
# Its only text columns, with their sizes: nothing else could hold a card number's digits.
STORED_CARD_TEXT_COLUMNS = {"vault_token": 100, "brand": 20, "last4": 4}


def test_every_model_change_has_its_migration():
    out = io.StringIO()

    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=io.StringIO())

    assert out.getvalue().strip() == "No changes detected"


def stored_card_table() -> dict[str, tuple[str, int | None]]:
    """The stored-card table as the database describes it: column -> (field type, size)."""
    introspection = connection.introspection
    with connection.cursor() as cursor:
        description = introspection.get_table_description(cursor, StoredCard._meta.db_table)
    return {
        column.name: (introspection.get_field_type(column.type_code, column), column.display_size)
        for column in description
    }


def test_the_stored_card_table_has_only_the_allowed_columns():
    assert set(stored_card_table()) == STORED_CARD_COLUMNS


def test_the_stored_card_tables_only_text_columns_are_token_brand_and_last4():
    text = {
        name: size
        for name, (kind, size) in stored_card_table().items()
        if kind in ("CharField", "TextField", "JSONField", "BinaryField")
    }

    assert text == STORED_CARD_TEXT_COLUMNS
