"""Refunds from the day after a payment on: a Patient Refund receipt in that day's POPS batch,
the money taken off the lines (latest application first), never more than was captured, and
never refunded twice, whatever fails and however often it is retried."""

import datetime as dt
import io
import uuid

import pytest
from django.core.management import call_command
from django.db import connection

from pops.core.models import AuditEvent
from pops.groups.models import Group
from pops.ledger.models import (
    Application,
    LedgerEntry,
    Receipt,
    ReferenceBatch,
)
from pops.ledger.services.batches import batches_of, close_batch
from pops.payments.gateways.base import RefundRequest
from pops.payments.gateways.registry import gateway_for
from pops.payments.gateways.sandbox import faults
from pops.payments.gateways.sandbox.faults import Fault, Operation
from pops.payments.gateways.sandbox.models import Refund, Transaction
from pops.payments.models import PaymentPart, RefundAttempt, RefundPart
from pops.payments.services import refunds
from pops.payments.services.errors import (
    InProgress,
    KeyReused,
    PaymentRefused,
    PaymentsUnavailable,
)
from pops.payments.services.receipts import receipt_content
from pops.payments.services.refunds import (
    RefundIncomplete,
    complete_interrupted_refunds,
    refund_receipt,
)
from pops.payments.services.voids import void_receipt
from tests.payments import test_voids
from tests.payments.conftest import DECLINED, run_concurrently
from tests.payments.test_split_payments import Split
from tests.payments.test_voids import (
    CHICAGO,
    DAY_1,
    assert_consistent,
    balances,
    gateway_refunds,
    gateway_transactions,
    guarantor_of,
    line_paid,
    nothing_changed_since,
    paid_receipt,
    pay_card,
    prepared_practice,
    staff,
)

pytestmark = pytest.mark.django_db


# The fixtures of the void tests: the clock at DAY_1, the prepared practice and its guarantor.
day_1, practice, guarantor = test_voids.day_1, test_voids.practice, test_voids.guarantor


DAY_2 = DAY_1 + dt.timedelta(days=1)
DAY_3 = DAY_1 + dt.timedelta(days=2)


def key() -> str:
    return str(uuid.uuid4())


def refund(receipt, cents, actor, idempotency_key=None):
    return refund_receipt(receipt, cents, actor=actor, idempotency_key=idempotency_key or key())


@pytest.fixture
def paid(day_1, practice, guarantor):
    """$70.00 paid on day 1 (oldest first: E100-1 $30, E200-1 $20, E200-2 $20); it is day 2."""
    receipt = paid_receipt(guarantor, 7000)
    day_1.move_to(DAY_2)
    return receipt


@pytest.fixture
def actor(practice):
    return staff(practice)


def refunds_made() -> int:
    return Receipt.objects.filter(type=Receipt.Type.REFUND).count()


# --- Full and partial refunds ---------------------------------------------------------------


def test_a_full_refund_is_a_patient_refund_receipt_in_that_days_batch(
    practice, guarantor, paid, actor
):
    made = refund(paid, 7000, actor)

    assert made.type == Receipt.Type.REFUND
    assert (made.amount_cents, made.status, made.refund_of) == (7000, Receipt.Status.PAID, paid)
    assert made.made_in_pops
    assert made.source == "POPS"
    assert made.number.startswith("P")
    assert made.number != paid.number
    assert made.date == DAY_2.date()
    batch = made.reference_batch
    assert batch is not None
    assert batch != paid.reference_batch
    assert (batch.date, batch.description, batch.is_pops) == (DAY_2.date(), "API Payments", True)
    assert str(batch.user) == "POPS"
    [totals] = batches_of(practice, DAY_2.date())
    assert (totals.receipts, totals.refunds_cents, totals.total_cents) == (1, 7000, -7000)
    # The money is off the lines, the balance is back where it was before the payment.
    assert balances(guarantor).current_balance == 9000
    assert set(line_paid(practice).values()) == {0}
    assert not Application.objects.filter(receipt=paid).exists()
    assert gateway_refunds(paid) == [7000]
    assert PaymentPart.objects.get(attempt__receipt=paid).refunded_cents == 7000
    assert_consistent(practice)
    event = AuditEvent.objects.get(action="payments.refund.succeeded")
    assert (event.actor_label, event.resource_id) == ("frontdesk", made.number)
    assert event.data["refund_of"] == paid.number


