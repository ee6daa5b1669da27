"""The import's upsert semantics (issue 2, item 7), proven on the example document of
docs/import.md and on small changes to it."""

import datetime as dt
import json
from typing import Any

import pytest

from pops.core.models import AuditEvent
from pops.ledger.importing.importer import TALLIED
from pops.ledger.importing.schema import SECTIONS
from pops.ledger.models import (
    Account,
    Application,
    Appointment,
    Encounter,
    Guarantor,
    LedgerEntry,
    Patient,
    Practice,
    Receipt,
    ServiceLine,
    Statement,
)
from pops.ledger.services.balances import Balances, guarantor_balances
from tests.conftest import run_import
from tests.ledger import (
    EXAMPLE_PATH,
    assert_the_ledger_replays,
    example,
    paths,
    refused,
    row_counts,
    snapshot,
)

pytestmark = pytest.mark.django_db

PRACTICE = {"id": "northside", "name": "Northside Family Medicine", "time_zone": "America/Chicago"}


def balances(guarantor_id: str, *, include_new_charges: bool = False) -> Balances:
    guarantor = Guarantor.objects.get(practice__external_id="northside", external_id=guarantor_id)
    return guarantor_balances(guarantor, include_new_charges=include_new_charges)


def only(**sections: Any) -> dict[str, Any]:
    """A document of the example practice holding just these sections."""
    return {"practice": dict(PRACTICE), **sections}


def item(section: str, key: str, value: str) -> dict[str, Any]:
    """A copy of one item of the example document."""
    return next(i for i in example()[section] if i[key] == value)


def line(encounter: str, number: int) -> ServiceLine:
    return ServiceLine.objects.get(encounter__number=encounter, line=number)


def entries_of(receipt: str) -> list[tuple]:
    return list(
        LedgerEntry.objects.filter(receipt__number=receipt)
        .order_by("pk")
        .values_list("kind", "debit", "credit", "amount_cents", "line__line", "reverses_id")
    )


# --- the example document ------------------------------------------------------------------


def test_the_example_document_imports_every_section():
    result = run_import(example())
    summary = result.summary()
    assert summary == {
        "practice": "northside",
        "ledger_entries": 20,  # 8 charges, 5 payments, 6 applications, 1 refund
        "facilities": {"created": 2, "updated": 0, "unchanged": 0},
        "providers": {"created": 3, "updated": 0, "unchanged": 0},
        "collection_agencies": {"created": 1, "updated": 0, "unchanged": 0},
        "guarantors": {"created": 4, "updated": 0, "unchanged": 0},
        "patients": {"created": 5, "updated": 0, "unchanged": 0},
        "encounters": {"created": 6, "updated": 0, "unchanged": 0},
        "lines": {"created": 8, "updated": 0, "unchanged": 0},
        "receipts": {"created": 6, "updated": 0, "unchanged": 0},
        "statements": {"created": 4, "updated": 0, "unchanged": 0},
        "appointments": {"created": 3, "updated": 0, "unchanged": 0},
    }
    practice = Practice.objects.get(external_id="northside")
    assert (practice.name, practice.time_zone) == ("Northside Family Medicine", "America/Chicago")
    event = AuditEvent.objects.get(action="ledger.import.completed", practice=practice)
    assert event.data == summary
    assert_the_ledger_replays()


