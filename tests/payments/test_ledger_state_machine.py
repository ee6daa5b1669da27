"""S-34: random sequences of pay, decline, void, partial refunds, retries with the same
idempotency key, gateway answers that never come, the reconciler, time passing and practice-local
midnights. After every step every ledger invariant holds:

- each entry is one balanced transfer (a positive amount between two different accounts), so
  every receipt's transaction, and the whole ledger, sums to 0;
- every stored figure equals a replay of the entries (`differences` is empty);
- cumulative refunds per receipt never pass the captured amount: in POPS's refund receipts, on
  the payment's transactions, and at the gateway;
- a declined attempt has a $0.00 Unsuccessful receipt, no batch and no ledger entry;
- no ledger entry is ever updated or deleted (every earlier row is still there, unchanged):
  voids and refunds are reversing entries;

and the outcome of every step is the one the rules predict: a model of the payments runs
alongside (what is paid, voided, refunded or under way, on which practice-local day), so a void
on a later day, a refund on the payment's day or above what is left, a second void, a refund
while a void is under way, are each refused with nothing written and nothing asked of the
gateway; a retry never charges or refunds twice; every POPS receipt sits in a POPS batch of its
own date; the gateway holds exactly what the receipts say.

Time: each example runs on a frozen clock (`time_machine.travel(..., tick=False)`, started in
`__init__` and stopped in `teardown`), moved only by the rules: `midnight` jumps to a moment of
the next practice-local day with `Traveller.move_to`, `time_passes` moves it on with
`Traveller.shift` (from 23:59:59, one second is a midnight too). Nothing else moves it, so each
step's "today" is known to the model exactly. A step that only moved the clock called nothing
and wrote nothing, and no invariant depends on the time, so the invariants checked after the
step before still stand for it (this keeps the run near 40 s on PostgreSQL).

Each example starts from the same imported practice (a savepoint is rolled back after it): a
first payment (mostly of an earlier day, now and then with a void of it the gateway did not
confirm), then up to 6 steps. About 200 examples under the "ci" Hypothesis profile
(tests/conftest.py; HYPOTHESIS_PROFILE=dev runs 25); STATE_MACHINE_EXAMPLES=10000 runs
the nightly number.
"""

import datetime as dt
import functools
import os
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import tests.ledger.conftest  # noqa: F401 (registers and loads the Hypothesis profiles)
from pops.core import clock
from pops.core.audit import Actor
from pops.core.models import AuditEvent
from pops.groups.services import prepare_practice
from pops.ledger.models import Application, Guarantor, LedgerEntry, Practice, Receipt
from pops.ledger.services.balances import balance_facts, combine
from pops.ledger.services.replay import differences
from pops.payments.gateways.sandbox import faults
from pops.payments.gateways.sandbox.faults import Fault, Operation
from pops.payments.gateways.sandbox.models import Refund, Transaction
from pops.payments.models import (
    PaymentAttempt,
    PaymentPart,
    RefundAttempt,
    RefundPart,
    VoidRequest,
)
from pops.payments.services import voids
from pops.payments.services.attempts import PaymentRequest, pay
from pops.payments.services.errors import PaymentRefused, PaymentsUnavailable
from pops.payments.services.refunds import (
    RefundIncomplete,
    complete_interrupted_refunds,
    refund_receipt,
)
from pops.payments.services.voids import complete_interrupted_voids, void_receipt
from tests.conftest import run_import
from tests.payments.conftest import APPROVED, DECLINED, INSUFFICIENT_FUNDS, card_token
from tests.payments.test_voids import GUARANTOR, TZ, scenario

pytestmark = pytest.mark.django_db

