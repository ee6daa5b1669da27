"""Each way the gateway connection can fail, through the payment service and the reconciler
(S-32): the attempt is `unknown`, never "failed"; a retry with the same key never charges again;
`pops payments reconcile` settles it as one paid receipt (the gateway charged) or one declined
attempt with a $0.00 Unsuccessful receipt (it did not)."""

import contextlib

import pytest
from django.db import connection

from pops.ledger.models import Receipt
from pops.payments.gateways.sandbox import faults
from pops.payments.gateways.sandbox.faults import Fault
from pops.payments.gateways.sandbox.models import Transaction
from pops.payments.models import PaymentAttempt
from pops.payments.services.attempts import pay
from pops.payments.services.errors import InProgress, PaymentsUnavailable
from tests.payments.conftest import APPROVED, TIMES_OUT, run_concurrently
from tests.payments.test_reconcile import (
    current_balance,
    guarantor,
    payment_entries,
    pops_receipts,
    practice_with,
    request_for,
    run_reconcile_command,
)

pytestmark = pytest.mark.django_db

Status = PaymentAttempt.Status

# (fault injected on the charge, test card, whether the gateway charged)
MODES = {
    "timeout-before-commit": (Fault.TIMEOUT_BEFORE_COMMIT, APPROVED, False),
    "timeout-after-commit": (Fault.TIMEOUT_AFTER_COMMIT, APPROVED, True),
    "http-500-after-commit": (Fault.HTTP_500_AFTER_COMMIT, APPROVED, True),
    "connection-reset": (Fault.CONNECTION_RESET, APPROVED, False),
    "card-0341": (None, TIMES_OUT, True),
}


def charge_with(fault: Fault | None, request):
    if fault is None:
        return pay(request)
    with faults.inject(fault):
        return pay(request)


@pytest.mark.parametrize("mode", list(MODES))
def test_an_unanswered_charge_is_unknown_until_reconciled_and_then_settled_once(mode):
    fault, card, charged = MODES[mode]
    practice_with(balance_cents=10_000)
    payer = guarantor()
    request = request_for(payer, 4000, card=card, key=f"key-{mode}")

    attempt = charge_with(fault, request)

    # Unknown, never "failed": no receipt, no decline, the amount reserved.
    assert attempt.status == Status.UNKNOWN
    assert attempt.receipt is None
    assert attempt.decline_code == ""
    assert pops_receipts().count() == 0
    assert Transaction.objects.count() == int(charged)

    # A retry with the same key (the fault gone or not) answers the same attempt, charging nothing.
    for retry in (lambda: pay(request), lambda: charge_with(fault, request)):
        again = retry()
        assert (again.pk, again.status) == (attempt.pk, Status.UNKNOWN)
    assert Transaction.objects.count() == int(charged)

    out = run_reconcile_command("--older-than", "0")

    attempt.refresh_from_db()
    receipt = attempt.receipt
    if charged:
        assert out.startswith("Examined 1 payment attempt(s): 1 settled paid, 0 settled declined")
        txn = Transaction.objects.get()
        assert attempt.status == Status.SUCCEEDED
        assert receipt.status == Receipt.Status.PAID
        assert receipt.amount_cents == 4000
        assert attempt.parts.get().transaction_id == txn.transaction_id
        assert receipt.reference_batch is not None
        assert payment_entries() == 1
        assert current_balance(payer) == 6000
    else:
        assert out.startswith("Examined 1 payment attempt(s): 0 settled paid, 1 settled declined")
        assert attempt.status == Status.DECLINED
        assert receipt.status == Receipt.Status.UNSUCCESSFUL
        assert receipt.amount_cents == 0
        assert receipt.reference_batch is None
        assert Transaction.objects.count() == 0
        assert payment_entries() == 0
        assert current_balance(payer) == 10_000
    assert pops_receipts().count() == 1

    # Settled for good: the key answers the settled attempt; the reconciler has nothing left.
    for retry in (lambda: pay(request), lambda: charge_with(fault, request)):
        again = retry()
        assert (again.pk, again.status, again.receipt_id) == (
            attempt.pk,
            attempt.status,
            receipt.pk,
        )
    assert run_reconcile_command("--older-than", "0").startswith("Examined 0 payment")
    assert pops_receipts().count() == 1
    assert Transaction.objects.count() == int(charged)


def test_a_refused_connection_is_retryable_with_the_same_key_because_nothing_was_sent():
    practice_with()
    payer = guarantor()
    request = request_for(payer, 4000, key="same-key")
    with faults.inject(Fault.CONNECTION_REFUSED), pytest.raises(PaymentsUnavailable) as raised:
        pay(request)

    assert "nothing was charged" in str(raised.value)
    assert not PaymentAttempt.objects.exists()  # nothing written, the key not used up
    assert not Receipt.objects.exists()
    assert Transaction.objects.count() == 0
    assert run_reconcile_command("--older-than", "0").startswith("Examined 0 payment")

    attempt = pay(request)  # the processor is back: the same request, its card token unused

    assert attempt.status == Status.SUCCEEDED
    assert Transaction.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs several concurrent PostgreSQL connections (SQLite has one writer at a time)",
)
@pytest.mark.parametrize("mode", ["timeout-after-commit", "card-0341"])
def test_concurrent_retries_of_an_unanswered_charge_charge_once(mode):
    fault, card, _ = MODES[mode]
    practice_with(balance_cents=10_000)
    request = request_for(guarantor(), 10_000, card=card, key="one-key")

    # The fault switch is the process's: set once, around all the threads.
    with faults.inject(fault) if fault else contextlib.nullcontext():
        outcomes = run_concurrently([lambda: pay(request)] * 20)

    attempt = PaymentAttempt.objects.get()
    unexpected = [
        o
        for o in outcomes
        if not isinstance(o, InProgress)
        and not (
            isinstance(o, PaymentAttempt) and o.pk == attempt.pk and o.status == Status.UNKNOWN
        )
    ]
    assert not unexpected, unexpected
    assert Transaction.objects.count() == 1

    assert run_reconcile_command("--older-than", "0").startswith(
        "Examined 1 payment attempt(s): 1 settled paid"
    )
    assert pops_receipts().count() == 1
    assert payment_entries() == 1
    assert Transaction.objects.count() == 1
