"""The reconciler settles what the gateway's silence left open, by asking it, and never charges.

The scenario builders at the top are shared with test_concurrency.py and test_faults.py.
"""

import datetime as dt
import io
import logging
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from pops.core import clock
from pops.core.audit import Actor
from pops.groups.models import Group
from pops.groups.services import prepare_practice
from pops.ledger.models import Facility, Guarantor, LedgerEntry, Practice, Receipt
from pops.ledger.services.balances import guarantor_balances
from pops.payments.gateways.sandbox import faults
from pops.payments.gateways.sandbox.adapter import SandboxGateway
from pops.payments.gateways.sandbox.faults import Fault, Operation
from pops.payments.gateways.sandbox.models import Transaction
from pops.payments.models import MerchantAccount, PaymentAttempt, PaymentPart
from pops.payments.services import attempts
from pops.payments.services.attempts import PaymentRequest, pay
from pops.payments.services.errors import PaymentRefused
from pops.payments.services.reconcile import reconcile
from tests.conftest import run_import
from tests.payments.conftest import APPROVED, DECLINED, TIMES_OUT, card_token, run_concurrently

TZ = "America/Chicago"
LATER = dt.timedelta(minutes=1)

# --- Scenario builders (shared) -----------------------------------------------------------------


def practice_with(
    guarantors: int = 1, balance_cents: int = 10_000, *, facilities: int = 1
) -> Practice:
    """A prepared practice (Sandbox account, default Group) in Chicago whose guarantors G01,
    G02, ... each owe `balance_cents`, spread over one encounter per facility."""
    ids = [f"G{n:02d}" for n in range(1, guarantors + 1)]
    per_facility = balance_cents // facilities
    document: dict[str, Any] = {
        "practice": {"id": "p1", "name": "Practice One", "time_zone": TZ},
        "facilities": [{"id": f"F{n}", "name": f"Clinic {n}"} for n in range(1, facilities + 1)],
        "providers": [{"id": "D1", "name": "Dr. Ada Ames"}],
        "guarantors": [{"id": g, "first_name": "Pat", "last_name": g} for g in ids],
        "patients": [
            {"id": f"P-{g}", "guarantor": g, "first_name": "Pat", "last_name": g} for g in ids
        ],
        "encounters": [
            {
                "number": f"{g}-{n}",
                "patient": f"P-{g}",
                "facility": f"F{n}",
                "provider": "D1",
                "service_date": f"2026-0{n}-01",
                "lines": [
                    {
                        "line": 1,
                        "billed": f"{per_facility // 100}.{per_facility % 100:02d}",
                    }
                ],
            }
            for g in ids
            for n in range(1, facilities + 1)
        ],
    }
    practice = run_import(document).practice
    prepare_practice(practice, actor=Actor.command("tests"))
    return practice


def guarantor(external_id: str = "G01") -> Guarantor:
    return Guarantor.objects.get(external_id=external_id)


def request_for(
    payer: Guarantor,
    amount_cents: int,
    *,
    card: str = APPROVED,
    key: str | None = None,
    token: str | None = None,
) -> PaymentRequest:
    return PaymentRequest(
        guarantor=payer,
        amount_cents=amount_cents,
        idempotency_key=key or str(uuid.uuid4()),
        fingerprint=f"amount={amount_cents}",
        actor=Actor.command("tests"),
        payment_token=token or card_token(card),
    )


def current_balance(payer: Guarantor) -> int:
    return guarantor_balances(payer, include_new_charges=False).current_balance


def pops_receipts() -> Any:
    return Receipt.objects.filter(made_in_pops=True)


def payment_entries() -> int:
    return LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT).count()


def later() -> dt.datetime:
    """An instant past the reconciler's default 30 s grace."""
    return clock.now() + LATER


