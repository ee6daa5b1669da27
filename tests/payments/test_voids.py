"""A void, on the payment's own practice-local day: the gateway cancels it (every part of a split
payment), the receipt is kept as Voided and reversing entries undo its postings exactly. Refused
(nothing written, nothing called at the gateway) on a later day, for a refund, an Unsuccessful
or imported receipt, or a receipt voided already; finished by a retry if the gateway did not
answer, even after midnight.

The scenario builders at the top are shared with test_refunds.py, the receipt-actions API tests
and the ledger state machine.
"""

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from pops.core.audit import Actor
from pops.core.models import AuditEvent, User
from pops.groups.services import prepare_practice
from pops.ledger.models import (
    Application,
    Guarantor,
    LedgerEntry,
    Practice,
    Receipt,
    ReferenceBatch,
    ServiceLine,
)
from pops.ledger.services.balances import Balances, guarantor_balances
from pops.ledger.services.batches import batches_of
from pops.ledger.services.replay import differences
from pops.payments.gateways.base import RefundRequest
from pops.payments.gateways.registry import gateway_for
from pops.payments.gateways.sandbox import faults
from pops.payments.gateways.sandbox.faults import Fault, Operation
from pops.payments.gateways.sandbox.models import Refund, Transaction
from pops.payments.models import PaymentAttempt, PaymentPart, RefundAttempt, VoidRequest
from pops.payments.services import voids
from pops.payments.services.attempts import PaymentRequest, pay
from pops.payments.services.errors import PaymentRefused, PaymentsUnavailable
from pops.payments.services.receipts import receipt_content
from pops.payments.services.refunds import refund_receipt
from pops.payments.services.voids import complete_interrupted_voids, void_receipt
from tests.conftest import run_import
from tests.payments.conftest import APPROVED, DECLINED, card_token
from tests.payments.test_split_payments import Split

pytestmark = pytest.mark.django_db

# --- Scenario builders (shared) -----------------------------------------------------------------

TZ = "America/Chicago"
CHICAGO = ZoneInfo(TZ)
# Monday noon in Chicago: the payment's day in the tests.
DAY_1 = dt.datetime(2026, 10, 5, 12, 0, tzinfo=CHICAGO)
GUARANTOR = "2010"
# E100-1 $30.00 (oldest), E200-1 $20.00, E200-2 $40.00: $90.00 owed in all.
LINES = {("100", 1): 3000, ("200", 1): 2000, ("200", 2): 4000}


def scenario(practice_id: str = "p1", *, imported_receipt: bool = False) -> dict[str, Any]:
    """An import document: one guarantor owing $90.00 over three lines of two visits."""
    encounters = [
        {
            "number": "100",
            "patient": "P1",
            "facility": "F1",
            "provider": "D1",
            "service_date": "2026-09-01",
            "lines": [{"line": 1, "billed": "30.00"}],
        },
        {
            "number": "200",
            "patient": "P1",
            "facility": "F1",
            "provider": "D1",
            "service_date": "2026-09-05",
            "lines": [{"line": 1, "billed": "20.00"}, {"line": 2, "billed": "40.00"}],
        },
    ]
    document: dict[str, Any] = {
        "practice": {"id": practice_id, "name": f"Practice {practice_id}", "time_zone": TZ},
        "facilities": [{"id": "F1", "name": "Main Street"}],
        "providers": [{"id": "D1", "name": "Dr. Ada Ames"}],
        "guarantors": [{"id": GUARANTOR, "first_name": "Pat", "last_name": "Lee"}],
        "patients": [{"id": "P1", "guarantor": GUARANTOR, "first_name": "Pat", "last_name": "Lee"}],
        "encounters": encounters,
    }
    if imported_receipt:
        document["receipts"] = [
            {
                "id": "R-OFFICE-1",
                "guarantor": GUARANTOR,
                "date": "2026-09-20",
                "amount": "5.00",
                "type": "payment",
                "method": "cash",
                "source": "office",
                "applications": [],
            }
        ]
    return document


def prepared_practice(practice_id: str = "p1", **options: Any) -> Practice:
    practice = run_import(scenario(practice_id, **options)).practice
    prepare_practice(practice, actor=Actor.command("tests"))
    return practice


def guarantor_of(practice: Practice) -> Guarantor:
    return Guarantor.objects.get(practice=practice, external_id=GUARANTOR)


