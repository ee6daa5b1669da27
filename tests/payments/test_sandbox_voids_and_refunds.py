"""Voids cancel a whole charge; refunds, full or partial, never add up to more than was taken."""

import pytest

from pops.payments.gateways.base import Declined, InvalidRequest, RefundRequest, TransactionStatus
from pops.payments.gateways.sandbox.models import Refund, Transaction
from tests.payments.conftest import (
    DECLINED,
    card_token,
    charge_request,
    reference,
    run_concurrently,
)

pytestmark = pytest.mark.django_db


def refund(gateway, transaction_id, amount_cents, ref=None):
    return gateway.refund(RefundRequest(transaction_id, amount_cents, ref or reference()))


def test_a_void_cancels_the_charge(gateway):
    charged = gateway.charge(charge_request())

    voided = gateway.void(charged.transaction_id)

    assert voided.transaction_id == charged.transaction_id
    found = gateway.query_by_reference(charged.merchant_reference)
    assert found.status == TransactionStatus.VOIDED
    assert not found.approved


def test_voiding_twice_answers_the_first_void(gateway):
    charged = gateway.charge(charge_request())
    first = gateway.void(charged.transaction_id)

    assert gateway.void(charged.transaction_id) == first


def test_a_declined_charge_cannot_be_voided(gateway):
    request = charge_request(card_token(DECLINED))
    with pytest.raises(Declined) as declined:
        gateway.charge(request)

    with pytest.raises(InvalidRequest) as raised:
        gateway.void(declined.value.transaction_id)

    assert raised.value.code == "not_voidable"


def test_a_partial_refund_then_the_rest(gateway):
    charged = gateway.charge(charge_request(amount_cents=5000))

    first = refund(gateway, charged.transaction_id, 1500)
    rest = refund(gateway, charged.transaction_id, 3500)

    assert (first.amount_cents, first.refunded_total_cents) == (1500, 1500)
    assert (rest.amount_cents, rest.refunded_total_cents) == (3500, 5000)
    assert gateway.query_by_reference(charged.merchant_reference).refunded_cents == 5000


def test_a_refund_above_what_is_left_is_refused(gateway):
    charged = gateway.charge(charge_request(amount_cents=5000))
    refund(gateway, charged.transaction_id, 4000)

    with pytest.raises(InvalidRequest) as raised:
        refund(gateway, charged.transaction_id, 1001)

    assert raised.value.code == "refund_exceeds_captured"
    assert gateway.query_by_reference(charged.merchant_reference).refunded_cents == 4000


def test_a_refund_retried_with_its_reference_refunds_once(gateway):
    charged = gateway.charge(charge_request(amount_cents=5000))
    ref = reference()
    first = refund(gateway, charged.transaction_id, 1000, ref)

    again = refund(gateway, charged.transaction_id, 1000, ref)

    assert again.refund_id == first.refund_id
    assert again.duplicate
    assert Refund.objects.count() == 1


def test_a_refund_reference_reused_for_another_amount_is_refused(gateway):
    charged = gateway.charge(charge_request(amount_cents=5000))
    ref = reference()
    refund(gateway, charged.transaction_id, 1000, ref)

    with pytest.raises(InvalidRequest, match="another amount"):
        refund(gateway, charged.transaction_id, 2000, ref)


def test_a_voided_charge_cannot_be_refunded(gateway):
    charged = gateway.charge(charge_request())
    gateway.void(charged.transaction_id)

    with pytest.raises(InvalidRequest) as raised:
        refund(gateway, charged.transaction_id, 100)

    assert raised.value.code == "not_refundable"


def test_a_refunded_charge_cannot_be_voided(gateway):
    charged = gateway.charge(charge_request())
    refund(gateway, charged.transaction_id, 100)

    with pytest.raises(InvalidRequest, match="without refunds"):
        gateway.void(charged.transaction_id)


def test_another_merchants_transaction_is_not_found(gateway, other_gateway):
    charged = gateway.charge(charge_request())

    with pytest.raises(InvalidRequest) as raised:
        other_gateway().void(charged.transaction_id)
    assert raised.value.code == "not_found"
    with pytest.raises(InvalidRequest):
        refund(other_gateway(), charged.transaction_id, 100)


@pytest.mark.django_db(transaction=True)
def test_concurrent_partial_refunds_never_exceed_the_captured_amount(gateway):
    charged = gateway.charge(charge_request(amount_cents=1000))

    outcomes = run_concurrently(
        [lambda: refund(gateway, charged.transaction_id, 300) for _ in range(6)]
    )

    assert sum(not isinstance(o, Exception) for o in outcomes) == 3
    assert all(o.code == "refund_exceeds_captured" for o in outcomes if isinstance(o, Exception))
    assert Transaction.objects.get().refunded_cents == 900
    assert Refund.objects.count() == 3
