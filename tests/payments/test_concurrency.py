"""Payments under concurrency (S-29, S-30, S-35, S-36): real threads, each on its own database
connection (closed when the thread ends), released together by a barrier.

The multi-connection tests need PostgreSQL's row locks and unique-index waits; on SQLite (one
writer at a time) they are skipped. The midnight and closed-batch tests run on both databases.
"""

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.db.models import Sum

from pops.core.audit import Actor
from pops.ledger.models import ReferenceBatch
from pops.ledger.services.batches import close_batch
from pops.payments.gateways.sandbox.adapter import SandboxGateway
from pops.payments.gateways.sandbox.models import Transaction
from pops.payments.models import PaymentAttempt
from pops.payments.services import attempts
from pops.payments.services.attempts import pay
from pops.payments.services.errors import InProgress, KeyReused, PaymentRefused
from tests.payments.conftest import card_token, run_concurrently
from tests.payments.test_reconcile import (
    TZ,
    current_balance,
    guarantor,
    payment_entries,
    pops_receipts,
    practice_with,
    request_for,
)

SUCCEEDED = PaymentAttempt.Status.SUCCEEDED


def multi_connection(test):
    """Run `test` on PostgreSQL only, with real commits (threads cannot see a test transaction)."""
    for mark in (
        pytest.mark.postgres,
        pytest.mark.django_db(transaction=True),
        pytest.mark.skipif(
            connection.vendor != "postgresql",
            reason="needs several concurrent PostgreSQL connections "
            "(SQLite has one writer at a time)",
        ),
    ):
        test = mark(test)
    return test


def errors_in(outcomes: list[object]) -> list[BaseException]:
    return [o for o in outcomes if isinstance(o, BaseException)]


# --- S-29, S-30: one key, one charge --------------------------------------------------------------


@pytest.mark.parametrize("amount", [10_000, 2_500], ids=["whole-balance", "part"])
@multi_connection
def test_50_submissions_with_one_key_charge_once(amount):
    practice_with(balance_cents=10_000)
    payer = guarantor()
    request = request_for(payer, amount, key="one-key")  # one body: one token, one amount

    outcomes = run_concurrently([lambda: pay(request)] * 50)

    attempt = PaymentAttempt.objects.get()
    unexpected = [
        o
        for o in outcomes
        if not isinstance(o, InProgress)
        and not (isinstance(o, PaymentAttempt) and o.pk == attempt.pk and o.status == SUCCEEDED)
    ]
    assert not unexpected, unexpected
    assert any(isinstance(o, PaymentAttempt) for o in outcomes)
    assert Transaction.objects.count() == 1
    assert pops_receipts().count() == 1
    assert payment_entries() == 1
    assert current_balance(payer) == 10_000 - amount

    again = pay(request)
    assert (again.pk, again.status, again.receipt_id) == (attempt.pk, SUCCEEDED, attempt.receipt_id)
    with pytest.raises(KeyReused):
        pay(request_for(payer, amount - 1, key="one-key"))
    assert Transaction.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_amount_is_refused_without_a_gateway_call(monkeypatch):
    practice_with()
    payer = guarantor()
    first = pay(request_for(payer, 2500, key="k"))
    calls: list[object] = []
    monkeypatch.setattr(SandboxGateway, "charge", lambda *args: calls.append(args))

    with pytest.raises(KeyReused):
        pay(request_for(payer, 2600, key="k"))

    assert calls == []
    assert Transaction.objects.count() == 1
    assert pay(request_for(payer, 2500, key="k")).pk == first.pk


# --- S-36: one batch per day ---------------------------------------------------------------------


@multi_connection
def test_50_first_of_day_payments_share_one_open_batch():
    practice = practice_with(guarantors=50, balance_cents=5000)
    requests = [request_for(guarantor(f"G{n:02d}"), 1000 + n) for n in range(1, 51)]

    outcomes = run_concurrently([lambda r=r: pay(r) for r in requests])

    assert not errors_in(outcomes), errors_in(outcomes)
    assert [o.status for o in outcomes] == [SUCCEEDED] * 50  # none became a $0 receipt
    batch = ReferenceBatch.objects.get(practice=practice, is_pops=True)
    assert batch.status == ReferenceBatch.Status.OPEN
    assert batch.description == "API Payments"
    assert batch.user.display_name == "POPS"
    receipts = pops_receipts()
    assert receipts.count() == 50
    assert set(receipts.values_list("reference_batch", flat=True)) == {batch.pk}
    assert {r.date for r in receipts} == {batch.date}
    assert len(set(receipts.values_list("number", flat=True))) == 50
    expected = sum(1000 + n for n in range(1, 51))
    assert receipts.aggregate(total=Sum("amount_cents"))["total"] == expected
    assert Transaction.objects.count() == 50