def test_the_example_document_stores_every_field():
    run_import(example())
    pat = Guarantor.objects.get(external_id="2010")
    assert (pat.first_name, pat.preferred_name, pat.last_name) == ("Patricia", "Pat", "Lee")
    assert (pat.email, pat.mobile, pat.text_opt_out) == (
        "pat.lee@example.com",
        "555-201-0101",
        False,
    )
    marcus = Guarantor.objects.get(external_id="2011")
    assert (marcus.preferred_name, marcus.email, marcus.text_opt_out) == ("", "", True)
    assert Patient.objects.get(external_id="P-101").birth_date == dt.date(2012, 9, 30)
    assert Patient.objects.get(external_id="P-400").birth_date is None
    assert Patient.objects.get(external_id="P-101").guarantor == pat

    collected = Encounter.objects.get(number="1004")
    assert collected.collection_agency is not None
    assert collected.collection_agency.external_id == "CA-MIDWEST"
    assert collected.collections_sent_on == dt.date(2026, 5, 1)
    assert collected.guarantor == marcus
    assert (collected.facility.external_id, collected.provider.external_id) == ("F-MAIN", "DR-AMES")
    assert collected.service_date == dt.date(2025, 11, 3)
    assert Encounter.objects.get(number="1001").collection_agency is None

    well_child = line("1002", 1)
    assert (well_child.code, well_child.description) == ("99392", "Well child visit, age 1-4")
    assert (
        well_child.billed_cents,
        well_child.adjusted_cents,
        well_child.insurance_paid_cents,
        well_child.pending_insurance_cents,
        well_child.patient_paid_cents,
    ) == (21000, 3000, 0, 15000, 0)

    refund = Receipt.objects.get(number="R-5005")
    assert (refund.type, refund.amount_cents, refund.date) == ("refund", 4800, dt.date(2026, 8, 2))
    assert (refund.method, refund.source, refund.status) == ("check", "office", "paid")
    assert not refund.made_in_pops
    assert not refund.applications.exists()
    overpaid = Receipt.objects.get(number="R-5004")
    assert sorted(overpaid.applications.values_list("line__line", "amount_cents")) == [
        (1, 4000),
        (2, 1200),
    ]

    statement = Statement.objects.get(external_id="S-2010-1001")
    assert (statement.statement_date, statement.due_date) == (
        dt.date(2026, 10, 1),
        dt.date(2026, 10, 22),
    )
    assert (statement.statement_balance_cents, statement.amount_due_cents) == (5000, 5000)

    # A time without an offset is practice time (Chicago, UTC-6 in December); one with an
    # offset is taken as given. Both are stored in UTC.
    assert Appointment.objects.get(external_id="A-9001").starts_at == dt.datetime(
        2026, 12, 3, 15, 30, tzinfo=dt.UTC
    )
    assert Appointment.objects.get(external_id="A-9002").starts_at == dt.datetime(
        2026, 9, 15, 19, 0, tzinfo=dt.UTC
    )
    cancelled = Appointment.objects.get(external_id="A-9003")
    assert (cancelled.status, cancelled.patient.external_id) == ("cancelled", "P-300")
    assert cancelled.provider.external_id == "NP-CHEN"


def test_the_example_document_gives_the_balances_docs_import_md_shows():
    run_import(example())
    # Pat: open lines 0 + 0 + 30.00 + 80.00 = 110.00, 5.00 unapplied (R-5002 paid 25, put 20
    # on a line). Latest statement 2026-10-01 asks 50.00; 25.00 was paid after it.
    assert balances("2010") == Balances(
        statement_balance=5000,
        last_statement=5000,
        amount_due=2500,
        current_balance=10500,
        unapplied_funds=500,
        collection_balance=0,
    )
    # With "Include New Charges", the 80.00 of visit 1003 (after the statement) is due too.
    assert balances("2010", include_new_charges=True).amount_due == 10500
    # Marcus: his one visit is in collections (120.00 less the 30.00 paid before).
    assert balances("2011") == Balances(
        statement_balance=12000,
        last_statement=12000,
        amount_due=0,
        current_balance=0,
        unapplied_funds=0,
        collection_balance=9000,
    )
    # Helen overpaid by 48.00, which was refunded.
    assert balances("31415") == Balances(
        statement_balance=5200,
        last_statement=5200,
        amount_due=0,
        current_balance=0,
        unapplied_funds=0,
        collection_balance=0,
    )
    # Samuel: paid in full, never sent a statement.
    assert balances("2012") == Balances(
        statement_balance=None,
        last_statement=None,
        amount_due=0,
        current_balance=0,
        unapplied_funds=0,
        collection_balance=0,
    )


def test_the_example_document_records_its_money_as_ledger_entries():
    run_import(example())
    assert entries_of("R-5004") == [
        ("payment", Account.CASH, Account.UNAPPLIED, 10000, None, None),
        ("application", Account.UNAPPLIED, Account.PATIENT_AR, 4000, 1, None),
        ("application", Account.UNAPPLIED, Account.PATIENT_AR, 1200, 2, None),
    ]
    assert entries_of("R-5005") == [("refund", Account.UNAPPLIED, Account.CASH, 4800, None, None)]
    charges = LedgerEntry.objects.filter(kind="charge", line=line("1002", 1))
    assert list(charges.values_list("debit", "credit", "amount_cents")) == [
        (Account.PATIENT_AR, Account.CHARGES, 3000)  # 210 - 30 adjusted - 150 pending
    ]


