"""Scenario builders for the ledger tests, and the Hypothesis profiles.

Scenarios go in through the real import path (`run_import`), written in cents so the tests read
in the same unit they assert in: `line(1, billed=20000, adjusted=3000)` is a $200.00 line with a
$30.00 adjustment.

Hypothesis profiles: "ci" (the default, about 200 examples) and "dev" (quicker); choose with
HYPOTHESIS_PROFILE=dev.
"""

from typing import Any

from pops.core.money import format_amount
from pops.ledger.importing.importer import ImportRejected
from pops.ledger.models import Guarantor
from pops.ledger.services.balances import Balances, guarantor_balances
from tests.conftest import run_import

PRACTICE = "p1"


def money(cents: int) -> str:
    return format_amount(cents)


def patient_id(guarantor: str) -> str:
    """Each guarantor has one patient, whose id is derived from the guarantor's."""
    return f"P-{guarantor[-62:]}"


def line(
    number: int,
    billed: int,
    *,
    adjusted: int = 0,
    insurance_paid: int = 0,
    pending_insurance: int = 0,
) -> dict[str, Any]:
    return {
        "line": number,
        "code": "99213",
        "description": "Office visit",
        "billed": money(billed),
        "adjusted": money(adjusted),
        "insurance_paid": money(insurance_paid),
        "pending_insurance": money(pending_insurance),
    }


def encounter(
    number: str,
    service_date: str,
    *lines: dict[str, Any],
    guarantor: str = "G1",
    collections: bool = False,
) -> dict[str, Any]:
    return {
        "number": number,
        "patient": patient_id(guarantor),
        "facility": "F1",
        "provider": "D1",
        "service_date": service_date,
        "collections": {"agency": "A1", "sent_on": "2026-06-01"} if collections else None,
        "lines": list(lines),
    }


def applied(encounter_number: str, line_number: int, amount: int) -> dict[str, Any]:
    return {"encounter": encounter_number, "line": line_number, "amount": money(amount)}


def receipt(
    number: str,
    date: str,
    amount: int,
    *applications: dict[str, Any],
    guarantor: str = "G1",
    type: str = "payment",
) -> dict[str, Any]:
    return {
        "id": number,
        "guarantor": guarantor,
        "date": date,
        "amount": money(amount),
        "type": type,
        "method": "card",
        "source": "office",
        "applications": list(applications),
    }


def refund(number: str, date: str, amount: int, *, guarantor: str = "G1") -> dict[str, Any]:
    return receipt(number, date, amount, guarantor=guarantor, type="refund")


def statement(
    number: str,
    statement_date: str,
    *,
    balance: int,
    amount_due: int,
    guarantor: str = "G1",
) -> dict[str, Any]:
    return {
        "id": number,
        "guarantor": guarantor,
        "statement_date": statement_date,
        "due_date": statement_date,
        "statement_balance": money(balance),
        "amount_due": money(amount_due),
    }


def document(
    *,
    guarantors: tuple[str, ...] = ("G1",),
    encounters: list[dict[str, Any]] | tuple[dict[str, Any], ...] = (),
    receipts: list[dict[str, Any]] | tuple[dict[str, Any], ...] = (),
    statements: list[dict[str, Any]] | tuple[dict[str, Any], ...] = (),
    practice: str = PRACTICE,
) -> dict[str, Any]:
    """A whole import document: one facility, provider and agency, one patient per guarantor."""
    return {
        "practice": {"id": practice, "name": f"Practice {practice}", "time_zone": "UTC"},
        "facilities": [{"id": "F1", "name": "Main Street"}],
        "providers": [{"id": "D1", "name": "Dr. One"}],
        "collection_agencies": [{"id": "A1", "name": "Recovery Inc."}],
        "guarantors": [{"id": g, "first_name": "Pat", "last_name": f"Doe {g}"} for g in guarantors],
        "patients": [
            {"id": patient_id(g), "guarantor": g, "first_name": "Pat", "last_name": f"Doe {g}"}
            for g in guarantors
        ],
        "encounters": list(encounters),
        "receipts": list(receipts),
        "statements": list(statements),
    }


def load(**sections: Any) -> None:
    """Import a document built by `document(**sections)`; a refusal fails with its problems."""
    try:
        run_import(document(**sections))
    except ImportRejected as rejected:
        raise AssertionError(f"import refused: {rejected.problems}") from None


def guarantor(external_id: str = "G1", practice: str = PRACTICE) -> Guarantor:
    return Guarantor.objects.get(practice__external_id=practice, external_id=external_id)


def balances(
    external_id: str = "G1", *, include_new_charges: bool = False, practice: str = PRACTICE
) -> Balances:
    return guarantor_balances(
        guarantor(external_id, practice), include_new_charges=include_new_charges
    )
