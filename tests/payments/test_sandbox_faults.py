"""Each fault of the switch: never two charges, and the outcome is visible by reference."""

import pytest

from pops.payments.gateways.base import (
    GatewayUnavailable,
    RefundRequest,
    TransactionStatus,
)
from pops.payments.gateways.sandbox import faults
from pops.payments.gateways.sandbox.faults import Fault, Operation
from pops.payments.gateways.sandbox.models import Transaction
from tests.payments.conftest import charge_request, reference

pytestmark = pytest.mark.django_db

CHARGED = {
    Fault.TIMEOUT_BEFORE_COMMIT: False,
    Fault.TIMEOUT_AFTER_COMMIT: True,
    Fault.HTTP_500_AFTER_COMMIT: True,
    Fault.CONNECTION_RESET: False,
    Fault.CONNECTION_REFUSED: False,
}


@pytest.mark.parametrize("fault", list(Fault))
def test_a_faulty_charge_is_unknown_and_its_outcome_is_found_by_reference(gateway, fault):
    request = charge_request(amount_cents=3300)

    with faults.inject(fault), pytest.raises(GatewayUnavailable) as raised:
        gateway.charge(request)

    assert raised.value.charge_may_have_happened == (fault != Fault.CONNECTION_REFUSED)
    found = gateway.query_by_reference(request.merchant_reference)
    if CHARGED[fault]:
        assert found.status == TransactionStatus.APPROVED
        assert found.amount_cents == 3300
    else:
        assert found is None
    assert Transaction.objects.count() == int(CHARGED[fault])


@pytest.mark.parametrize("fault", list(Fault))
def test_retrying_after_a_fault_never_charges_twice(gateway, fault):
    request = charge_request()
    with faults.inject(fault), pytest.raises(GatewayUnavailable):
        gateway.charge(request)

    result = gateway.charge(request)

    assert result.duplicate == CHARGED[fault]
    assert Transaction.objects.count() == 1
    assert gateway.query_by_reference(request.merchant_reference).transaction_id == (
        result.transaction_id
    )


def test_a_fault_lasts_only_while_injected(gateway):
    with faults.inject("timeout_after_commit"):
        assert faults.current(Operation.CHARGE) == Fault.TIMEOUT_AFTER_COMMIT
    assert faults.current(Operation.CHARGE) is None
    gateway.charge(charge_request())


def test_a_query_can_fault_too_and_moves_nothing(gateway):
    request = charge_request()
    gateway.charge(request)

    with faults.inject(Fault.TIMEOUT_AFTER_COMMIT, operations=[Operation.QUERY]):
        with pytest.raises(GatewayUnavailable):
            gateway.query_by_reference(request.merchant_reference)
        gateway.charge(charge_request())  # charges are not affected

    assert Transaction.objects.count() == 2


def test_a_refund_lost_after_commit_is_not_repeated_by_its_retry(gateway):
    charged = gateway.charge(charge_request(amount_cents=1000))
    refund = RefundRequest(charged.transaction_id, 400, merchant_reference=reference())
    with (
        faults.inject(Fault.HTTP_500_AFTER_COMMIT, operations=[Operation.REFUND]),
        pytest.raises(GatewayUnavailable),
    ):
        gateway.refund(refund)

    again = gateway.refund(refund)

    assert again.duplicate
    assert again.refunded_total_cents == 400


def test_a_void_rolled_back_by_a_timeout_leaves_the_charge_standing(gateway):
    charged = gateway.charge(charge_request())
    with (
        faults.inject(Fault.TIMEOUT_BEFORE_COMMIT, operations=[Operation.VOID]),
        pytest.raises(GatewayUnavailable),
    ):
        gateway.void(charged.transaction_id)

    found = gateway.query_by_reference(charged.merchant_reference)
    assert found.status == TransactionStatus.APPROVED