def test_a_refund_receipt_keeps_and_shows_the_gateways_refund_transaction_number(paid, actor):
    made = refund(paid, 2500, actor)

    [at_gateway] = Refund.objects.all()
    [part] = RefundPart.objects.filter(refund__receipt=made)
    assert (part.transaction_id, part.amount_cents) == (at_gateway.refund_id, 2500)
    assert part.status == RefundPart.Status.REFUNDED
    assert part.payment_part == PaymentPart.objects.get(attempt__receipt=paid)
    assert part.refunded_at == DAY_2
    content = receipt_content(made)
    assert content.transaction_numbers == (at_gateway.refund_id,)
    assert (content.type, content.payment_status, content.amount_cents) == (
        "Patient Refund",
        "Paid",
        2500,
    )
    assert (content.refund_of, content.paid_with) == (paid.number, "Visa ending 1111")
    # The payment's own receipt still shows its own (charge) transaction number.
    [charge] = gateway_transactions(paid)
    assert receipt_content(paid).transaction_numbers == (charge.transaction_id,)
    event = AuditEvent.objects.get(action="payments.refund.succeeded")
    assert event.data["transactions"] == [at_gateway.refund_id]


def test_a_split_payment_is_refunded_from_its_latest_transaction_first(day_1):
    split = Split()
    actor = staff(split.practice)
    attempt = split.pay(10000)  # practice's account $50.00, F2's $30.00, D2's $20.00
    first, second, third = split.parts(attempt)
    assert attempt.receipt is not None
    day_1.move_to(DAY_2)

    made = refund(attempt.receipt, 3000, actor)  # all of D2's $20.00, then $10.00 of F2's

    parts = list(RefundPart.objects.filter(refund__receipt=made).order_by("pk"))
    assert [(p.payment_part_id, p.amount_cents) for p in parts] == [
        (third.pk, 2000),
        (second.pk, 1000),
    ]
    at_gateway = {
        r.transaction.transaction_id: (r.refund_id, r.amount_cents) for r in Refund.objects.all()
    }
    assert at_gateway == {
        third.transaction_id: (parts[0].transaction_id, 2000),
        second.transaction_id: (parts[1].transaction_id, 1000),
    }
    assert receipt_content(made).transaction_numbers == tuple(p.transaction_id for p in parts)
    refunded = dict(PaymentPart.objects.values_list("pk", "refunded_cents"))
    assert refunded == {first.pk: 0, second.pk: 1000, third.pk: 2000}

    rest = refund(attempt.receipt, 7000, actor)  # the rest: F2's $20.00, then the practice's

    assert [p.amount_cents for p in RefundPart.objects.filter(refund__receipt=rest)] == [2000, 5000]
    assert set(Transaction.objects.values_list("refunded_cents", "amount_cents")) == {
        (5000, 5000),
        (3000, 3000),
        (2000, 2000),
    }
    assert split.balance() == 10000
    assert_consistent(split.practice)


def test_partial_refunds_take_the_latest_applications_first(practice, guarantor, paid, actor):
    refund(paid, 2500, actor)

    # E200-2 ($20 applied last) is emptied first, then $5 of E200-1.
    assert line_paid(practice) == {("100", 1): 3000, ("200", 1): 1500, ("200", 2): 0}
    assert balances(guarantor).current_balance == 2000 + 2500

    refund(paid, 3000, actor)

    assert line_paid(practice) == {("100", 1): 1500, ("200", 1): 0, ("200", 2): 0}
    assert balances(guarantor).current_balance == 2000 + 5500
    assert gateway_refunds(paid) == [2500, 3000]
    assert PaymentPart.objects.get(attempt__receipt=paid).refunded_cents == 5500
    [totals] = batches_of(practice, DAY_2.date())
    assert (totals.receipts, totals.refunds_cents) == (2, 5500)
    assert_consistent(practice)