def run_reconcile_command(*args: str) -> str:
    out = io.StringIO()
    call_command("payments", "reconcile", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


class Crash(BaseException):
    """The process died here (not an Exception, so nothing on the way catches it)."""


# --- The service ------------------------------------------------------------------------------

pytestmark = pytest.mark.django_db


def test_an_approved_charge_is_settled_as_one_receipt_dated_the_day_the_gateway_approved_it():
    practice_with()
    payer = guarantor()
    approved_at = dt.datetime(2026, 12, 1, 23, 59, 50, tzinfo=ZoneInfo(TZ))
    with time_machine.travel(approved_at, tick=False):
        attempt = pay(request_for(payer, 4000, card=TIMES_OUT))
    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    assert attempt.receipt is None

    with time_machine.travel(dt.datetime(2026, 12, 2, 8, 0, tzinfo=ZoneInfo(TZ)), tick=False):
        report = reconcile()

    assert (report.examined, report.settled_paid, report.settled_declined) == (1, 1, 0)
    attempt.refresh_from_db()
    txn = Transaction.objects.get()
    receipt = attempt.receipt
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert receipt.status == Receipt.Status.PAID
    assert receipt.amount_cents == 4000
    assert receipt.date == dt.date(2026, 12, 1)
    assert receipt.reference_batch.date == dt.date(2026, 12, 1)
    assert receipt.card_last4 == "0341"
    part = attempt.parts.get()
    assert part.transaction_id == txn.transaction_id
    assert part.approved_at == txn.created_at
    assert pops_receipts().count() == 1
    assert payment_entries() == 1
    assert current_balance(payer) == 6000


def test_a_charge_the_gateway_never_made_is_declined_with_a_zero_receipt_and_frees_the_amount():
    practice_with()
    payer = guarantor()
    with faults.inject(Fault.TIMEOUT_BEFORE_COMMIT):
        attempt = pay(request_for(payer, 10_000))
    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    # While unknown the amount stays reserved: the balance cannot be paid twice meanwhile.
    with pytest.raises(PaymentRefused):
        pay(request_for(payer, 10_000))

    report = reconcile(now=later())

    assert (report.settled_paid, report.settled_declined, report.still_unknown) == (0, 1, 0)
    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.DECLINED
    assert attempt.decline_code == "not_found"
    assert attempt.receipt.status == Receipt.Status.UNSUCCESSFUL
    assert attempt.receipt.amount_cents == 0
    assert attempt.receipt.reference_batch is None
    assert Transaction.objects.count() == 0
    assert payment_entries() == 0
    assert pay(request_for(payer, 10_000)).status == PaymentAttempt.Status.SUCCEEDED


def test_the_reconciler_never_charges(monkeypatch):
    practice_with()
    with faults.inject(Fault.CONNECTION_RESET):
        pay(request_for(guarantor(), 2500))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the reconciler charged")

    monkeypatch.setattr(SandboxGateway, "charge", refuse)
    assert reconcile(now=later()).settled_declined == 1


def test_a_gateway_that_cannot_answer_leaves_the_attempt_for_the_next_run():
    practice_with()
    attempt = pay(request_for(guarantor(), 2500, card=TIMES_OUT))

    with faults.inject(Fault.TIMEOUT_AFTER_COMMIT, operations=[Operation.QUERY]):
        report = reconcile(now=later())

    assert (report.examined, report.still_unknown, report.overdue) == (1, 1, [])
    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    assert attempt.parts.get().status == PaymentPart.Status.PENDING

    assert reconcile(now=later()).settled_paid == 1
    assert Transaction.objects.count() == 1
    assert pops_receipts().count() == 1


def test_only_attempts_older_than_the_grace_are_examined():
    practice_with()
    pay(request_for(guarantor(), 2500, card=TIMES_OUT))

    assert reconcile().examined == 0  # begun a moment ago
    assert reconcile(older_than=dt.timedelta(0), now=later()).settled_paid == 1
    assert reconcile(now=later()).examined == 0  # settled: nothing left


def test_a_payment_abandoned_after_the_charge_is_settled_after_ten_minutes(monkeypatch):
    practice_with()
    payer = guarantor()

    def die(attempt: PaymentAttempt, parts: object = None, **_: object) -> PaymentAttempt:
        raise Crash

    monkeypatch.setattr(attempts, "finish", die)
    with pytest.raises(Crash):
        pay(request_for(payer, 3000))
    monkeypatch.undo()
    attempt = PaymentAttempt.objects.get()
    assert attempt.status == PaymentAttempt.Status.PROCESSING
    # A single part's answer is written with the outcome, which never came: the reconciler
    # asks the gateway, which holds the charge.
    assert attempt.parts.get().status == PaymentPart.Status.PENDING

    assert reconcile(now=clock.now() + dt.timedelta(minutes=5)).examined == 0
    report = reconcile(now=clock.now() + dt.timedelta(minutes=11))

    assert report.settled_paid == 1
    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert attempt.receipt.amount_cents == 3000
    assert Transaction.objects.count() == 1
    assert current_balance(payer) == 7000


def test_a_payment_abandoned_during_the_gateway_call_is_settled_by_asking(monkeypatch):
    practice_with()

    def die(attempt: PaymentAttempt, parts: object = None, **_: object) -> PaymentAttempt:
        raise Crash

    monkeypatch.setattr(attempts, "finish", die)
    with faults.inject(Fault.HTTP_500_AFTER_COMMIT), pytest.raises(Crash):
        pay(request_for(guarantor(), 3000))
    monkeypatch.undo()
    assert PaymentAttempt.objects.get().parts.get().status == PaymentPart.Status.PENDING

    report = reconcile(now=clock.now() + dt.timedelta(minutes=11))

    assert report.settled_paid == 1
    assert Transaction.objects.count() == 1
    assert pops_receipts().get().amount_cents == 3000


def test_a_payment_abandoned_before_the_gateway_call_is_declined(monkeypatch):
    practice_with()

    def die(*args: object) -> None:
        raise Crash

    monkeypatch.setattr(attempts, "_charge", die)
    with pytest.raises(Crash):
        pay(request_for(guarantor(), 3000))
    monkeypatch.undo()

    report = reconcile(now=clock.now() + dt.timedelta(minutes=11))

    assert report.settled_declined == 1
    assert Transaction.objects.count() == 0
    assert pops_receipts().get().status == Receipt.Status.UNSUCCESSFUL


def test_a_declined_charge_found_by_the_reconciler_declines_the_attempt():
    practice_with()
    with faults.inject(Fault.TIMEOUT_AFTER_COMMIT):
        attempt = pay(request_for(guarantor(), 3000, card=DECLINED))
    assert attempt.status == PaymentAttempt.Status.UNKNOWN

    report = reconcile(now=later())

    assert report.settled_declined == 1
    attempt = PaymentAttempt.objects.get()
    assert attempt.decline_code == "declined"
    assert attempt.receipt.status == Receipt.Status.UNSUCCESSFUL


def _split_practice() -> Guarantor:
    """G01 owes $50.00 at Clinic 1 (its own merchant account) and $50.00 at Clinic 2 (the
    practice's account); the default Group splits payments."""
    practice = practice_with(facilities=2)
    clinic = Facility.objects.get(practice=practice, external_id="F1")
    own = MerchantAccount(practice=practice, facility=clinic, name="Clinic 1", gateway="sandbox")
    own.set_credentials(SandboxGateway.sign_up("clinic-1"))
    own.save()
    Group.objects.filter(practice=practice).update(split_payments=True)
    return guarantor()


def test_an_approved_part_of_a_split_payment_whose_other_part_never_happened_is_voided():
    payer = _split_practice()
    attempt = pay(request_for(payer, 10_000, card=TIMES_OUT))
    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    assert attempt.parts.count() == 2
    assert Transaction.objects.count() == 1  # the second part was never charged

    report = reconcile(now=later())

    assert report.settled_declined == 1
    attempt.refresh_from_db()
    first, second = attempt.parts.order_by("pk")
    assert (first.status, second.status) == (PaymentPart.Status.VOIDED, PaymentPart.Status.DECLINED)
    assert Transaction.objects.get().status == Transaction.Status.VOIDED
    assert Transaction.objects.count() == 1  # nothing charged by the reconciler
    assert attempt.receipt.status == Receipt.Status.UNSUCCESSFUL
    assert payment_entries() == 0
    assert current_balance(payer) == 10_000


def test_a_void_that_does_not_go_through_keeps_the_attempt_unknown_until_it_does():
    payer = _split_practice()
    attempt = pay(request_for(payer, 10_000, card=TIMES_OUT))

    with faults.inject(Fault.TIMEOUT_BEFORE_COMMIT, operations=[Operation.VOID]):
        report = reconcile(now=later())

    assert report.still_unknown == 1
    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    assert Transaction.objects.get().status == Transaction.Status.APPROVED

    assert reconcile(now=later()).settled_declined == 1
    assert Transaction.objects.get().status == Transaction.Status.VOIDED


def test_an_attempt_unknown_for_more_than_a_day_raises_an_alert(caplog):
    practice_with()
    attempt = pay(request_for(guarantor(), 2500, card=TIMES_OUT))
    day_later = attempt.created_at + dt.timedelta(hours=25)

    with (
        faults.inject(Fault.CONNECTION_RESET, operations=[Operation.QUERY]),
        caplog.at_level(logging.ERROR, logger="pops.payments.reconcile"),
    ):
        report = reconcile(now=day_later)

    assert report.overdue == [attempt.pk]
    assert report.still_unknown == 1
    assert "ALERT: 1 attempt(s) unknown for more than 24 hours" in str(report)
    assert any("more than 24 hours" in r.getMessage() for r in caplog.records)
    assert reconcile(now=attempt.created_at + dt.timedelta(hours=1)).overdue == []


def test_the_command_prints_its_report():
    practice_with(guarantors=2)
    pay(request_for(guarantor("G01"), 2500, card=TIMES_OUT))
    with faults.inject(Fault.TIMEOUT_BEFORE_COMMIT):
        pay(request_for(guarantor("G02"), 2500))

    assert run_reconcile_command("--older-than", "3600").startswith("Examined 0 payment")
    out = run_reconcile_command("--older-than", "0")

    assert out == (
        "Examined 2 payment attempt(s): 1 settled paid, 1 settled declined, 0 still unknown.\n"
    )
    assert run_reconcile_command("--older-than", "0").startswith("Examined 0 payment")


def test_the_command_refuses_a_bad_grace():
    with pytest.raises(Exception, match="not a number of seconds"):
        call_command("payments", "reconcile", "--older-than", "soon")


# --- Several reconcilers at once ----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="several reconcilers at once need several PostgreSQL connections",
)
def test_reconcilers_running_side_by_side_settle_each_attempt_once():
    practice_with(guarantors=6, balance_cents=5000)
    for n in range(1, 7):
        pay(request_for(guarantor(f"G{n:02d}"), 5000, card=TIMES_OUT))
    assert PaymentAttempt.objects.filter(status=PaymentAttempt.Status.UNKNOWN).count() == 6

    now = later()
    reports = run_concurrently([lambda: reconcile(now=now)] * 8)

    assert not [r for r in reports if isinstance(r, BaseException)], reports
    assert sum(r.settled_paid for r in reports) >= 6
    assert PaymentAttempt.objects.filter(status=PaymentAttempt.Status.SUCCEEDED).count() == 6
    assert pops_receipts().count() == 6
    assert payment_entries() == 6
    assert Transaction.objects.count() == 6


def test_a_decline_settled_the_next_day_is_dated_the_day_the_patient_tried():
    practice_with()
    payer = guarantor()
    tried = dt.datetime(2026, 11, 20, 23, 50, tzinfo=ZoneInfo(TZ))
    with time_machine.travel(tried, tick=False), faults.inject(Fault.TIMEOUT_BEFORE_COMMIT):
        attempt = pay(request_for(payer, 10_000))
    assert attempt.status == PaymentAttempt.Status.UNKNOWN

    with time_machine.travel(tried + dt.timedelta(hours=1), tick=False):
        reconcile()

    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.DECLINED
    assert attempt.receipt.date == dt.date(2026, 11, 20)
