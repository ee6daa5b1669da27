"""A receipt's Visit Details are grouped by Facility + Provider + Patient (spec §9): two patients
of one guarantor seen at the same facility by the same provider are two visits; one patient's
encounters at the same facility with the same provider are one."""

import uuid
from typing import Any

import pytest

from pops.core.audit import Actor
from pops.groups.services import prepare_practice
from pops.ledger.models import Guarantor, Practice, Receipt
from pops.payments.services.attempts import PaymentRequest, pay
from pops.payments.services.receipts import receipt_content
from tests.conftest import run_import
from tests.payments.conftest import card_token

pytestmark = pytest.mark.django_db

ACTOR = Actor.command("tests")


def visit(number: str, patient: str, service_date: str, billed: str) -> dict[str, Any]:
    """An encounter of one line, at Main Street with Dr. Ada Ames."""
    return {
        "number": number,
        "patient": patient,
        "facility": "F1",
        "provider": "D1",
        "service_date": service_date,
        "lines": [{"line": 1, "description": "Office visit", "billed": billed}],
    }


def family(*encounters: dict[str, Any]) -> Practice:
    """Guarantor 2010 (Pat Lee) answers for two patients, Ana Lee and Ben Lee."""
    practice = run_import(
        {
            "practice": {"id": "p1", "name": "Practice One", "time_zone": "America/Chicago"},
            "facilities": [{"id": "F1", "name": "Main Street"}],
            "providers": [{"id": "D1", "name": "Dr. Ada Ames"}],
            "guarantors": [{"id": "2010", "first_name": "Pat", "last_name": "Lee"}],
            "patients": [
                {"id": "P-ANA", "guarantor": "2010", "first_name": "Ana", "last_name": "Lee"},
                {"id": "P-BEN", "guarantor": "2010", "first_name": "Ben", "last_name": "Lee"},
            ],
            "encounters": list(encounters),
        }
    ).practice
    prepare_practice(practice, actor=ACTOR)
    return practice


def pay_all(cents: int) -> Receipt:
    guarantor = Guarantor.objects.get(external_id="2010")
    request = PaymentRequest(
        guarantor, cents, uuid.uuid4().hex, "f", ACTOR, payment_token=card_token()
    )
    receipt = pay(request).receipt
    assert receipt is not None
    assert receipt.status == Receipt.Status.PAID
    return receipt


def test_two_patients_seen_at_one_facility_by_one_provider_are_two_visits():
    family(
        visit("1", "P-ANA", "2026-02-01", "20.00"),
        visit("2", "P-BEN", "2026-02-01", "30.00"),
    )

    content = receipt_content(pay_all(5_000))

    assert [
        (v.facility, v.provider, v.patient, [line.service_id for line in v.lines])
        for v in content.visits
    ] == [
        ("Main Street", "Dr. Ada Ames", "Ana Lee", ["1-1"]),
        ("Main Street", "Dr. Ada Ames", "Ben Lee", ["2-1"]),
    ]
    assert [[line.paid_by_receipt_cents for line in v.lines] for v in content.visits] == [
        [2_000],
        [3_000],
    ]


def test_one_patients_encounters_at_one_facility_with_one_provider_are_one_visit():
    family(
        visit("1", "P-ANA", "2026-02-01", "20.00"),
        visit("2", "P-ANA", "2026-03-01", "30.00"),
    )

    content = receipt_content(pay_all(5_000))

    [only] = content.visits
    assert (only.facility, only.provider, only.patient) == (
        "Main Street",
        "Dr. Ada Ames",
        "Ana Lee",
    )
    assert [line.service_id for line in only.lines] == ["1-1", "2-1"]


def test_the_receipt_endpoint_answers_a_visit_per_patient(api_for):
    practice = family(
        visit("1", "P-ANA", "2026-02-01", "20.00"),
        visit("2", "P-BEN", "2026-02-01", "30.00"),
        visit("3", "P-ANA", "2026-03-01", "10.00"),
    )
    receipt = pay_all(6_000)

    response = api_for(practice).get(f"/api/v1/receipts/{receipt.number}")

    assert response.status_code == 200, response.json()
    assert [
        (v["facility"], v["provider"], v["patient"], [line["service_id"] for line in v["lines"]])
        for v in response.json()["visit_details"]
    ] == [
        ("Main Street", "Dr. Ada Ames", "Ana Lee", ["1-1", "3-1"]),
        ("Main Street", "Dr. Ada Ames", "Ben Lee", ["2-1"]),
    ]