def test_refunds_never_add_up_to_more_than_was_captured(practice, guarantor, paid, actor):
    refund(paid, 6000, actor)
    entries, receipts = LedgerEntry.objects.count(), Receipt.objects.count()
    attempts = RefundAttempt.objects.count()

    with pytest.raises(PaymentRefused) as refused:
        refund(paid, 1001, actor)

    assert refused.value.path == "amount"
    assert "$10.00 left to refund" in refused.value.message
    # Nothing written, nothing refunded at the gateway, the key not kept.
    assert (LedgerEntry.objects.count(), Receipt.objects.count()) == (entries, receipts)
    assert RefundAttempt.objects.count() == attempts
    assert gateway_refunds(paid) == [6000]

    refund(paid, 1000, actor)
    with pytest.raises(PaymentRefused) as refused:
        refund(paid, 1, actor)
    assert "Nothing is left to refund" in refused.value.message
    assert gateway_refunds(paid) == [6000, 1000]
    assert balances(guarantor).current_balance == 9000
    assert_consistent(practice)


def test_a_refund_on_the_payments_own_day_is_refused_void_it_instead(
    day_1, practice, guarantor, actor
):
    receipt = paid_receipt(guarantor, 1000)

    with pytest.raises(PaymentRefused) as refused:
        refund(receipt, 1000, actor)

    assert "void it instead" in refused.value.message
    assert gateway_refunds(receipt) == []
    assert refunds_made() == 0


@pytest.mark.parametrize("cents", [0, -100])
def test_a_refund_amount_must_be_more_than_zero(paid, actor, cents):
    with pytest.raises(PaymentRefused) as refused:
        refund(paid, cents, actor)
    assert refused.value.path == "amount"
    assert gateway_refunds(paid) == []


def test_only_a_paid_pops_payment_can_be_refunded(day_1, actor):
    practice = prepared_practice("p2", imported_receipt=True)
    guarantor = guarantor_of(practice)
    declined = pay_card(guarantor, 1000, card=DECLINED).receipt
    voided = paid_receipt(guarantor, 1000)
    void_receipt(voided, reason="Duplicate", actor=actor)
    imported = Receipt.objects.get(number="R-OFFICE-1")
    kept = paid_receipt(guarantor, 2000)
    day_1.move_to(DAY_2)
    made = refund(kept, 500, actor)

    for receipt, words in (
        (declined, "Unsuccessful"),
        (voided, "Voided"),
        (imported, "imported"),
        (made, "A refund receipt cannot be refunded"),
    ):
        with pytest.raises(PaymentRefused) as refused:
            refund(receipt, 100, actor)
        assert words in refused.value.message
    assert refunds_made() == 1


def test_a_refund_refused_by_the_rules_writes_nothing_and_calls_nothing(
    day_1, practice, guarantor, actor
):
    today = paid_receipt(guarantor, 1000)
    unchanged = nothing_changed_since(practice)

    for receipt, cents, words in (
        (today, 1000, "void it instead"),
        (today, 0, "void it instead"),  # the day's rule comes first
    ):
        with pytest.raises(PaymentRefused) as refused:
            refund(receipt, cents, actor)
        assert words in refused.value.message

    unchanged()


def test_a_payment_with_a_refund_under_way_cannot_be_voided_even_by_a_clock_behind(
    day_1, practice, paid, actor
):
    """The day rules alone keep a void and a refund of one payment apart on one clock (both are
    checked under the guarantor's lock). A server whose clock is behind, still on the payment's
    day, is kept out by the refund under way."""
    with (
        faults.inject(Fault.TIMEOUT_AFTER_COMMIT, [Operation.REFUND]),
        pytest.raises(RefundIncomplete),
    ):
        refund(paid, 2500, actor)
    day_1.move_to(DAY_2 - dt.timedelta(hours=12))  # back on the payment's day
    unchanged = nothing_changed_since(practice)

    with pytest.raises(PaymentRefused) as refused:
        void_receipt(paid, reason="Changed my mind", actor=actor)

    assert "refund of this payment is under way" in refused.value.message
    unchanged()


def test_a_refund_receipt_cannot_be_voided(practice, paid, actor):
    made = refund(paid, 1000, actor)

    with pytest.raises(PaymentRefused) as refused:
        void_receipt(made, reason="Oops", actor=actor)

    assert "A refund receipt cannot be voided" in refused.value.message
    made.refresh_from_db()
    assert made.status == Receipt.Status.PAID