# --- upsert ----------------------------------------------------------------------------------


def test_importing_the_same_document_twice_changes_nothing():
    run_import(example())
    before = snapshot()
    audits = AuditEvent.objects.count()

    summary = run_import(example()).summary()

    assert snapshot() == before
    assert summary["ledger_entries"] == 0
    assert all(
        tally == {"created": 0, "updated": 0, "unchanged": tally["unchanged"]}
        for name, tally in summary.items()
        if name not in ("practice", "ledger_entries")
    )
    assert summary["lines"]["unchanged"] == 8
    # The second import is still audited, and that is all it writes.
    assert AuditEvent.objects.count() == audits + 1


def test_an_item_is_upserted_by_its_id():
    run_import(example())
    pk = Guarantor.objects.get(external_id="2010").pk
    changed = item("guarantors", "id", "2010") | {"email": "pat@new.example.com", "mobile": None}

    summary = run_import(only(guarantors=[changed])).summary()

    assert summary["guarantors"] == {"created": 0, "updated": 1, "unchanged": 0}
    pat = Guarantor.objects.get(external_id="2010")
    assert (pat.pk, pat.email, pat.mobile) == (pk, "pat@new.example.com", "")
    assert Guarantor.objects.count() == 4


def test_an_item_sent_again_is_replaced_whole_so_a_field_left_out_takes_its_default():
    run_import(example())
    bare = {"id": "2010", "first_name": "Patricia", "last_name": "Lee"}
    run_import(only(guarantors=[bare]))
    pat = Guarantor.objects.get(external_id="2010")
    assert (pat.preferred_name, pat.email, pat.mobile, pat.text_opt_out) == ("", "", "", False)


def test_leaving_an_item_out_never_deletes_it():
    run_import(example())
    before = snapshot()
    visit = item("encounters", "number", "1001")
    visit["lines"] = visit["lines"][:1]  # line 2 left out
    run_import(
        only(
            guarantors=[item("guarantors", "id", "2010")],
            encounters=[visit],
            receipts=[],
            statements=[],
        )
    )
    assert snapshot() == before
    assert line("1001", 2).billed_cents == 4500


def test_collections_null_takes_an_encounter_out_of_collections():
    run_import(example())
    visit = item("encounters", "number", "1004") | {"collections": None}

    summary = run_import(only(encounters=[visit])).summary()

    assert summary["encounters"] == {"created": 0, "updated": 1, "unchanged": 0}
    assert summary["ledger_entries"] == 0  # moving a visit in or out of collections moves no money
    encounter = Encounter.objects.get(number="1004")
    assert (encounter.collection_agency, encounter.collections_sent_on) == (None, None)
    # Its 90.00 is payable again; the statement asked 120.00 and 30.00 came in after it.
    assert balances("2011") == Balances(
        statement_balance=12000,
        last_statement=12000,
        amount_due=9000,
        current_balance=9000,
        unapplied_funds=0,
        collection_balance=0,
    )


def test_an_encounter_can_be_sent_to_collections_by_an_import():
    run_import(example())
    visit = item("encounters", "number", "1003") | {
        "collections": {"agency": "CA-MIDWEST", "sent_on": "2026-11-20"}
    }
    run_import(only(encounters=[visit]))
    assert balances("2010").collection_balance == 8000
    assert balances("2010").current_balance == 2500  # 30.00 open less 5.00 unapplied


def test_a_changed_line_is_recorded_as_a_charge_of_the_difference():
    run_import(example())
    visit = item("encounters", "number", "1003")
    visit["lines"][0]["billed"] = "110.00"  # owes 95.00 instead of 80.00
    run_import(only(encounters=[visit]))
    visit["lines"][0]["billed"] = "90.00"  # owes 75.00
    summary = run_import(only(encounters=[visit])).summary()

    assert summary["lines"] == {"created": 0, "updated": 1, "unchanged": 0}
    charges = LedgerEntry.objects.filter(line=line("1003", 1)).order_by("pk")
    assert list(charges.values_list("kind", "debit", "credit", "amount_cents")) == [
        ("charge", Account.PATIENT_AR, Account.CHARGES, 8000),
        ("charge", Account.PATIENT_AR, Account.CHARGES, 1500),
        ("charge", Account.CHARGES, Account.PATIENT_AR, 2000),
    ]
    assert line("1003", 1).remaining_cents == 7500
    assert_the_ledger_replays()