def pay_card(
    guarantor: Guarantor, cents: int, card: str = APPROVED, key: str | None = None
) -> PaymentAttempt:
    key = key or str(uuid.uuid4())
    return pay(
        PaymentRequest(
            guarantor,
            cents,
            key,
            f"fingerprint-{key}",
            Actor.command("tests"),
            payment_token=card_token(card),
        )
    )


def paid_receipt(guarantor: Guarantor, cents: int) -> Receipt:
    attempt = pay_card(guarantor, cents)
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED, attempt.decline_message
    assert attempt.receipt is not None
    return attempt.receipt


def staff(practice: Practice, username: str = "frontdesk") -> Actor:
    user, _ = User.objects.get_or_create(username=username, defaults={"practice": practice})
    return Actor.staff(user)


def balances(guarantor: Guarantor) -> Balances:
    return guarantor_balances(guarantor, include_new_charges=False)


def line_paid(practice: Practice) -> dict[tuple[str, int], int]:
    """Patient money on each line, by (encounter number, line)."""
    return {
        (number, line): paid
        for number, line, paid in ServiceLine.objects.filter(practice=practice).values_list(
            "encounter__number", "line", "patient_paid_cents"
        )
    }


def gateway_transactions(receipt: Receipt) -> list[Transaction]:
    """The Sandbox's own rows for the receipt's card transactions."""
    ids = PaymentPart.objects.filter(attempt__receipt=receipt).values_list(
        "transaction_id", flat=True
    )
    return list(Transaction.objects.filter(transaction_id__in=list(ids)).order_by("pk"))


def gateway_refunds(receipt: Receipt) -> list[int]:
    """Every refund the Sandbox made of the receipt's transactions, in cents."""
    transactions = gateway_transactions(receipt)
    return list(
        Refund.objects.filter(transaction__in=transactions)
        .order_by("pk")
        .values_list("amount_cents", flat=True)
    )


def assert_consistent(practice: Practice) -> None:
    assert differences(practice.pk) == []


# Shared with test_refunds.py and tests/api/test_receipt_actions_api.py.
@pytest.fixture
def day_1() -> Iterator[time_machine.Traveller]:
    """The clock stands still at DAY_1 (move it with `.move_to`)."""
    with time_machine.travel(DAY_1, tick=False) as traveller:
        yield traveller


@pytest.fixture
def practice(day_1: time_machine.Traveller) -> Practice:
    return prepared_practice()


@pytest.fixture
def guarantor(practice: Practice) -> Guarantor:
    return guarantor_of(practice)


def nothing_changed_since(practice: Practice) -> Callable[[], None]:
    """A check that, when called, finds no row written or changed anywhere a void or a refund
    writes (POPS's tables and the Sandbox's), and the same gateway state, as when it was made."""

    def state() -> dict[str, object]:
        return {
            "entries": LedgerEntry.objects.count(),
            "receipts": list(Receipt.objects.order_by("pk").values_list("pk", "status")),
            "applications": list(Application.objects.values_list("pk", "amount_cents")),
            "audit": AuditEvent.objects.count(),
            "voids": VoidRequest.objects.count(),
            "refunds": RefundAttempt.objects.count(),
            "parts": list(
                PaymentPart.objects.order_by("pk").values_list("status", "refunded_cents")
            ),
            "gateway": list(
                Transaction.objects.order_by("pk").values_list("status", "refunded_cents")
            ),
            "gateway_refunds": Refund.objects.count(),
        }

    before = state()

    def check() -> None:
        assert state() == before

    return check


# --- Voids ----------------------------------------------------------------------------------


