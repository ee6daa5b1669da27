"""GET /api/v1/receipts/{receipt_number}: the receipt content of spec §9, audited."""

import pytest

from pops.core import clock
from pops.core.audit import Actor
from pops.core.models import AuditEvent
from pops.groups.services import prepare_practice
from pops.ledger.models import Practice, Receipt
from pops.payments.gateways.sandbox.models import Transaction
from tests.api.test_payments_api import body, post
from tests.conftest import run_import
from tests.ledger import example
from tests.payments.conftest import DECLINED, card_token

pytestmark = pytest.mark.django_db


def url(number: str) -> str:
    return f"/api/v1/receipts/{number}"


def northside(practice_id: str = "northside") -> Practice:
    document = example()
    document["practice"]["id"] = practice_id
    practice = run_import(document).practice
    prepare_practice(practice, actor=Actor.command("tests"))
    return practice


@pytest.fixture
def practice() -> Practice:
    return northside()


@pytest.fixture
def api(api_for, practice):
    return api_for(practice)


def views() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="payments.receipt.viewed"))


def test_a_pops_receipt_answers_its_content_with_money_as_decimal_strings(api, practice):
    number = post(api, body(amount="105.00")).json()["receipt_number"]

    response = api.get(url(number))

    assert response.status_code == 200
    assert response.json() == {
        "receipt_number": number,
        "payment_date": clock.local_date(practice.time_zone).isoformat(),
        "payment_status": "Paid",
        "type": "Patient Payment",
        "paid_with": "Visa ending 1111",
        "amount": "105.00",
        "guarantor": "Patricia Lee",
        "account_number": "2010",
        "transaction_numbers": [Transaction.objects.get().transaction_id],
        "refund_of": None,
        "summary": {
            "amount_billed": "305.00",
            "adjusted_or_pending_insurance": "195.00",
            "insurance_paid": "0.00",
            "patient_paid": "105.00",
            "remaining_balance": "5.00",
        },
        "visit_details": [
            {
                "facility": "Lakeview Clinic",
                "provider": "Ravi Bose, DO",
                "patient": "Jamie Lee",
                "lines": [
                    {
                        "service_date": "2026-09-15",
                        "service_id": "1002-1",
                        "description": "Well child visit, age 1-4",
                        "amount_billed": "210.00",
                        "adjusted_or_pending_insurance": "180.00",
                        "insurance_paid": "0.00",
                        "patient_paid": "30.00",
                        "remaining_balance": "0.00",
                        "patient_paid_this_receipt": "30.00",
                    }
                ],
            },
            {
                "facility": "Lakeview Clinic",
                "provider": "Lin Chen, NP",
                "patient": "Patricia Lee",
                "lines": [
                    {
                        "service_date": "2026-10-20",
                        "service_id": "1003-1",
                        "description": "Office visit, short",
                        "amount_billed": "95.00",
                        "adjusted_or_pending_insurance": "15.00",
                        "insurance_paid": "0.00",
                        "patient_paid": "75.00",
                        "remaining_balance": "5.00",
                        "patient_paid_this_receipt": "75.00",
                    }
                ],
            },
        ],
    }


def test_an_unsuccessful_receipt_answers_nothing_paid(api):
    number = post(api, body(payment_token=card_token(DECLINED))).json()["receipt_number"]

    answer = api.get(url(number)).json()

    assert (answer["payment_status"], answer["amount"]) == ("Unsuccessful", "0.00")
    assert answer["transaction_numbers"] == []
    assert answer["visit_details"] == []


def test_an_imported_receipt_answers_too(api):
    answer = api.get(url("R-5004")).json()

    assert answer["guarantor"] == "Helen Brooks"
    assert answer["account_number"] == "31415"
    assert answer["amount"] == "100.00"
    assert answer["paid_with"] == "check"
    assert [line["service_id"] for line in answer["visit_details"][0]["lines"]] == [
        "1005-1",
        "1005-2",
    ]


def test_every_view_writes_one_audit_record(api):
    api.get(url("R-5004"))
    api.get(url("R-5004"))

    first, second = views()
    assert (first.resource_type, first.resource_id, first.guarantor_id) == (
        "receipt",
        "R-5004",
        "31415",
    )
    assert (first.actor_type, first.actor_label) == ("api", "tests")
    assert second.resource_id == "R-5004"


def test_a_missing_receipt_answers_404(api):
    response = api.get(url("R-404"))

    assert response.status_code == 404
    assert response.json()["errors"][0]["path"] == "receipt_number"
    assert views() == []


def test_another_practices_receipt_answers_404_like_a_missing_one(api, api_for):
    other = api_for(northside("southside"))
    number = post(other, body(amount="10.00")).json()["receipt_number"]
    assert Receipt.objects.filter(number=number).exists()

    foreign, missing = api.get(url(number)), api.get(url("P9999999"))

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["errors"][0]["path"] == missing.json()["errors"][0]["path"]
    assert views() == []


def test_the_same_number_in_two_practices_answers_each_its_own(api, api_for):
    other = api_for(northside("southside"))
    Receipt.objects.filter(number="R-5004", practice__external_id="southside").update(
        amount_cents=12_300
    )

    assert api.get(url("R-5004")).json()["amount"] == "100.00"
    assert other.get(url("R-5004")).json()["amount"] == "123.00"


def test_a_receipt_number_longer_than_an_id_is_refused(api):
    response = api.get(url("R" * 65))
    assert response.status_code == 422


def test_without_an_api_key_the_answer_is_401(client):
    assert client.get(url("R-5004")).status_code == 401