def test_a_changed_receipt_is_recorded_as_a_reversal_plus_its_new_version():
    run_import(example())
    receipt = Receipt.objects.get(number="R-5002")
    original = list(LedgerEntry.objects.filter(receipt=receipt).order_by("pk"))
    changed = item("receipts", "id", "R-5002") | {
        "amount": "30.00",
        "applications": [
            {"encounter": "1001", "line": 2, "amount": "20.00"},
            {"encounter": "1002", "line": 1, "amount": "10.00"},
        ],
    }

    summary = run_import(only(receipts=[changed])).summary()

    assert summary["receipts"] == {"created": 0, "updated": 1, "unchanged": 0}
    assert summary["ledger_entries"] == 5  # 2 reversals, payment, 2 applications
    receipt.refresh_from_db()
    assert receipt.amount_cents == 3000
    entries = list(LedgerEntry.objects.filter(receipt=receipt).order_by("pk"))
    assert entries[:2] == original  # nothing recorded is ever changed
    reversals, new = entries[2:4], entries[4:]
    for reversal, entry in zip(reversals, original, strict=True):
        assert reversal.reverses_id == entry.pk
        assert (reversal.kind, reversal.amount_cents) == (entry.kind, entry.amount_cents)
        assert (reversal.debit, reversal.credit) == (entry.credit, entry.debit)
        assert (reversal.line_id, reversal.guarantor_id) == (entry.line_id, entry.guarantor_id)
    assert [(e.kind, e.debit, e.credit, e.amount_cents, e.line_id, e.reverses_id) for e in new] == [
        ("payment", Account.CASH, Account.UNAPPLIED, 3000, None, None),
        ("application", Account.UNAPPLIED, Account.PATIENT_AR, 2000, line("1001", 2).pk, None),
        ("application", Account.UNAPPLIED, Account.PATIENT_AR, 1000, line("1002", 1).pk, None),
    ]
    assert sorted(receipt.applications.values_list("line__encounter__number", "amount_cents")) == [
        ("1001", 2000),
        ("1002", 1000),
    ]
    assert line("1002", 1).patient_paid_cents == 1000
    assert balances("2010").unapplied_funds == 0
    assert_the_ledger_replays()

    # Sent again, the new version changes nothing; changed again, only the live version is
    # reversed.
    assert run_import(only(receipts=[changed])).summary()["ledger_entries"] == 0
    changed["amount"] = "20.00"
    changed["applications"] = changed["applications"][:1]
    assert run_import(only(receipts=[changed])).summary()["ledger_entries"] == 5
    assert LedgerEntry.objects.filter(receipt=receipt, reverses__isnull=False).count() == 5
    assert line("1002", 1).patient_paid_cents == 0
    assert_the_ledger_replays()


def test_statements_are_updated_in_place():
    run_import(example())
    pk = Statement.objects.get(external_id="S-2010-1001").pk
    changed = item("statements", "id", "S-2010-1001") | {
        "due_date": "2026-10-31",
        "amount_due": "45.00",
    }

    summary = run_import(only(statements=[changed])).summary()

    assert summary["statements"] == {"created": 0, "updated": 1, "unchanged": 0}
    assert summary["ledger_entries"] == 0
    statement = Statement.objects.get(external_id="S-2010-1001")
    assert (statement.pk, statement.due_date, statement.amount_due_cents) == (
        pk,
        dt.date(2026, 10, 31),
        4500,
    )
    assert Statement.objects.count() == 4
    assert balances("2010").last_statement == 4500


def test_appointments_are_updated_in_place():
    run_import(example())
    pk = Appointment.objects.get(external_id="A-9001").pk
    changed = item("appointments", "id", "A-9001") | {
        "starts_at": "2026-12-04T08:00:00",
        "status": "cancelled",
        "provider": "DR-BOSE",
    }

    summary = run_import(only(appointments=[changed])).summary()

    assert summary["appointments"] == {"created": 0, "updated": 1, "unchanged": 0}
    appointment = Appointment.objects.get(external_id="A-9001")
    assert appointment.pk == pk
    assert appointment.starts_at == dt.datetime(2026, 12, 4, 14, 0, tzinfo=dt.UTC)
    assert (appointment.status, appointment.provider.external_id) == ("cancelled", "DR-BOSE")
    assert Appointment.objects.count() == 3