def test_a_same_day_void_reverses_the_payment_exactly(practice, guarantor):
    before, lines_before = balances(guarantor), line_paid(practice)
    receipt = paid_receipt(guarantor, 7000)
    assert balances(guarantor).current_balance == 2000
    assert line_paid(practice) == {("100", 1): 3000, ("200", 1): 2000, ("200", 2): 2000}
    entries_before = set(LedgerEntry.objects.values_list("pk", flat=True))

    voided = void_receipt(receipt, reason="Paid twice by mistake", actor=staff(practice))

    assert voided.pk == receipt.pk
    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.VOIDED
    assert receipt.void_reason == "Paid twice by mistake"
    assert receipt.voided_at == DAY_1
    assert receipt.amount_cents == 7000  # kept as it was, shown as deleted
    assert balances(guarantor) == before
    assert line_paid(practice) == lines_before
    assert not Application.objects.filter(receipt=receipt).exists()
    assert_consistent(practice)
    # Reversing entries, one per entry of the payment; none changed.
    new = LedgerEntry.objects.exclude(pk__in=entries_before)
    originals = {e.pk: e for e in LedgerEntry.objects.filter(receipt=receipt, reverses=None)}
    assert len(new) == len(originals) == 4  # the payment and its three applications
    for entry in new:
        original = originals[entry.reverses_id]
        assert (entry.debit, entry.credit) == (original.credit, original.debit)
        assert (entry.amount_cents, entry.line_id) == (original.amount_cents, original.line_id)
    # The gateway voided it; the parts say so; the batch no longer counts it.
    assert [t.status for t in gateway_transactions(receipt)] == [Transaction.Status.VOIDED]
    assert set(
        PaymentPart.objects.filter(attempt__receipt=receipt).values_list("status", flat=True)
    ) == {PaymentPart.Status.VOIDED}
    [totals] = batches_of(practice, receipt.date)
    assert (totals.receipts, totals.total_cents) == (0, 0)
    assert receipt.reference_batch == totals.batch  # still in its batch, as deleted
    # Who asked, and the void itself, are audited.
    requested = AuditEvent.objects.get(action="payments.void.requested")
    event = AuditEvent.objects.get(action="payments.receipt.voided")
    for audited in (requested, event):
        assert (audited.actor_label, audited.resource_id) == ("frontdesk", receipt.number)
        assert audited.data["reason"] == "Paid twice by mistake"
    assert event.data["transactions"] == [t.transaction_id for t in gateway_transactions(receipt)]
    request = VoidRequest.objects.get(receipt=receipt)
    assert (request.reason, request.actor_label, request.requested_at) == (
        "Paid twice by mistake",
        "frontdesk",
        DAY_1,
    )


def test_a_void_of_a_split_payment_voids_every_transaction_at_the_gateway(day_1):
    split = Split()
    attempt = split.pay(10000)
    receipt = attempt.receipt
    assert receipt is not None
    transactions = [part.transaction_id for part in split.parts(attempt)]
    assert len(transactions) == 3

    void_receipt(receipt, reason="Wrong guarantor", actor=staff(split.practice))

    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.VOIDED
    at_gateway = Transaction.objects.filter(transaction_id__in=transactions)
    assert sorted(at_gateway.values_list("status", flat=True)) == [Transaction.Status.VOIDED] * 3
    assert receipt_content(receipt).transaction_numbers == tuple(transactions)
    assert split.balance() == 10000
    assert_consistent(split.practice)


def test_voiding_twice_is_refused_and_changes_nothing(practice, guarantor):
    receipt = paid_receipt(guarantor, 2500)
    void_receipt(receipt, reason="Wrong card", actor=staff(practice))
    unchanged = nothing_changed_since(practice)

    with pytest.raises(PaymentRefused) as refused:
        void_receipt(receipt, reason="Another reason", actor=staff(practice))

    assert refused.value.path == "receipt"
    assert "voided already, on 2026-10-05" in refused.value.message
    unchanged()
    receipt.refresh_from_db()
    assert receipt.void_reason == "Wrong card"


def test_other_payments_of_the_day_stay_in_the_batch(practice, guarantor):
    kept = paid_receipt(guarantor, 1000)
    voided = paid_receipt(guarantor, 2000)

    void_receipt(voided, reason="Duplicate", actor=staff(practice))

    [totals] = batches_of(practice, kept.date)
    assert (totals.receipts, totals.payments_cents) == (1, 1000)
    assert balances(guarantor).current_balance == 8000
    assert_consistent(practice)


def test_a_void_follows_the_practice_local_date_not_utc(day_1, practice, guarantor):
    # 23:30 in Chicago is already tomorrow in UTC; the void is still on the payment's day.
    day_1.move_to(dt.datetime(2026, 10, 5, 23, 30, tzinfo=CHICAGO))
    receipt = paid_receipt(guarantor, 1500)
    assert receipt.date == dt.date(2026, 10, 5)
    day_1.move_to(dt.datetime(2026, 10, 5, 23, 59, 59, tzinfo=CHICAGO))

    void_receipt(receipt, reason="Same evening", actor=staff(practice))

    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.VOIDED