# --- S-35: the balance check is atomic ------------------------------------------------------------


@multi_connection
def test_20_payments_of_more_than_half_the_balance_never_overpay():
    practice_with(balance_cents=10_000)
    payer = guarantor()
    requests = [request_for(payer, 5001 + n * 100) for n in range(20)]

    outcomes = run_concurrently([lambda r=r: pay(r) for r in requests])

    paid = [o for o in outcomes if isinstance(o, PaymentAttempt)]
    refused = [o for o in outcomes if isinstance(o, PaymentRefused)]
    assert len(paid) + len(refused) == 20, errors_in(outcomes)
    assert [p.status for p in paid] == [SUCCEEDED]
    posted = pops_receipts().aggregate(total=Sum("amount_cents"))["total"]
    assert posted == paid[0].amount_cents <= 10_000
    assert current_balance(payer) == 10_000 - posted
    assert Transaction.objects.count() == 1  # the refused ones were never charged
    assert all(r.path == "amount" for r in refused)


# --- Midnight, and a closed batch -----------------------------------------------------------------


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZoneInfo(TZ))


@pytest.mark.django_db
def test_payments_either_side_of_local_midnight_land_in_their_own_days_batches():
    practice_with(guarantors=2, balance_cents=5000)

    with time_machine.travel(local(2026, 12, 1, 23, 59, 59), tick=False):
        before = pay(request_for(guarantor("G01"), 1000))
    with time_machine.travel(local(2026, 12, 2, 0, 0, 0), tick=False):
        after = pay(request_for(guarantor("G02"), 1000))

    assert before.receipt.date == dt.date(2026, 12, 1)
    assert after.receipt.date == dt.date(2026, 12, 2)
    assert before.receipt.reference_batch.date == dt.date(2026, 12, 1)
    assert after.receipt.reference_batch.date == dt.date(2026, 12, 2)
    assert before.receipt.reference_batch_id != after.receipt.reference_batch_id


@pytest.mark.django_db
def test_a_closed_batch_is_never_posted_into():
    practice_with(balance_cents=5000)
    payer = guarantor()
    with time_machine.travel(local(2026, 12, 2, 9, 0), tick=False):
        first = pay(request_for(payer, 1000))
        closed = close_batch(first.receipt.reference_batch, actor=Actor.command("tests"))
        second = pay(request_for(payer, 1000, token=card_token()))

    batch = second.receipt.reference_batch
    assert batch.pk != closed.pk
    assert batch.date == closed.date == dt.date(2026, 12, 2)
    assert batch.status == ReferenceBatch.Status.OPEN
    assert closed.receipts.count() == 1
    assert ReferenceBatch.objects.filter(is_pops=True, status="open").count() == 1


@multi_connection
def test_a_batch_closed_while_a_payment_joins_it_does_not_take_the_receipt_after_closing(
    monkeypatch,
):
    """The payment has found the open batch; staff close it before the receipt is written.
    Either the close waits for the payment (the receipt was posted while the batch was open)
    or the payment sees the close and opens a new batch: never a receipt in a closed batch."""
    practice_with(guarantors=2, balance_cents=5000)
    batch = pay(request_for(guarantor("G01"), 1000)).receipt.reference_batch
    found, closed = threading.Event(), threading.Event()
    real = attempts.pops_batch

    def pops_batch_then_let_staff_close(practice, date):
        chosen = real(practice, date)
        found.set()
        closed.wait(timeout=1)  # a close that waits for this payment never comes in time
        return chosen

    monkeypatch.setattr(attempts, "pops_batch", pops_batch_then_let_staff_close)

    def close():
        found.wait(timeout=10)
        try:
            return close_batch(batch, actor=Actor.command("tests"))
        finally:
            closed.set()

    payment, closing = run_concurrently([lambda: pay(request_for(guarantor("G02"), 1000)), close])

    assert not errors_in([payment, closing]), [payment, closing]
    receipt = payment.receipt
    batch.refresh_from_db()
    assert batch.status == ReferenceBatch.Status.CLOSED
    if receipt.reference_batch_id == batch.pk:
        assert batch.closed_at > payment.settled_at, "posted into a batch already closed"
    else:
        assert receipt.reference_batch.status == ReferenceBatch.Status.OPEN