def test_a_line_cannot_be_cut_below_what_is_already_applied_to_it():
    run_import(example())
    visit = item("encounters", "number", "1001")
    visit["lines"][0]["adjusted"] = "60.00"  # would owe 20.00; R-5001 put 40.00 on it
    expected = [
        {
            "path": "encounters[0].lines[0]",
            "message": "line 1001-1 would owe 20.00, less than the 40.00 of patient payments "
            "applied to it",
        }
    ]
    assert refused(only(encounters=[visit])) == expected
    # The same with the receipt sent again unchanged beside it.
    assert refused(only(encounters=[visit], receipts=[item("receipts", "id", "R-5001")])) == (
        expected
    )


def test_a_line_can_be_cut_down_to_exactly_what_is_applied_to_it():
    run_import(example())
    visit = item("encounters", "number", "1003")
    receipt = {
        "id": "R-6000",
        "guarantor": "2010",
        "date": "2026-11-02",
        "amount": "50.00",
        "applications": [{"encounter": "1003", "line": 1, "amount": "50.00"}],
    }
    run_import(only(receipts=[receipt]))
    visit["lines"][0]["adjusted"] = "45.00"  # owes 50.00, all of it paid
    run_import(only(encounters=[visit]))
    assert line("1003", 1).remaining_cents == 0
    assert_the_ledger_replays()


def test_a_line_adjusted_beyond_what_was_billed_owes_nothing_and_charges_nothing():
    run_import(example())
    visit = item("encounters", "number", "1003")
    visit["lines"][0]["adjusted"] = "120.00"  # 95.00 billed: the patient owes nothing
    run_import(only(encounters=[visit]))
    assert line("1003", 1).remaining_cents == 0
    charges = LedgerEntry.objects.filter(line=line("1003", 1)).order_by("pk")
    # The charge records the line's responsibility as it is (-25.00), so a replay gives the
    # stored figures back; the balances count the line's remaining as 0, never below.
    assert list(charges.values_list("debit", "credit", "amount_cents")) == [
        (Account.PATIENT_AR, Account.CHARGES, 8000),
        (Account.CHARGES, Account.PATIENT_AR, 10500),
    ]
    assert balances("2010").current_balance == 2500
    assert_the_ledger_replays()


def test_a_receipt_made_through_pops_cannot_be_overwritten_by_an_import():
    run_import(example())
    made_in_pops = Receipt.objects.create(
        practice=Practice.objects.get(external_id="northside"),
        guarantor=Guarantor.objects.get(external_id="2010"),
        number="POPS-1",
        date=dt.date(2026, 11, 20),
        amount_cents=1000,
        method="card",
        source="POPS",
        made_in_pops=True,
    )
    sent = {
        "id": "POPS-1",
        "guarantor": "2010",
        "type": "payment",
        "date": "2026-11-20",
        "amount": "15.00",
        "method": "card",
        "source": "POPS",
        "applications": [],
    }
    assert refused(only(receipts=[sent])) == [
        {
            "path": "receipts[0].id",
            "message": "receipt 'POPS-1' was made through POPS and cannot be changed by an import",
        }
    ]
    with_applications = sent | {
        "amount": "10.00",
        "applications": [{"encounter": "1003", "line": 1, "amount": "10.00"}],
    }
    assert paths(refused(only(receipts=[with_applications]))) == ["receipts[0].id"]

    before = snapshot()
    summary = run_import(only(receipts=[sent | {"amount": "10.00"}])).summary()
    assert summary["receipts"] == {"created": 0, "updated": 0, "unchanged": 1}
    assert snapshot() == before
    made_in_pops.refresh_from_db()
    assert made_in_pops.amount_cents == 1000


def test_a_receipt_voided_in_pops_cannot_be_revived_by_an_import():
    run_import(example())
    Receipt.objects.filter(number="R-5003").update(status=Receipt.Status.VOIDED)
    sent = item("receipts", "id", "R-5003")
    assert refused(only(receipts=[sent | {"amount": "26.00"}])) == [
        {
            "path": "receipts[0].id",
            "message": "receipt 'R-5003' is voided in POPS and cannot be changed by an import",
        }
    ]
    summary = run_import(only(receipts=[sent])).summary()
    assert summary["receipts"] == {"created": 0, "updated": 0, "unchanged": 1}
    assert Receipt.objects.get(number="R-5003").status == Receipt.Status.VOIDED


