"""Every Sandbox test card does what the documentation says, through the gateway contract."""

import datetime as dt

import pytest
import time_machine

from pops.payments.gateways.base import (
    DECLINE_MESSAGES,
    DeclineCode,
    Declined,
    GatewayUnavailable,
    TransactionStatus,
)
from pops.payments.gateways.sandbox import cards
from pops.payments.gateways.sandbox.models import Transaction
from tests.payments.conftest import (
    APPROVED,
    DECLINED,
    EXPIRED_CARD,
    INCORRECT_CVV,
    INSUFFICIENT_FUNDS,
    NOT_A_TEST_CARD,
    PROCESSING_ERROR,
    TIMES_OUT,
    card_token,
    charge_request,
)

pytestmark = pytest.mark.django_db


def test_the_approved_card_is_charged(gateway):
    request = charge_request(card_token(APPROVED, exp="04/39"), amount_cents=1234)

    result = gateway.charge(request)

    assert result.merchant_reference == request.merchant_reference
    assert result.amount_cents == 1234
    assert (result.card.brand, result.card.last4) == ("Visa", "1111")
    assert (result.card.exp_month, result.card.exp_year) == (4, 2039)
    assert result.transaction_id.startswith("sbx_")
    assert result.approved_at.tzinfo is not None
    assert not result.duplicate
    assert Transaction.objects.get().status == Transaction.Status.APPROVED


@pytest.mark.parametrize(
    ("number", "code"),
    [
        (DECLINED, DeclineCode.DECLINED),
        (INSUFFICIENT_FUNDS, DeclineCode.INSUFFICIENT_FUNDS),
        (EXPIRED_CARD, DeclineCode.EXPIRED_CARD),
        (INCORRECT_CVV, DeclineCode.INCORRECT_CVV),
        (PROCESSING_ERROR, DeclineCode.PROCESSING_ERROR),
        (NOT_A_TEST_CARD, DeclineCode.NOT_A_TEST_CARD),
    ],
)
def test_each_declining_card_raises_its_stable_code_and_patient_message(gateway, number, code):
    request = charge_request(card_token(number))

    with pytest.raises(Declined) as raised:
        gateway.charge(request)

    assert raised.value.code == code
    assert raised.value.message == DECLINE_MESSAGES[code]
    assert raised.value.card is not None
    assert raised.value.card.last4 == number[-4:]
    found = gateway.query_by_reference(request.merchant_reference)
    assert found.status == TransactionStatus.DECLINED
    assert found.decline_code == code
    assert found.transaction_id == raised.value.transaction_id


def test_the_timeout_card_charges_but_the_answer_is_lost(gateway):
    request = charge_request(card_token(TIMES_OUT), amount_cents=4100)

    with pytest.raises(GatewayUnavailable) as raised:
        gateway.charge(request)

    assert raised.value.charge_may_have_happened
    assert raised.value.retryable
    found = gateway.query_by_reference(request.merchant_reference)
    assert found.status == TransactionStatus.APPROVED
    assert found.amount_cents == 4100
    assert found.card.last4 == "0341"


def test_a_retry_of_the_timeout_card_answers_the_charge_that_happened(gateway):
    request = charge_request(card_token(TIMES_OUT))
    with pytest.raises(GatewayUnavailable):
        gateway.charge(request)

    result = gateway.charge(request)

    assert result.duplicate
    assert Transaction.objects.count() == 1


def test_a_card_that_expires_after_tokenizing_is_declined_as_expired(gateway):
    with time_machine.travel(dt.datetime(2030, 5, 31, 23, 50, tzinfo=dt.UTC)):
        token = card_token(APPROVED, exp="05/30")
    with (
        time_machine.travel(dt.datetime(2030, 6, 1, 0, 0, 1, tzinfo=dt.UTC)),
        pytest.raises(Declined) as raised,
    ):
        gateway.charge(charge_request(token))
    assert raised.value.code == DeclineCode.EXPIRED_CARD


def test_every_test_card_passes_the_luhn_check():
    assert all(cards.luhn_valid(card.number) for card in cards.TEST_CARDS)
    assert not cards.luhn_valid("4111111111111112")


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4111111111111111", "Visa"),
        ("5555555555554444", "Mastercard"),
        ("2223003122003222", "Mastercard"),
        ("378282246310005", "American Express"),
        ("6011111111111117", "Discover"),
        ("3056930009020004", "Card"),
    ],
)
def test_brands_are_told_by_their_prefix(number, brand):
    assert cards.brand_of(number) == brand