def test_a_refund_joins_the_open_batch_of_its_day_and_never_a_closed_one(
    practice, guarantor, paid, actor
):
    payment_of_day_2 = paid_receipt(guarantor, 1000)
    first = refund(paid, 1000, actor)
    assert first.reference_batch == payment_of_day_2.reference_batch
    close_batch(first.reference_batch, actor=actor)

    second = refund(paid, 1000, actor)

    assert second.reference_batch != first.reference_batch
    assert second.reference_batch.status == ReferenceBatch.Status.OPEN


def test_a_refund_of_money_left_unapplied_leaves_the_lines_alone(day_1, actor):
    """Auto-Post off: the payment sits in unapplied funds, and the refund takes it from there."""
    practice = prepared_practice("p3")
    Group.objects.filter(practice=practice).update(auto_post=False)
    guarantor = guarantor_of(practice)
    receipt = paid_receipt(guarantor, 4000)
    assert balances(guarantor).unapplied_funds == 4000
    day_1.move_to(DAY_2)

    refund(receipt, 1500, actor)

    assert set(line_paid(practice).values()) == {0}
    assert (balances(guarantor).unapplied_funds, balances(guarantor).current_balance) == (
        2500,
        6500,
    )
    assert_consistent(practice)


def test_a_refund_of_an_overpayment_takes_the_credit_before_the_lines(day_1, actor):
    practice = prepared_practice("p4")
    Group.objects.filter(practice=practice).update(allow_prepayment=True)
    guarantor = guarantor_of(practice)
    receipt = paid_receipt(guarantor, 10000)  # $90.00 on the lines, $10.00 of credit
    day_1.move_to(DAY_2)

    refund(receipt, 1500, actor)

    # The $10.00 credit goes first, then $5.00 off the latest line.
    assert balances(guarantor).unapplied_funds == 0
    assert line_paid(practice) == {("100", 1): 3000, ("200", 1): 2000, ("200", 2): 3500}
    assert balances(guarantor).current_balance == 500
    assert_consistent(practice)


# --- Idempotency and failures ---------------------------------------------------------------


def test_the_same_key_twice_refunds_once_and_answers_the_same_receipt(paid, actor):
    k = key()
    first = refund(paid, 2000, actor, k)

    again = refund(paid, 2000, actor, k)

    assert again.pk == first.pk
    assert gateway_refunds(paid) == [2000]
    assert refunds_made() == 1
    assert AuditEvent.objects.filter(action="payments.refund.succeeded").count() == 1


def test_the_same_key_with_another_amount_is_refused(paid, actor):
    k = key()
    refund(paid, 2000, actor, k)

    with pytest.raises(KeyReused):
        refund(paid, 2500, actor, k)

    assert gateway_refunds(paid) == [2000]


def test_a_refused_request_does_not_use_up_its_key(paid, actor):
    k = key()
    with pytest.raises(PaymentRefused):
        refund(paid, 9000, actor, k)

    made = refund(paid, 2000, actor, k)

    assert made.amount_cents == 2000


@pytest.mark.parametrize(
    "fault", [Fault.TIMEOUT_AFTER_COMMIT, Fault.HTTP_500_AFTER_COMMIT, Fault.TIMEOUT_BEFORE_COMMIT]
)
def test_a_refund_the_gateway_did_not_answer_is_finished_by_a_retry_without_refunding_twice(
    practice, guarantor, paid, actor, fault
):
    k = key()
    with faults.inject(fault, [Operation.REFUND]), pytest.raises(RefundIncomplete):
        refund(paid, 2500, actor, k)

    # No receipt yet; the amount stays reserved, so no other refund can take it meanwhile.
    assert refunds_made() == 0
    attempt = RefundAttempt.objects.get(idempotency_key=k)
    assert attempt.status == RefundAttempt.Status.INTERRUPTED
    [part] = attempt.parts.all()
    assert (part.status, part.uncertain, part.transaction_id) == (
        RefundPart.Status.PENDING,
        True,
        "",
    )
    with pytest.raises(PaymentRefused) as refused:
        refund(paid, 7000, actor)
    assert "$45.00 left to refund" in refused.value.message
    done_before = gateway_refunds(paid)
    assert done_before == ([] if fault == Fault.TIMEOUT_BEFORE_COMMIT else [2500])

    made = refund(paid, 2500, actor, k)

    assert made.amount_cents == 2500
    assert gateway_refunds(paid) == [2500]
    assert refunds_made() == 1
    part.refresh_from_db()
    assert (part.status, part.uncertain) == (RefundPart.Status.REFUNDED, False)
    assert receipt_content(made).transaction_numbers == (Refund.objects.get().refund_id,)
    assert balances(guarantor).current_balance == 2000 + 2500
    assert_consistent(practice)
    assert AuditEvent.objects.filter(action="payments.refund.interrupted").count() == 1


