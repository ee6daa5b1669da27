"""A merchant reference is charged at most once; a token is charged at most once per merchant."""

import pytest
from django.utils import timezone

from pops.payments.gateways.base import Declined, InvalidRequest
from pops.payments.gateways.sandbox.models import Token, Transaction
from tests.payments.conftest import (
    DECLINED,
    card_token,
    charge_request,
    reference,
    run_concurrently,
)

pytestmark = pytest.mark.django_db


def test_charging_the_same_reference_again_answers_the_first_transaction(gateway):
    request = charge_request()
    first = gateway.charge(request)

    again = gateway.charge(request)

    assert again.transaction_id == first.transaction_id
    assert again.duplicate
    assert Transaction.objects.count() == 1


def test_a_retry_after_its_token_expired_answers_the_first_transaction(gateway):
    request = charge_request()
    first = gateway.charge(request)
    Token.objects.update(expires_at=timezone.now())  # (a token lives 15 minutes)

    again = gateway.charge(request)

    assert again.transaction_id == first.transaction_id
    assert again.duplicate
    assert Transaction.objects.count() == 1
    with pytest.raises(InvalidRequest, match="expired"):
        gateway.charge(charge_request(request.payment_token))  # another reference: refused


def test_a_retry_with_a_fresh_token_still_does_not_charge_twice(gateway):
    ref = reference()
    first = gateway.charge(charge_request(merchant_reference=ref))

    again = gateway.charge(charge_request(merchant_reference=ref))

    assert again.transaction_id == first.transaction_id
    assert Transaction.objects.count() == 1


def test_a_declined_reference_stays_declined_without_a_second_attempt(gateway):
    request = charge_request(card_token(DECLINED))
    with pytest.raises(Declined) as first:
        gateway.charge(request)

    with pytest.raises(Declined) as again:
        gateway.charge(request)

    assert again.value.transaction_id == first.value.transaction_id
    assert Transaction.objects.count() == 1


def test_a_reference_reused_for_another_amount_is_refused(gateway):
    ref = reference()
    gateway.charge(charge_request(merchant_reference=ref, amount_cents=1000))

    with pytest.raises(InvalidRequest) as raised:
        gateway.charge(charge_request(merchant_reference=ref, amount_cents=2000))

    assert raised.value.code == "reference_conflict"
    assert Transaction.objects.count() == 1


def test_a_token_is_charged_once(gateway):
    token = card_token()
    gateway.charge(charge_request(token))

    with pytest.raises(InvalidRequest) as raised:
        gateway.charge(charge_request(token))

    assert raised.value.code == "token_used"
    assert Transaction.objects.count() == 1


def test_a_declined_charge_uses_up_its_token(gateway):
    token = card_token(DECLINED)
    with pytest.raises(Declined):
        gateway.charge(charge_request(token))

    with pytest.raises(InvalidRequest, match="already been used"):
        gateway.charge(charge_request(token))


def test_a_split_payment_charges_one_token_once_per_merchant_account(gateway, other_gateway):
    token = card_token()
    first = gateway.charge(charge_request(token, amount_cents=1000))
    second = other_gateway("facility-merchant").charge(charge_request(token, amount_cents=500))

    assert first.transaction_id != second.transaction_id
    assert Transaction.objects.count() == 2


def test_references_are_scoped_by_merchant(gateway, other_gateway):
    ref = reference()
    gateway.charge(charge_request(merchant_reference=ref))

    assert other_gateway().query_by_reference(ref) is None


def test_an_unknown_token_is_refused(gateway):
    with pytest.raises(InvalidRequest) as raised:
        gateway.charge(charge_request("tok_made_up"))
    assert raised.value.code == "invalid_token"
    assert Transaction.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_reference_charge_once(gateway):
    request = charge_request()

    results = run_concurrently([lambda: gateway.charge(request)] * 8)

    assert len({result.transaction_id for result in results}) == 1
    assert sum(not result.duplicate for result in results) == 1
    assert Transaction.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_reference_with_fresh_tokens_charge_once(gateway):
    ref = reference()
    requests = [charge_request(merchant_reference=ref) for _ in range(8)]

    results = run_concurrently([lambda r=r: gateway.charge(r) for r in requests])

    assert len({result.transaction_id for result in results}) == 1
    assert Transaction.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_one_token_charged_concurrently_under_many_references_charges_once(gateway):
    token = card_token()
    requests = [charge_request(token) for _ in range(8)]

    outcomes = run_concurrently([lambda r=r: gateway.charge(r) for r in requests])

    refused = [o for o in outcomes if isinstance(o, InvalidRequest)]
    assert len(refused) == 7
    assert {o.code for o in refused} == {"token_used"}
    assert Transaction.objects.count() == 1