def test_a_void_after_practice_local_midnight_is_refused_and_changes_nothing(
    day_1, practice, guarantor
):
    day_1.move_to(dt.datetime(2026, 10, 5, 23, 59, 30, tzinfo=CHICAGO))
    receipt = paid_receipt(guarantor, 1500)
    unchanged = nothing_changed_since(practice)
    day_1.move_to(dt.datetime(2026, 10, 6, 0, 0, 1, tzinfo=CHICAGO))

    with pytest.raises(PaymentRefused) as refused:
        void_receipt(receipt, reason="Too late", actor=staff(practice))

    assert refused.value.path == "receipt"
    assert "only on the day it was made (2026-10-05)" in refused.value.message
    assert "from the next day on, refund it instead" in refused.value.message
    unchanged()


def test_a_void_needs_a_reason_and_calls_nothing_without_one(practice, guarantor):
    receipt = paid_receipt(guarantor, 1500)
    unchanged = nothing_changed_since(practice)

    for reason in ("", "   ", "x" * 301):
        with pytest.raises(PaymentRefused) as refused:
            void_receipt(receipt, reason=reason, actor=staff(practice))
        assert refused.value.path == "reason"

    unchanged()


def test_an_unsuccessful_or_imported_receipt_cannot_be_voided(day_1):
    practice = prepared_practice(imported_receipt=True)
    guarantor = guarantor_of(practice)
    declined = pay_card(guarantor, 1000, card=DECLINED).receipt
    imported = Receipt.objects.get(number="R-OFFICE-1")
    unchanged = nothing_changed_since(practice)

    for receipt, words in (
        (declined, "this one is Unsuccessful"),
        (imported, "this one was imported"),
    ):
        with pytest.raises(PaymentRefused) as refused:
            void_receipt(receipt, reason="No", actor=staff(practice))
        assert words in refused.value.message

    unchanged()


def test_an_unreachable_gateway_voids_nothing_and_a_retry_voids_once(practice, guarantor):
    receipt = paid_receipt(guarantor, 3000)

    with (
        faults.inject(Fault.CONNECTION_REFUSED, [Operation.VOID]),
        pytest.raises(PaymentsUnavailable) as unavailable,
    ):
        void_receipt(receipt, reason="Cancelled", actor=staff(practice))

    assert "Try again" in str(unavailable.value)
    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.PAID
    assert [t.status for t in gateway_transactions(receipt)] == [Transaction.Status.APPROVED]
    void_receipt(receipt, reason="Cancelled", actor=staff(practice))
    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.VOIDED
    assert AuditEvent.objects.filter(action="payments.receipt.voided").count() == 1
    assert_consistent(practice)


def test_a_void_whose_answer_was_lost_before_midnight_is_finished_by_a_retry_the_next_day(
    day_1, practice, guarantor
):
    day_1.move_to(dt.datetime(2026, 10, 5, 23, 59, 50, tzinfo=CHICAGO))
    receipt = paid_receipt(guarantor, 3000)
    with (
        faults.inject(Fault.TIMEOUT_AFTER_COMMIT, [Operation.VOID]),
        pytest.raises(PaymentsUnavailable),
    ):
        void_receipt(receipt, reason="Cancelled", actor=staff(practice))
    # The gateway voided it, POPS did not hear: the receipt is still Paid, its void under way.
    assert [t.status for t in gateway_transactions(receipt)] == [Transaction.Status.VOIDED]
    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.PAID
    day_1.move_to(dt.datetime(2026, 10, 6, 0, 0, 5, tzinfo=CHICAGO))
    # Meanwhile it cannot be refunded (the money is back with the patient already).
    with pytest.raises(PaymentRefused) as refused:
        refund_receipt(receipt, 1000, actor=staff(practice), idempotency_key="k-1")
    assert "void of this payment is under way" in refused.value.message

    void_receipt(receipt, reason="Cancelled again", actor=staff(practice, "billing"))

    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.VOIDED
    assert receipt.void_reason == "Cancelled"  # the void asked for is the one finished
    assert balances(guarantor).current_balance == 9000
    assert gateway_refunds(receipt) == []
    event = AuditEvent.objects.get(action="payments.receipt.voided")
    assert (event.actor_label, event.data["requested_by"]) == ("billing", "frontdesk")
    assert_consistent(practice)