@pytest.mark.parametrize(
    ("fault", "dated"),
    [(Fault.TIMEOUT_AFTER_COMMIT, DAY_2.date()), (Fault.TIMEOUT_BEFORE_COMMIT, DAY_3.date())],
)
def test_a_refund_finished_on_a_later_day_is_dated_the_day_the_gateway_made_it(
    day_1, practice, paid, actor, fault, dated
):
    k = key()
    with faults.inject(fault, [Operation.REFUND]), pytest.raises(RefundIncomplete):
        refund(paid, 2500, actor, k)
    day_1.move_to(DAY_3)

    made = refund(paid, 2500, actor, k)

    assert made.date == dated
    assert made.reference_batch is not None
    assert (made.reference_batch.date, made.reference_batch.is_pops) == (dated, True)
    [totals] = batches_of(practice, dated)
    assert (totals.receipts, totals.refunds_cents) == (1, 2500)
    assert_consistent(practice)


def test_a_refused_connection_refunds_nothing_and_keeps_no_attempt(paid, actor):
    k = key()
    with (
        faults.inject(Fault.CONNECTION_REFUSED, [Operation.REFUND]),
        pytest.raises(PaymentsUnavailable) as unavailable,
    ):
        refund(paid, 2500, actor, k)
    assert not isinstance(unavailable.value, RefundIncomplete)
    assert not RefundAttempt.objects.exists()
    assert not RefundPart.objects.exists()
    assert gateway_refunds(paid) == []
    assert AuditEvent.objects.filter(action="payments.refund.abandoned").count() == 1

    # The key is free: even another amount may use it now.
    made = refund(paid, 3000, actor, k)
    assert made.amount_cents == 3000


def test_a_refund_the_gateway_refuses_is_refused_and_frees_its_key(practice, paid, actor):
    """The practice refunded most of it on the gateway's own site: the gateway refuses more."""
    [charge] = gateway_transactions(paid)
    part = PaymentPart.objects.get(attempt__receipt=paid)
    gateway_for(part.merchant_account).refund(
        RefundRequest(charge.transaction_id, 6500, "refunded-on-the-gateway-site")
    )
    k = key()

    with pytest.raises(PaymentRefused) as refused:
        refund(paid, 1000, actor, k)

    assert refused.value.path == "amount"
    assert "The card processor refused the refund" in refused.value.message
    assert not RefundAttempt.objects.exists()
    assert refunds_made() == 0
    assert refund(paid, 500, actor, k).amount_cents == 500


def test_a_reset_connection_may_have_refunded_so_the_attempt_is_kept(paid, actor):
    k = key()
    with (
        faults.inject(Fault.CONNECTION_RESET, [Operation.REFUND]),
        pytest.raises(RefundIncomplete),
    ):
        refund(paid, 2500, actor, k)

    assert RefundAttempt.objects.get(idempotency_key=k).status == RefundAttempt.Status.INTERRUPTED
    assert refund(paid, 2500, actor, k).amount_cents == 2500
    assert gateway_refunds(paid) == [2500]


def test_a_refund_abandoned_by_a_dead_process_is_taken_over_once_it_is_stale(
    day_1, practice, paid, actor, monkeypatch
):
    k = key()

    def crash(*args, **kwargs):
        raise SystemExit("the worker died after the gateway answered")

    with monkeypatch.context() as patched:
        patched.setattr(refunds, "_settle", crash)
        with pytest.raises(SystemExit):
            refund(paid, 2500, actor, k)

    assert gateway_refunds(paid) == [2500]
    with pytest.raises(InProgress):  # it might still be running
        refund(paid, 2500, actor, k)
    day_1.move_to(DAY_2 + refunds.STALE_AFTER + dt.timedelta(seconds=1))

    made = refund(paid, 2500, actor, k)

    assert made.amount_cents == 2500
    assert gateway_refunds(paid) == [2500]
    assert_consistent(practice)


