"""DESIGN.md rule 6: ledger entries are append-only, and every stored running figure equals a
replay of the entries (`pops ledger verify`)."""

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.db.models import F

from pops.ledger.models import (
    Account,
    Application,
    LedgerEntry,
    Practice,
    Receipt,
    ServiceLine,
)
from pops.ledger.services import replay as replay_module
from pops.ledger.services.replay import Difference, differences, replay
from tests.ledger.conftest import (
    applied,
    balances,
    encounter,
    guarantor,
    line,
    load,
    receipt,
    refund,
)

pytestmark = pytest.mark.django_db

ENCOUNTERS = [
    encounter("100", "2026-01-10", line(1, 20000), line(2, 5000, insurance_paid=1000)),
    encounter("200", "2026-01-12", line(1, 8000), collections=True),
    encounter("300", "2026-01-15", line(1, 6000), guarantor="G2"),
]
RECEIPTS = [
    receipt("R1", "2026-02-01", 10000, applied("100", 1, 6000), applied("100", 2, 2000)),
    receipt("R2", "2026-02-02", 3000),
    refund("R3", "2026-02-03", 1000),
    receipt("R4", "2026-02-04", 2500, applied("300", 1, 2500), guarantor="G2"),
]


def series() -> list[dict[str, Any]]:
    """Four imports: 1 the first load; 2 receipt R1 changed (a reversal and its new version);
    3 line amounts changed and a line added; 4 receipt R2 applied to the new line."""
    encounters: list[dict[str, Any]] = list(ENCOUNTERS)
    receipts: list[dict[str, Any]] = list(RECEIPTS)
    steps = [{"encounters": list(encounters), "receipts": list(receipts)}]
    receipts[0] = receipt("R1", "2026-02-01", 12000, applied("100", 1, 9000))
    steps.append({"receipts": list(receipts)})
    encounters[0] = encounter(
        "100", "2026-01-10", line(1, 25000), line(2, 5000, insurance_paid=2500), line(3, 1200)
    )
    steps.append({"encounters": list(encounters)})
    receipts[1] = receipt("R2", "2026-02-02", 3000, applied("100", 3, 1200))
    steps.append({"receipts": list(receipts)})
    return steps


def load_series(step: int, start: int = 1) -> None:
    """Import the series' documents `start` to `step`."""
    for sections in series()[start - 1 : step]:
        load(guarantors=("G1", "G2"), **sections)


def practice_id() -> int:
    return Practice.objects.get(external_id="p1").pk


def line_id(number: str, line_number: int) -> int:
    return ServiceLine.objects.get(encounter__number=number, line=line_number).pk


def receipt_id(number: str) -> int:
    return Receipt.objects.get(number=number).pk


def verify(*args: str) -> str:
    out = io.StringIO()
    call_command("ledger", "verify", *args, stdout=out)
    return out.getvalue()


# --- the replay equals the stored figures ----------------------------------------------------


@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_after_each_import_the_replay_equals_the_stored_figures(step):
    load_series(step)
    assert differences(practice_id()) == []


def test_the_replay_gives_the_figures_worked_out_by_hand():
    load_series(4)
    figures = replay(LedgerEntry.objects.filter(practice_id=practice_id()))
    assert figures.responsibility[line_id("100", 1)] == 25000  # 20000, then +5000
    assert figures.responsibility[line_id("100", 2)] == 2500  # 4000, then -1500
    assert figures.responsibility[line_id("100", 3)] == 1200
    assert figures.patient_paid[line_id("100", 1)] == 9000  # R1's new version
    assert figures.patient_paid[line_id("100", 2)] == 0  # R1's old 2000 reversed
    assert figures.patient_paid[line_id("100", 3)] == 1200  # R2, applied later
    assert figures.received[receipt_id("R1")] == 12000
    assert figures.received[receipt_id("R3")] == -1000
    # G1: 12000 + 3000 - 1000 - 9000 - 1200; G2: 2500 - 2500
    assert figures.unapplied[guarantor("G1").pk] == 3800
    assert figures.unapplied[guarantor("G2").pk] == 0
    assert balances("G1").unapplied_funds == 3800