def test_a_patient_moving_to_another_guarantor_takes_their_encounters_along():
    run_import(example())
    jamie = item("patients", "id", "P-101") | {"guarantor": "2012"}

    summary = run_import(only(patients=[jamie])).summary()

    assert summary["patients"] == {"created": 0, "updated": 1, "unchanged": 0}
    samuel = Guarantor.objects.get(external_id="2012")
    assert Encounter.objects.get(number="1002").guarantor == samuel
    assert Patient.objects.get(external_id="P-101").guarantor == samuel
    assert balances("2010").current_balance == 7500  # 105.00 less visit 1002's 30.00
    assert balances("2012").current_balance == 3000
    # The visit's line and its charge are unchanged: it is the same visit, owed by another.
    assert line("1002", 1).remaining_cents == 3000
    assert_the_ledger_replays()


def test_a_patient_moving_together_with_their_encounter_in_one_document():
    run_import(example())
    jamie = item("patients", "id", "P-101") | {"guarantor": "2012"}
    visit = item("encounters", "number", "1002")
    run_import(only(patients=[jamie], encounters=[visit]))
    assert Encounter.objects.get(number="1002").guarantor.external_id == "2012"


def test_a_refund_returns_unapplied_money():
    run_import(example())
    refund = {
        "id": "R-7000",
        "guarantor": "2010",
        "type": "refund",
        "date": "2026-11-03",
        "amount": "5.00",
        "method": "check",
        "source": "office",
    }

    summary = run_import(only(receipts=[refund])).summary()

    assert summary["receipts"] == {"created": 1, "updated": 0, "unchanged": 0}
    assert entries_of("R-7000") == [("refund", Account.UNAPPLIED, Account.CASH, 500, None, None)]
    assert balances("2010").unapplied_funds == 0
    assert balances("2010").current_balance == 11000
    assert Receipt.objects.get(number="R-7000").get_type_display() == "Patient Refund"
    assert_the_ledger_replays()


@pytest.mark.parametrize("section", list(SECTIONS))
def test_every_list_may_be_omitted(section):
    run_import(example())
    before = snapshot()

    summary = run_import(only(**{section: example()[section]})).summary()

    assert snapshot() == before
    sent = {section: len(example()[section])}
    if section == "encounters":
        sent["lines"] = 8
    # The summary always lists everything it counts, in the order of the document.
    assert list(summary) == ["practice", "ledger_entries", *TALLIED]
    for name in TALLIED:
        assert summary[name] == {"created": 0, "updated": 0, "unchanged": sent.get(name, 0)}


def test_a_document_of_just_the_practice_creates_or_renames_it():
    run_import({"practice": {"id": "solo", "name": "Solo Practice"}})
    assert Practice.objects.get(external_id="solo").time_zone == "America/New_York"
    run_import({"practice": {"id": "solo", "name": "Solo Care", "time_zone": "America/Denver"}})
    practice = Practice.objects.get(external_id="solo")
    assert (practice.name, practice.time_zone) == ("Solo Care", "America/Denver")


def test_null_sections_count_as_omitted():
    run_import(example())
    before = row_counts()
    run_import(only(**dict.fromkeys(SECTIONS)))
    after = row_counts()
    assert after.pop("core.AuditEvent") == before.pop("core.AuditEvent") + 1
    assert after == before


def test_applications_rows_follow_their_receipt():
    run_import(example())
    assert Application.objects.count() == 6
    assert {a.guarantor_id for a in Application.objects.filter(receipt__number="R-5004")} == {
        Guarantor.objects.get(external_id="31415").pk
    }


def test_the_document_shown_at_the_top_of_import_md_imports():
    text = (EXAMPLE_PATH.parents[1] / "import.md").read_text()
    shown = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
    assert set(shown) == {"practice", *SECTIONS}
    summary = run_import(shown).summary()
    assert summary["receipts"] == {"created": 1, "updated": 0, "unchanged": 0}
    assert balances("2010").statement_balance == 0