def test_interrupted_refunds_nobody_retried_are_finished_by_the_reconciler(practice, paid, actor):
    with (
        faults.inject(Fault.TIMEOUT_AFTER_COMMIT, [Operation.REFUND]),
        pytest.raises(RefundIncomplete),
    ):
        refund(paid, 2500, actor)
    with faults.inject(Fault.TIMEOUT_AFTER_COMMIT, [Operation.REFUND]):
        assert complete_interrupted_refunds() == 0  # still unanswered: left for the next run

    assert complete_interrupted_refunds() == 1

    assert refunds_made() == 1
    assert gateway_refunds(paid) == [2500]
    assert complete_interrupted_refunds() == 0
    assert_consistent(practice)


# --- Concurrency (PostgreSQL: several real connections) -------------------------------------


def multi_connection(test):
    """PostgreSQL only, with real commits (threads cannot see a test transaction)."""
    for mark in (
        pytest.mark.postgres,
        pytest.mark.django_db(transaction=True),
        pytest.mark.skipif(
            connection.vendor != "postgresql",
            reason="needs several concurrent PostgreSQL connections",
        ),
    ):
        test = mark(test)
    return test


@multi_connection
def test_concurrent_requests_with_one_key_refund_once(paid, actor):
    k = key()

    outcomes = run_concurrently([lambda: refund(paid, 2500, actor, k)] * 20)

    made = Receipt.objects.get(type=Receipt.Type.REFUND)
    unexpected = [
        o
        for o in outcomes
        if not isinstance(o, InProgress) and not (isinstance(o, Receipt) and o.pk == made.pk)
    ]
    assert not unexpected, unexpected
    assert gateway_refunds(paid) == [2500]
    assert refund(paid, 2500, actor, k).pk == made.pk


@multi_connection
def test_concurrent_refunds_under_many_keys_never_pass_what_was_captured(practice, paid, actor):
    outcomes = run_concurrently([lambda: refund(paid, 1500, actor)] * 10)

    made = [o for o in outcomes if isinstance(o, Receipt)]
    refused = [o for o in outcomes if isinstance(o, PaymentRefused)]
    assert len(made) == 4  # $60.00 of the $70.00; a fifth $15.00 would pass it
    assert len(refused) == 6, outcomes
    assert gateway_refunds(paid) == [1500] * 4
    assert PaymentPart.objects.get(attempt__receipt=paid).refunded_cents == 6000
    assert_consistent(practice)


@multi_connection
def test_two_concurrent_refunds_that_together_pass_what_was_captured_one_wins(
    practice, guarantor, paid, actor
):
    outcomes = run_concurrently(
        [lambda: refund(paid, 4000, actor), lambda: refund(paid, 5000, actor)]
    )

    [made] = [o for o in outcomes if isinstance(o, Receipt)]
    [refused] = [o for o in outcomes if isinstance(o, PaymentRefused)]
    # Refused by POPS before the gateway was asked (the winner's amount was reserved, or
    # already refunded), never by the gateway itself.
    assert refused.path == "amount"
    left = "$30.00" if made.amount_cents == 4000 else "$20.00"
    assert f"more than the {left} left to refund on this receipt" in refused.message
    assert not AuditEvent.objects.filter(action="payments.refund.abandoned").exists()
    assert gateway_refunds(paid) == [made.amount_cents]
    assert refunds_made() == 1
    assert PaymentPart.objects.get(attempt__receipt=paid).refunded_cents == made.amount_cents
    assert balances(guarantor).current_balance == 2000 + made.amount_cents
    assert_consistent(practice)