def test_a_changed_receipt_is_a_reversal_plus_its_new_version():
    load_series(1)
    r1 = receipt_id("R1")
    before = set(LedgerEntry.objects.filter(receipt_id=r1).values_list("pk", flat=True))
    load_series(2)
    new = LedgerEntry.objects.filter(receipt_id=r1).exclude(pk__in=before)
    reversals = new.filter(reverses__isnull=False)
    assert set(reversals.values_list("reverses_id", flat=True)) == before
    for entry in reversals.select_related("reverses"):
        original = entry.reverses
        assert original is not None
        assert (entry.debit, entry.credit) == (original.credit, original.debit)
        assert entry.amount_cents == original.amount_cents
    fresh = new.filter(reverses__isnull=True)
    assert sorted(fresh.values_list("kind", "amount_cents")) == [
        ("application", 9000),
        ("payment", 12000),
    ]


def test_a_changed_line_amount_is_charged_as_the_difference():
    load_series(2)
    count = LedgerEntry.objects.count()
    load_series(3, start=3)
    new = LedgerEntry.objects.order_by("pk")[count:]
    assert sorted((e.line_id, e.kind, e.debit, e.credit, e.amount_cents) for e in new) == [
        (line_id("100", 1), "charge", Account.PATIENT_AR, Account.CHARGES, 5000),
        (line_id("100", 2), "charge", Account.CHARGES, Account.PATIENT_AR, 1500),
        (line_id("100", 3), "charge", Account.PATIENT_AR, Account.CHARGES, 1200),
    ]


def test_importing_the_same_document_again_writes_no_entries():
    load_series(4)
    count = LedgerEntry.objects.count()
    load_series(4, start=4)
    assert LedgerEntry.objects.count() == count
    assert differences(practice_id()) == []


# --- differences are found -------------------------------------------------------------------


def test_a_stored_patient_paid_that_differs_from_the_replay_is_reported():
    load_series(2)
    ServiceLine.objects.filter(pk=line_id("100", 1)).update(patient_paid_cents=9500)
    assert differences(practice_id()) == [Difference("line 100-1", "patient paid", 9500, 9000)]


def test_a_line_amount_changed_without_an_entry_is_reported():
    load_series(1)
    ServiceLine.objects.filter(pk=line_id("300", 1)).update(adjusted_cents=500)
    assert differences(practice_id()) == [Difference("line 300-1", "responsibility", 5500, 6000)]


def test_an_application_removed_without_an_entry_is_reported():
    load_series(1)
    Application.objects.filter(receipt_id=receipt_id("R1"), line_id=line_id("100", 2)).delete()
    assert differences(practice_id()) == [
        Difference("receipt R1 on line 100-2", "applied", 0, 2000),
        Difference("guarantor G1", "unapplied funds", 6000, 4000),  # 10000+3000-1000-8000
    ]


def test_a_receipt_voided_without_reversing_entries_is_reported():
    load_series(1)
    Receipt.objects.filter(number="R2").update(status=Receipt.Status.VOIDED)
    assert differences(practice_id()) == [
        Difference("receipt R2", "money received", 0, 3000),
        Difference("guarantor G1", "unapplied funds", 1000, 4000),
    ]


def test_entries_between_accounts_their_kind_does_not_allow_are_reported():
    load_series(1)
    r2 = Receipt.objects.get(number="R2")
    bad = LedgerEntry.objects.create(
        practice_id=practice_id(),
        guarantor_id=r2.guarantor_id,
        receipt=r2,
        kind=LedgerEntry.Kind.PAYMENT,
        debit=Account.CASH,
        credit=Account.CHARGES,
        amount_cents=100,
    )
    assert differences(practice_id()) == [
        Difference(f"entry {bad.pk}", "a payment entry cannot move money from charges to cash")
    ]


def test_a_reversal_that_does_not_mirror_its_entry_and_a_double_reversal_are_reported():
    load_series(1)
    payment = LedgerEntry.objects.get(receipt__number="R2", kind=LedgerEntry.Kind.PAYMENT)
    common = {
        "practice_id": payment.practice_id,
        "guarantor_id": payment.guarantor_id,
        "receipt_id": payment.receipt_id,
        "kind": payment.kind,
        "debit": payment.credit,
        "credit": payment.debit,
        "reverses": payment,
    }
    short = LedgerEntry.objects.create(amount_cents=1000, **common)
    LedgerEntry.objects.create(amount_cents=2000, **common)
    found = differences(practice_id())
    assert (
        Difference(f"entry {short.pk}", f"reverses entry {payment.pk} but does not mirror it")
        in found
    )
    assert Difference(f"entry {payment.pk}", "is reversed 2 times") in found
    # The receipt is still Paid, so the replay (3000 - 1000 - 2000) disagrees with it too.
    assert Difference("receipt R2", "money received", 3000, 0) in found


