"""No payments or Sandbox table can hold a card number or CVV, nor does after a run (S-3, S-4)."""

import contextlib
import re

import pytest
from django.apps import apps
from django.db import connection, models

from pops.payments.gateways.base import Declined, GatewayUnavailable, RefundRequest, WalletKind
from pops.payments.gateways.sandbox import cards
from tests.payments.conftest import card_token, charge_request, reference, wallet_payload

APP_LABELS = ("payments", "sandbox_gateway")
FORBIDDEN_NAME = re.compile(r"card_?num|pan\b|^pan|cvv|cvc|csc|security_code|track", re.I)
CVV = "918"  # digits the Sandbox's random ids never contain


def all_models():
    return [m for label in APP_LABELS for m in apps.get_app_config(label).get_models()]


def luhn_valid_sequences(text: str) -> list[str]:
    found = []
    for run in re.findall(r"\d{13,}", text):
        for size in range(13, 20):
            for start in range(len(run) - size + 1):
                if cards.luhn_valid(run[start : start + size]):
                    found.append(run[start : start + size])
    return found


def test_no_column_is_named_for_a_card_number_or_cvv():
    for model in all_models():
        for field in model._meta.get_fields():
            assert not FORBIDDEN_NAME.search(field.name), f"{model.__name__}.{field.name}"


def test_last4_columns_hold_at_most_four_characters():
    last4_fields = [
        field
        for model in all_models()
        for field in model._meta.get_fields()
        if "last4" in field.name or "last_4" in field.name
    ]
    assert last4_fields
    assert all(field.max_length == 4 for field in last4_fields)


def test_the_scanner_finds_a_card_number():
    assert luhn_valid_sequences("paid with 4111111111111111 today") == ["4111111111111111"]


@pytest.mark.django_db
def test_after_a_run_with_every_test_card_no_table_holds_a_card_number_or_cvv(gateway):
    for card in cards.TEST_CARDS:
        with contextlib.suppress(Declined, GatewayUnavailable):
            gateway.charge(
                charge_request(card_token(card.number, cvv=CVV), store_card=True, customer_id="g1")
            )
    charged = gateway.charge(charge_request(card_token(cvv=CVV), amount_cents=9000))
    gateway.refund(RefundRequest(charged.transaction_id, 1000, reference()))
    for wallet in WalletKind:
        gateway.charge(charge_request(wallet_payload(wallet), wallet=wallet))
    card_token("5555555555554444", cvv=CVV)  # tokenized, never charged

    with connection.cursor() as cursor:
        for model in all_models():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(model._meta.db_table)}")  # noqa: S608
            rows = cursor.fetchall()
            dump = "\n".join("|".join(str(value) for value in row) for row in rows)
            assert luhn_valid_sequences(dump) == [], model.__name__
            text_columns = [
                f.attname
                for f in model._meta.concrete_fields
                if isinstance(f, models.CharField | models.TextField | models.JSONField)
            ]
            for values in model.objects.values_list(*text_columns):
                assert all(CVV not in str(value) for value in values), model.__name__