@multi_connection
def test_a_void_finishing_while_refunds_are_asked_for_wins_and_no_refund_is_made(
    day_1, practice, guarantor, actor
):
    """The void was asked for at 23:59:50 and the gateway did not answer; next morning it is
    retried while refunds of the same payment are asked for."""
    day_1.move_to(dt.datetime(2026, 10, 5, 23, 59, 50, tzinfo=CHICAGO))
    receipt = paid_receipt(guarantor, 7000)
    with (
        faults.inject(Fault.TIMEOUT_BEFORE_COMMIT, [Operation.VOID]),
        pytest.raises(PaymentsUnavailable),
    ):
        void_receipt(receipt, reason="Cancelled", actor=actor)
    day_1.move_to(dt.datetime(2026, 10, 6, 0, 0, 5, tzinfo=CHICAGO))

    outcomes = run_concurrently(
        [lambda: void_receipt(receipt, reason="Cancelled", actor=actor)]
        + [lambda: refund(receipt, 2000, actor)] * 4
    )

    voided, *refused = outcomes
    assert isinstance(voided, Receipt), voided
    assert voided.status == Receipt.Status.VOIDED
    assert all(isinstance(o, PaymentRefused) for o in refused), refused
    # Refused while the void is under way, or, for a refund that starts after it finished
    # (the threads start at about the same moment, not at once), as a voided receipt.
    assert all(
        "void of this payment is under way" in o.message or o.message.endswith("is Voided.")
        for o in refused
    ), [o.message for o in refused]
    assert [t.status for t in gateway_transactions(receipt)] == [Transaction.Status.VOIDED]
    assert gateway_refunds(receipt) == []
    assert refunds_made() == 0
    assert not RefundAttempt.objects.exists()
    assert balances(guarantor).current_balance == 9000
    assert_consistent(practice)


@multi_connection
def test_a_void_and_refunds_of_one_guarantors_payments_at_once_leave_a_consistent_ledger(
    day_1, practice, guarantor, actor
):
    yesterday = paid_receipt(guarantor, 4000)  # E100-1 $30.00, then $10.00 of E200-1
    day_1.move_to(DAY_2)
    today = paid_receipt(guarantor, 3000)  # the rest of E200-1 ($10.00), $20.00 of E200-2

    outcomes = run_concurrently(
        [lambda: void_receipt(today, reason="Duplicate", actor=actor)]
        + [lambda: refund(yesterday, 1500, actor)] * 3
    )

    voided, *refunds_ = outcomes
    assert isinstance(voided, Receipt), voided
    made = [o for o in refunds_ if isinstance(o, Receipt)]
    refused = [o for o in refunds_ if isinstance(o, PaymentRefused)]
    assert (len(made), len(refused)) == (2, 1), refunds_  # $30.00 of the $40.00
    # Yesterday's $30.00 comes off its latest application first: E200-1's $10.00, then $20.00
    # of E100-1; today's payment is gone from E200-1 and E200-2.
    assert line_paid(practice) == {("100", 1): 1000, ("200", 1): 0, ("200", 2): 0}
    assert balances(guarantor).current_balance == 8000
    assert gateway_refunds(yesterday) == [1500, 1500]
    assert [t.status for t in gateway_transactions(today)] == [Transaction.Status.VOIDED]
    assert_consistent(practice)


@multi_connection
def test_two_voids_of_one_receipt_at_once_void_it_once(practice, guarantor, actor):
    receipt = paid_receipt(guarantor, 7000)

    outcomes = run_concurrently(
        [lambda: void_receipt(receipt, reason="Duplicate", actor=actor)] * 4
    )

    voided = [o for o in outcomes if isinstance(o, Receipt)]
    refused = [o for o in outcomes if isinstance(o, PaymentRefused)]
    assert (len(voided), len(refused)) == (1, 3), outcomes
    assert all("voided already" in o.message for o in refused)
    assert AuditEvent.objects.filter(action="payments.receipt.voided").count() == 1
    assert LedgerEntry.objects.filter(receipt=receipt, reverses__isnull=False).count() == 4
    assert balances(guarantor).current_balance == 9000
    assert_consistent(practice)


def test_the_reconcile_command_finishes_an_interrupted_refund(practice, paid, actor):
    with (
        faults.inject(Fault.TIMEOUT_AFTER_COMMIT, [Operation.REFUND]),
        pytest.raises(RefundIncomplete),
    ):
        refund(paid, 2500, actor)
    out = io.StringIO()

    call_command("payments", "reconcile", stdout=out, stderr=io.StringIO())

    assert "Finished 0 interrupted void(s) and 1 interrupted refund(s)." in out.getvalue()
    assert refunds_made() == 1
    assert gateway_refunds(paid) == [2500]
    assert_consistent(practice)