def test_the_comparison_walks_every_page_of_a_large_practice(monkeypatch):
    monkeypatch.setattr(replay_module, "CHUNK", 2)
    load_series(4)
    assert differences(practice_id()) == []
    last_line = ServiceLine.objects.latest("pk")
    ServiceLine.objects.filter(pk=last_line.pk).update(billed_cents=F("billed_cents") + 1)
    last_receipt = Receipt.objects.latest("pk")
    Receipt.objects.filter(pk=last_receipt.pk).update(amount_cents=F("amount_cents") + 1)
    found = differences(practice_id())
    assert [(d.subject, d.figure) for d in found] == [
        (f"line {last_line.encounter.number}-{last_line.line}", "responsibility"),
        (f"receipt {last_receipt.number}", "money received"),
        (f"guarantor {last_receipt.guarantor.external_id}", "unapplied funds"),
    ]


def test_differences_are_scoped_to_the_practice():
    load_series(1)
    load(practice="p2", encounters=[encounter("100", "2026-01-10", line(1, 700))])
    ServiceLine.objects.filter(encounter__practice__external_id="p2").update(billed_cents=1)
    assert differences(practice_id()) == []
    other = Practice.objects.get(external_id="p2").pk
    assert differences(other) == [Difference("line 100-1", "responsibility", 1, 700)]


# --- pops ledger verify ----------------------------------------------------------------------


def test_verify_reports_a_consistent_ledger_and_exits_0():
    load_series(4)
    load(practice="p2", encounters=[encounter("100", "2026-01-10", line(1, 700))])
    assert verify() == (
        "The stored figures of 2 practice(s) equal a replay of the ledger entries.\n"
    )
    assert verify("--practice", "p2") == (
        "The stored figures of 1 practice(s) equal a replay of the ledger entries.\n"
    )


def test_verify_prints_each_difference_and_exits_1():
    load_series(2)
    ServiceLine.objects.filter(pk=line_id("100", 1)).update(patient_paid_cents=9500)
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"^1 difference\(s\)") as raised:
        call_command("ledger", "verify", "--practice", "p1", stdout=out)
    assert raised.value.returncode == 1
    assert out.getvalue() == "p1: line 100-1: patient paid stored 95.00, replayed 90.00\n"


def test_verify_of_an_unknown_practice_is_a_clear_error():
    with pytest.raises(CommandError, match=r"No practice with id 'nope'"):
        verify("--practice", "nope")


# --- append-only -----------------------------------------------------------------------------


def test_a_ledger_entry_cannot_be_saved_again_or_deleted():
    load_series(1)
    entry = LedgerEntry.objects.first()
    assert entry is not None
    entry.amount_cents += 1
    with pytest.raises(TypeError, match="append-only"):
        entry.save()
    with pytest.raises(TypeError, match="append-only"):
        entry.delete()
    with pytest.raises(TypeError, match="append-only"):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount_cents=1)
    with pytest.raises(TypeError, match="append-only"):
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    assert LedgerEntry.objects.get(pk=entry.pk).amount_cents == entry.amount_cents - 1


def raw(sql: str, params: list[Any]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_the_database_refuses_a_raw_update_of_a_ledger_entry():
    load_series(1)
    entry = LedgerEntry.objects.first()
    assert entry is not None
    with pytest.raises(DatabaseError, match="append-only"):
        raw("UPDATE ledger_ledgerentry SET amount_cents = 1 WHERE id = %s", [entry.pk])
    assert LedgerEntry.objects.get(pk=entry.pk).amount_cents == entry.amount_cents


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite allows DELETE: Django's test flush empties tables with it (see core/db.py)",
)
def test_postgresql_refuses_a_raw_delete_of_a_ledger_entry():
    load_series(1)
    count = LedgerEntry.objects.count()
    with pytest.raises(DatabaseError, match="append-only"):
        raw("DELETE FROM ledger_ledgerentry WHERE id = %s", [LedgerEntry.objects.earliest("pk").pk])
    assert LedgerEntry.objects.count() == count