def test_a_void_nobody_retried_is_finished_by_the_reconciler(day_1, practice, guarantor):
    receipt = paid_receipt(guarantor, 3000)
    with (
        faults.inject(Fault.HTTP_500_AFTER_COMMIT, [Operation.VOID]),
        pytest.raises(PaymentsUnavailable),
    ):
        void_receipt(receipt, reason="Cancelled", actor=staff(practice))
    assert complete_interrupted_voids() == 0  # asked a moment ago: it may still be running

    day_1.move_to(DAY_1 + voids.STALE_AFTER + dt.timedelta(seconds=1))
    with faults.inject(Fault.CONNECTION_REFUSED, [Operation.VOID]):
        assert complete_interrupted_voids() == 0  # still unreachable: left for the next run
    assert complete_interrupted_voids() == 1

    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.VOIDED
    assert complete_interrupted_voids() == 0
    event = AuditEvent.objects.get(action="payments.receipt.voided")
    assert (event.actor_type, event.actor_label) == ("system", "POPS")
    assert_consistent(practice)


def test_a_void_the_gateway_refuses_writes_nothing_and_the_payment_can_be_refunded_later(
    day_1, practice, guarantor
):
    """The practice refunded part of the payment at the gateway itself: the gateway will not
    void it any more. Nothing happened, so the void request is dropped."""
    receipt = paid_receipt(guarantor, 3000)
    [txn] = gateway_transactions(receipt)
    gateway = gateway_for(PaymentPart.objects.get(attempt__receipt=receipt).merchant_account)
    gateway.refund(RefundRequest(txn.transaction_id, 100, "refunded-on-the-gateway-site"))

    with pytest.raises(PaymentRefused) as refused:
        void_receipt(receipt, reason="Cancelled", actor=staff(practice))

    assert "cannot void this payment" in refused.value.message
    assert "refund it instead" in refused.value.message
    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.PAID
    assert not VoidRequest.objects.exists()
    assert AuditEvent.objects.filter(action="payments.void.refused").count() == 1
    day_1.move_to(DAY_1 + dt.timedelta(days=1))
    made = refund_receipt(receipt, 1000, actor=staff(practice), idempotency_key="k-1")
    assert made.amount_cents == 1000


def test_a_split_payment_the_gateway_voids_only_in_part_stays_paid_for_staff(day_1):
    split = Split()
    attempt = split.pay(10000)
    receipt = attempt.receipt
    assert receipt is not None
    _, second, _ = split.parts(attempt)
    # The second transaction was partly refunded on the gateway's own site: it cannot be voided.
    gateway_for(second.merchant_account).refund(
        RefundRequest(second.transaction_id, 100, "refunded-on-the-gateway-site")
    )

    with pytest.raises(PaymentsUnavailable) as unavailable:
        void_receipt(receipt, reason="Wrong guarantor", actor=staff(split.practice))

    assert "the practice must settle it" in str(unavailable.value)
    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.PAID
    assert [p.status for p in split.parts(attempt)] == [
        PaymentPart.Status.VOIDED,
        PaymentPart.Status.APPROVED,
        PaymentPart.Status.APPROVED,
    ]
    assert VoidRequest.objects.filter(receipt=receipt).exists()  # under way: no refund now
    assert_consistent(split.practice)


def test_a_receipt_of_another_day_was_voided_in_its_batch_only(day_1, practice, guarantor):
    """A void leaves the day's POPS batch open and other days' batches alone."""
    first = paid_receipt(guarantor, 1000)
    day_1.move_to(DAY_1 + dt.timedelta(days=1))
    second = paid_receipt(guarantor, 2000)

    void_receipt(second, reason="Duplicate", actor=staff(practice))

    assert first.reference_batch != second.reference_batch
    assert ReferenceBatch.objects.filter(status=ReferenceBatch.Status.OPEN).count() == 2
    [day_one] = batches_of(practice, first.date)
    assert (day_one.receipts, day_one.total_cents) == (1, 1000)
    assert_consistent(practice)


def test_a_void_the_gateway_cannot_be_used_for_stays_under_way_until_it_can(
    practice, guarantor, settings
):
    receipt = paid_receipt(guarantor, 3000)
    settings.SANDBOX_GATEWAY_ENABLED = False  # the gateway refuses its credentials

    with pytest.raises(PaymentsUnavailable):
        void_receipt(receipt, reason="Cancelled", actor=staff(practice))

    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.PAID
    assert VoidRequest.objects.filter(receipt=receipt).exists()  # it may be fixed and retried
    settings.SANDBOX_GATEWAY_ENABLED = True
    void_receipt(receipt, reason="Cancelled", actor=staff(practice))
    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.VOIDED
    assert_consistent(practice)