ZONE = ZoneInfo(TZ)
START = dt.datetime(2026, 10, 5, 9, 0, tzinfo=ZONE)
OWED = 9000  # the scenario's three lines
MINIMUM = 100  # the default Group's minimum payment
ACTOR = Actor.command("state-machine")
# Where in the next practice-local day a midnight lands: just past midnight, early, mid-day,
# and its last second (the next `time_passes` of a second is then a midnight too).
INTO_THE_DAY = [1, 59, 3600, 13 * 3600, 86399]
# How long `time_passes` waits: a second, the void reconciler's staleness limit and past it,
# a few hours.
WAITS = [1, 60, int(voids.STALE_AFTER.total_seconds()) + 1, 3 * 3600]
# Gateway answers that never come; the first two after the gateway acted, the last before.
LOST = [Fault.TIMEOUT_AFTER_COMMIT, Fault.HTTP_500_AFTER_COMMIT, Fault.TIMEOUT_BEFORE_COMMIT]


@functools.cache
def written_sql() -> str:
    """One SELECT of row counts and money and status totals over every table a void, a refund
    or a payment writes to (the Sandbox's included)."""
    table = {model: connection.ops.quote_name(model._meta.db_table) for model in WATCHED}
    # (S608: the names are our own tables' and columns', quoted, never input.)
    figures = [f"(SELECT COUNT(*) FROM {table[model]})" for model in WATCHED]  # noqa: S608
    figures += [
        f"(SELECT COALESCE(SUM({column}), 0) FROM {table[model]})"  # noqa: S608
        for model, column in (
            (Transaction, "refunded_cents"),
            (PaymentPart, "refunded_cents"),
            (Receipt, "amount_cents"),
        )
    ]
    figures += [
        f"(SELECT COUNT(*) FROM {table[model]} WHERE status = '{status}')"  # noqa: S608
        for model, status in (
            (Transaction, Transaction.Status.VOIDED),
            (PaymentPart, PaymentPart.Status.VOIDED),
            (Receipt, Receipt.Status.VOIDED),
        )
    ]
    return "SELECT " + ", ".join(figures)


WATCHED = (
    LedgerEntry,
    Receipt,
    Application,
    AuditEvent,
    PaymentAttempt,
    PaymentPart,
    RefundAttempt,
    RefundPart,
    VoidRequest,
    Transaction,
    Refund,
)


def document() -> dict[str, Any]:
    """The shared scenario ($90.00 over three lines) with a statement: $60.00 due."""
    return {
        **scenario("sm"),
        "statements": [
            {
                "id": "S1",
                "guarantor": GUARANTOR,
                "statement_date": "2026-09-30",
                "due_date": "2026-10-21",
                "statement_balance": "90.00",
                "amount_due": "60.00",
            }
        ],
    }


@dataclass
class Paid:
    """The model of one paid POPS payment receipt."""

    pk: int
    amount: int
    date: dt.date
    voided: bool = False
    void_asked_at: dt.datetime | None = None  # a void under way (the gateway did not answer)
    voided_at_gateway: bool = False  # by the void, or by a void whose answer was lost
    refunded: int = 0  # by settled refunds (their receipts)
    pending: int = 0  # by interrupted refunds: reserved, maybe made at the gateway

    @property
    def left(self) -> int:
        return self.amount - self.refunded - self.pending

    @property
    def void_under_way(self) -> bool:
        return self.void_asked_at is not None and not self.voided


@dataclass(frozen=True)
class Done:
    """A call that answered, to be retried with its key."""

    kind: str  # "pay" (approved or declined) or "refund"
    key: str
    amount: int
    answer: int  # the attempt's pk, or the refund receipt's pk
    payment: int = 0  # for a refund: the payment receipt's pk


@dataclass
class Interrupted:
    """A refund the gateway did not confirm, waiting for a retry with its key."""

    payment: int
    amount: int
    refunded_on: dt.date | None  # the day the gateway made it, if it did


def entry_rows(practice_id: int) -> dict[int, tuple]:
    return {
        row[0]: row[1:]
        for row in LedgerEntry.objects.filter(practice_id=practice_id).values_list(
            "pk",
            "guarantor_id",
            "line_id",
            "receipt_id",
            "kind",
            "debit",
            "credit",
            "amount_cents",
            "reverses_id",
            "created_at",
        )
    }


class LedgerMachine(RuleBasedStateMachine):
    practice: Practice
    guarantor: Guarantor

    def __init__(self) -> None:
        super().__init__()
        self.savepoint = transaction.savepoint()
        self.travel = time_machine.travel(START, tick=False)
        self.clock = self.travel.start()
        self.model: dict[int, Paid] = {}
        self.declined: list[int] = []
        self.done: list[Done] = []
        self.interrupted: dict[str, Interrupted] = {}
        self.entries = entry_rows(self.practice.pk)
        self.only_the_clock_moved = False

    def teardown(self) -> None:
        self.travel.stop()
        transaction.savepoint_rollback(self.savepoint)

    # --- the model ----------------------------------------------------------------------------

    def today(self) -> dt.date:
        return clock.local_date(TZ)

    def current_balance(self) -> int:
        live = sum(p.amount - p.refunded for p in self.model.values() if not p.voided)
        return OWED - live

    def payable(self, amount: int) -> bool:
        balance = self.current_balance()
        return 0 < amount <= balance and amount >= min(MINIMUM, balance)

    def voidable(self, paid: Paid) -> bool:
        if paid.voided or paid.refunded or paid.pending:
            return False
        return paid.void_under_way or paid.date == self.today()

    def refundable(self, paid: Paid, amount: int) -> bool:
        return (
            not paid.voided
            and not paid.void_under_way
            and paid.date < self.today()
            and 0 < amount <= paid.left
        )

    def gateway_state(self) -> list[tuple[str, str, int]]:
        """Every gateway transaction's id, status and amount refunded."""
        return list(
            Transaction.objects.order_by("pk").values_list(
                "transaction_id", "status", "refunded_cents"
            )
        )

    def written(self) -> tuple[int, ...]:
        """A fingerprint of everything a call may write, POPS's and the gateway's, in one query:
        a refused call (or a retry) must leave it as it was."""
        with connection.cursor() as cursor:
            cursor.execute(written_sql())
            row = cursor.fetchone()
        assert row is not None
        return tuple(row)

    def pick(self, data: st.DataObject) -> Paid:
        return self.model[data.draw(st.sampled_from(sorted(self.model)), label="receipt")]

    def refund_amount(self, data: st.DataObject, paid: Paid) -> int:
        """Mostly what is left or less (a partial refund), sometimes more (refused)."""
        return data.draw(st.integers(1, max(paid.left, 0) + 300), label="amount")

    def assert_refused(self, before: tuple[int, ...]) -> None:
        assert self.written() == before

    # --- pay and decline ----------------------------------------------------------------------

    def _pay(self, amount: int, card: str) -> PaymentAttempt | None:
        key = str(uuid.uuid4())
        before = self.written()
        try:
            attempt = pay(
                PaymentRequest(
                    self.guarantor, amount, key, f"fp-{key}", ACTOR, payment_token=card_token(card)
                )
            )
        except PaymentRefused:
            assert not self.payable(amount), (amount, self.current_balance())
            self.assert_refused(before)
            return None
        assert self.payable(amount), (amount, self.current_balance())
        self.done.append(Done("pay", key, amount, attempt.pk))
        return attempt

    @initialize(
        amount=st.integers(100, 4000),
        days_ago=st.sampled_from([0, 1, 1, 2]),
        lost_void=st.sampled_from([None, None, None, *LOST]),
    )
    def a_first_payment(self, amount: int, days_ago: int, lost_void: Fault | None) -> None:
        """Every sequence starts with a payment, mostly of an earlier day (so refundable), now
        and then with a void asked for that day that the gateway did not confirm."""
        self.pay(amount)
        if lost_void is not None:
            self._void_unconfirmed(self.model[max(self.model)], lost_void)
        for _ in range(days_ago):
            self._next_day(3600)

    @rule(amount=st.integers(50, 4000))
    def pay(self, amount: int) -> None:
        attempt = self._pay(amount, APPROVED)
        if attempt is None:
            return
        assert attempt.status == PaymentAttempt.Status.SUCCEEDED
        assert attempt.receipt is not None
        assert (attempt.receipt.date, attempt.receipt.amount_cents) == (self.today(), amount)
        self.model[attempt.receipt.pk] = Paid(attempt.receipt.pk, amount, self.today())

    @rule(amount=st.integers(50, 1500), card=st.sampled_from([DECLINED, INSUFFICIENT_FUNDS]))
    def decline(self, amount: int, card: str) -> None:
        attempt = self._pay(amount, card)
        if attempt is None:
            return
        assert attempt.status == PaymentAttempt.Status.DECLINED
        assert attempt.receipt is not None
        assert attempt.receipt.date == self.today()
        self.declined.append(attempt.pk)

    # --- voids --------------------------------------------------------------------------------

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        """A void of any payment: of one voided already, of a later day, refunded or being
        refunded it is refused; a void under way is finished, whatever the day."""
        self._void(self.pick(data))

    @precondition(lambda self: any(p.void_under_way for p in self.model.values()))
    @rule(data=st.data())
    def finish_a_void_under_way(self, data: st.DataObject) -> None:
        waiting = sorted(pk for pk, p in self.model.items() if p.void_under_way)
        self._void(self.model[data.draw(st.sampled_from(waiting), label="receipt")])

    def _void(self, paid: Paid) -> None:
        allowed = self.voidable(paid)
        before = self.written()
        try:
            voided = void_receipt(Receipt.objects.get(pk=paid.pk), reason="sm", actor=ACTOR)
        except PaymentRefused:
            assert not allowed, paid
            self.assert_refused(before)
            return
        assert allowed, paid
        assert voided.status == Receipt.Status.VOIDED
        paid.voided = paid.voided_at_gateway = True

    @precondition(lambda self: self.declined or any(d.kind == "refund" for d in self.done))
    @rule(data=st.data())
    def void_a_refund_or_a_decline(self, data: st.DataObject) -> None:
        """Never allowed: a processed refund is kept, an Unsuccessful receipt moved no money."""
        receipts = [
            *Receipt.objects.filter(attempt__in=self.declined).values_list("pk", flat=True),
            *[d.answer for d in self.done if d.kind == "refund"],
        ]
        receipt = Receipt.objects.get(pk=data.draw(st.sampled_from(sorted(receipts))))
        before = self.written()
        with pytest.raises(PaymentRefused):
            void_receipt(receipt, reason="sm", actor=ACTOR)
        self.assert_refused(before)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), fault=st.sampled_from(LOST))
    def void_the_gateway_does_not_confirm(self, data: st.DataObject, fault: Fault) -> None:
        self._void_unconfirmed(self.pick(data), fault)

    def _void_unconfirmed(self, paid: Paid, fault: Fault) -> None:
        allowed = self.voidable(paid)
        with faults.inject(fault, [Operation.VOID]):
            try:
                void_receipt(Receipt.objects.get(pk=paid.pk), reason="sm", actor=ACTOR)
            except PaymentRefused:
                assert not allowed, paid
                return
            except PaymentsUnavailable:
                assert allowed, paid
                if paid.void_asked_at is None:
                    paid.void_asked_at = clock.now()
                paid.voided_at_gateway |= fault != Fault.TIMEOUT_BEFORE_COMMIT
                return
        raise AssertionError("the fault did not interrupt the void")

    # --- refunds ------------------------------------------------------------------------------

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def partial_refund(self, data: st.DataObject) -> None:
        paid = self.pick(data)
        amount = self.refund_amount(data, paid)
        key = str(uuid.uuid4())
        before = self.written()
        try:
            made = refund_receipt(
                Receipt.objects.get(pk=paid.pk), amount, actor=ACTOR, idempotency_key=key
            )
        except PaymentRefused:
            assert not self.refundable(paid, amount), (paid, amount)
            self.assert_refused(before)
            return
        assert self.refundable(paid, amount), (paid, amount)
        assert (made.amount_cents, made.date, made.refund_of_id) == (amount, self.today(), paid.pk)
        paid.refunded += amount
        self.done.append(Done("refund", key, amount, made.pk, paid.pk))

    @precondition(lambda self: self.model)
    @rule(data=st.data(), fault=st.sampled_from(LOST))
    def refund_the_gateway_does_not_confirm(self, data: st.DataObject, fault: Fault) -> None:
        """The refund waits for a retry with its key (or the reconciler); its amount is reserved."""
        paid = self.pick(data)
        amount = self.refund_amount(data, paid)
        key = str(uuid.uuid4())
        with faults.inject(fault, [Operation.REFUND]):
            try:
                refund_receipt(
                    Receipt.objects.get(pk=paid.pk), amount, actor=ACTOR, idempotency_key=key
                )
            except PaymentRefused:
                assert not self.refundable(paid, amount), (paid, amount)
                return
            except RefundIncomplete:
                assert self.refundable(paid, amount), (paid, amount)
                paid.pending += amount
                made_on = None if fault == Fault.TIMEOUT_BEFORE_COMMIT else self.today()
                self.interrupted[key] = Interrupted(paid.pk, amount, made_on)
                return
        raise AssertionError("the fault did not interrupt the refund")

    def _refund_finished(self, key: str, made: Receipt) -> None:
        waiting = self.interrupted.pop(key)
        paid = self.model[waiting.payment]
        assert (made.amount_cents, made.refund_of_id) == (waiting.amount, paid.pk)
        # Dated the day the gateway gave the money back.
        assert made.date == (waiting.refunded_on or self.today())
        paid.pending -= waiting.amount
        paid.refunded += waiting.amount
        self.done.append(Done("refund", key, waiting.amount, made.pk, paid.pk))

    @precondition(lambda self: self.interrupted)
    @rule(data=st.data())
    def finish_an_interrupted_refund(self, data: st.DataObject) -> None:
        """The same call again, with its key: the refund is finished, once."""
        key = data.draw(st.sampled_from(sorted(self.interrupted)), label="key")
        waiting = self.interrupted[key]
        made = refund_receipt(
            Receipt.objects.get(pk=waiting.payment),
            waiting.amount,
            actor=ACTOR,
            idempotency_key=key,
        )
        self._refund_finished(key, made)

    # --- retries and the reconciler ---------------------------------------------------------

    def calls(self, kind: str) -> list[Done]:
        return [call for call in self.done if call.kind == kind]

    @precondition(lambda self: self.calls("pay"))
    @rule(data=st.data())
    def retry_a_payment(self, data: st.DataObject) -> None:
        """A payment (approved or declined) again with the same idempotency key (a new token,
        as a reload would send): the first attempt, nothing charged, nothing written."""
        call = data.draw(st.sampled_from(self.calls("pay")), label="call")
        before = self.written()
        attempt = pay(
            PaymentRequest(
                self.guarantor,
                call.amount,
                call.key,
                f"fp-{call.key}",
                ACTOR,
                payment_token=card_token(APPROVED),
            )
        )
        assert attempt.pk == call.answer
        self.assert_refused(before)

    @precondition(lambda self: self.calls("refund"))
    @rule(data=st.data())
    def retry_a_refund(self, data: st.DataObject) -> None:
        """A refund again with the same idempotency key: the same refund receipt, whatever the
        day, nothing refunded, nothing written."""
        call = data.draw(st.sampled_from(self.calls("refund")), label="call")
        before = self.written()
        made = refund_receipt(
            Receipt.objects.get(pk=call.payment),
            call.amount,
            actor=ACTOR,
            idempotency_key=call.key,
        )
        assert made.pk == call.answer
        self.assert_refused(before)

    @precondition(
        lambda self: self.interrupted or any(p.void_under_way for p in self.model.values())
    )
    @rule()
    def the_reconciler_runs(self) -> None:
        """Interrupted refunds are finished; voids under way for long enough too."""
        stale = clock.now() - voids.STALE_AFTER
        due = [p for p in self.model.values() if p.void_under_way and p.void_asked_at < stale]
        keys = sorted(self.interrupted)

        assert complete_interrupted_refunds(actor=ACTOR) == len(keys)
        assert complete_interrupted_voids(actor=ACTOR) == len(due)

        made = dict(
            Receipt.objects.filter(refund_attempt__idempotency_key__in=keys).values_list(
                "refund_attempt__idempotency_key", "pk"
            )
        )
        for key in keys:
            self._refund_finished(key, Receipt.objects.get(pk=made[key]))
        for paid in due:
            paid.voided = paid.voided_at_gateway = True

    # --- time ---------------------------------------------------------------------------------

    @rule(seconds=st.sampled_from(INTO_THE_DAY))
    def midnight(self, seconds: int) -> None:
        self._next_day(seconds)
        self.only_the_clock_moved = True

    def _next_day(self, seconds: int) -> None:
        """Past the next practice-local midnight, `seconds` into the new day."""
        tomorrow = self.today() + dt.timedelta(days=1)
        midnight = dt.datetime.combine(tomorrow, dt.time(0), tzinfo=ZONE)
        self.clock.move_to(midnight + dt.timedelta(seconds=seconds))
        assert self.today() == tomorrow

    @rule(seconds=st.sampled_from(WAITS))
    def time_passes(self, seconds: int) -> None:
        before = clock.now()
        self.clock.shift(dt.timedelta(seconds=seconds))
        assert clock.now() - before == dt.timedelta(seconds=seconds)
        self.only_the_clock_moved = True

    # --- invariants (one method: each check is a few queries over the whole practice) ---------

    @invariant()
    def every_ledger_invariant_holds(self) -> None:
        if self.only_the_clock_moved:
            # The step called nothing and wrote nothing, and no invariant depends on the
            # time: the database is the one checked after the step before.
            self.only_the_clock_moved = False
            return
        self.entries_balance_and_none_changed()
        assert differences(self.practice.pk) == []
        self.refunds_never_pass_what_was_captured()
        self.declines_leave_a_zero_receipt_and_no_entries()
        self.balances_hold()
        self.receipts_and_batches_agree_with_the_model()

    def entries_balance_and_none_changed(self) -> None:
        now = entry_rows(self.practice.pk)
        moved: dict[str, int] = {}
        for pk, (*_, debit, credit, amount, _reverses, _at) in now.items():
            assert amount > 0, f"ledger entry {pk} moves no money"
            assert debit != credit, f"ledger entry {pk} does not move money between accounts"
            moved[debit] = moved.get(debit, 0) + amount
            moved[credit] = moved.get(credit, 0) - amount
        assert sum(moved.values()) == 0  # the trial balance
        for pk, row in self.entries.items():
            assert now.get(pk) == row, f"ledger entry {pk} was updated or deleted"
        self.entries = now

    def refunds_never_pass_what_was_captured(self) -> None:
        """And the gateway holds what the model says: refunds made, transactions voided."""
        refunded = dict(
            Receipt.objects.filter(refund_of__isnull=False, status=Receipt.Status.PAID)
            .values_list("refund_of_id")
            .annotate(total=Sum("amount_cents"))
            .values_list("refund_of_id", "total")
        )
        parts = list(
            PaymentPart.objects.filter(attempt__receipt__isnull=False).values_list(
                "attempt__receipt_id", "transaction_id", "status", "refunded_cents"
            )
        )
        transactions = self.gateway_state()
        at_gateway = {txn: (status, cents) for txn, status, cents in transactions}
        for paid in self.model.values():
            mine = [(txn, status, cents) for pk, txn, status, cents in parts if pk == paid.pk]
            recorded = sum(cents for _, _, cents in mine)
            gateway = sum(at_gateway[txn][1] for txn, _, _ in mine)
            assert refunded.get(paid.pk, 0) == recorded == paid.refunded <= paid.amount, paid
            # At the gateway: what was settled, and what interrupted refunds made already.
            made_pending = sum(
                w.amount
                for w in self.interrupted.values()
                if w.payment == paid.pk and w.refunded_on is not None
            )
            assert gateway == paid.refunded + made_pending <= paid.amount, paid
            statuses = {at_gateway[txn][0] for txn, _, _ in mine}
            assert statuses == {"voided" if paid.voided_at_gateway else "approved"}, paid
            voided_parts = {status for _, status, _ in mine} == {PaymentPart.Status.VOIDED}
            assert voided_parts == paid.voided, paid
        # Every refund the gateway made is a settled part of a POPS refund under its number,
        # or an interrupted refund's, not known to POPS until it is finished.
        numbers = set(
            RefundPart.objects.exclude(transaction_id="").values_list("transaction_id", flat=True)
        )
        made = set(Refund.objects.values_list("refund_id", flat=True))
        unanswered = sum(1 for w in self.interrupted.values() if w.refunded_on is not None)
        assert numbers <= made
        assert len(made) == len(numbers) + unanswered

    def declines_leave_a_zero_receipt_and_no_entries(self) -> None:
        if not self.declined:
            return
        entries = LedgerEntry.objects.filter(receipt=OuterRef("pk"))
        rows = (
            Receipt.objects.filter(attempt__in=self.declined)
            .annotate(has_entries=Exists(entries))
            .values_list("attempt", "amount_cents", "status", "reference_batch", "has_entries")
        )
        assert sorted(rows) == sorted(
            (pk, 0, Receipt.Status.UNSUCCESSFUL, None, False) for pk in self.declined
        )

    def balances_hold(self) -> None:
        facts = balance_facts(self.guarantor.pk)
        for include_new_charges in (False, True):
            figures = combine(facts, include_new_charges=include_new_charges)
            assert figures.current_balance >= figures.amount_due >= 0
            assert figures.current_balance == self.current_balance()
            assert figures.unapplied_funds == 0

    def receipts_and_batches_agree_with_the_model(self) -> None:
        """Each POPS receipt that moved money is in a POPS batch of its own date, voided ones
        too (shown as deleted); each payment has the status the model says; each refund
        receipt's gateway refunds (its transaction numbers) add up to its amount."""
        pops = Receipt.objects.filter(practice=self.practice, made_in_pops=True).exclude(
            status=Receipt.Status.UNSUCCESSFUL
        )
        misplaced = pops.exclude(reference_batch__is_pops=True, reference_batch__date=F("date"))
        assert not misplaced.exists()
        payments = dict(pops.filter(type=Receipt.Type.PAYMENT).values_list("pk", "status"))
        assert payments == {
            pk: Receipt.Status.VOIDED if p.voided else Receipt.Status.PAID
            for pk, p in self.model.items()
        }
        refunds = pops.filter(type=Receipt.Type.REFUND).annotate(
            given_back=Sum(
                "refund_attempt__parts__amount_cents",
                filter=~Q(refund_attempt__parts__transaction_id=""),
            )
        )
        for refund in refunds:
            assert refund.given_back == refund.amount_cents, refund


def test_every_ledger_invariant_holds_after_every_step():
    with time_machine.travel(START, tick=False):
        practice = run_import(document()).practice
        prepare_practice(practice, actor=Actor.command("tests"))
    LedgerMachine.practice = practice
    LedgerMachine.guarantor = Guarantor.objects.get(practice=practice, external_id=GUARANTOR)
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=int(os.environ.get("STATE_MACHINE_EXAMPLES", 0))
            or settings.default.max_examples,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
