"""`POST /api/v1/receipts/{receipt_number}/void` and `.../refunds`: an Idempotency-Key on each,
the answers of the contract, and every error as `{"errors": [{"path", "message"}]}`."""

import datetime as dt
import json
import uuid
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client

from pops.api import idempotency
from pops.api.models import ApiKey, IdempotentRequest
from pops.core.models import AuditEvent
from pops.ledger.models import Receipt
from pops.ledger.services.replay import differences
from pops.payments.gateways.sandbox import faults
from pops.payments.gateways.sandbox.faults import Fault, Operation
from pops.payments.gateways.sandbox.models import Refund
from tests.payments import test_voids
from tests.payments.conftest import DECLINED, run_concurrently
from tests.payments.test_voids import (
    DAY_1,
    balances,
    gateway_refunds,
    gateway_transactions,
    guarantor_of,
    nothing_changed_since,
    paid_receipt,
    pay_card,
    prepared_practice,
)

pytestmark = pytest.mark.django_db


# The fixtures of the void tests: the clock at DAY_1, the prepared practice and its guarantor.
day_1, practice, guarantor = test_voids.day_1, test_voids.practice, test_voids.guarantor


DAY_2 = DAY_1 + dt.timedelta(days=1)
KEY_NAME = "front-desk-kiosk"


@pytest.fixture
def api(practice, api_for):
    client = api_for(practice)
    ApiKey.objects.filter(practice=practice).update(name=KEY_NAME)
    return client


def post(api, path, body, key: str | None = "fresh"):
    """POST `body` as JSON with the API key, and an Idempotency-Key: a new one ("fresh"), the
    one given, or none (None)."""
    headers = dict(api.headers)
    if key is not None:
        headers["Idempotency-Key"] = str(uuid.uuid4()) if key == "fresh" else key
    return api.client.post(
        f"/api/v1/receipts/{path}",
        data=json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


def void(api, number, reason="Paid twice", key="fresh"):
    return post(api, f"{number}/void", {"reason": reason}, key)


def refund(api, number, amount, key="fresh"):
    return post(api, f"{number}/refunds", {"amount": amount}, key)


def error_paths(response) -> list[str]:
    return [e["path"] for e in response.json()["errors"]]


# --- Void -----------------------------------------------------------------------------------


def test_a_void_answers_the_voided_receipt(api, practice, guarantor):
    receipt = paid_receipt(guarantor, 7000)

    response = void(api, receipt.number, reason="Paid twice")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["receipt_number"], body["status"], body["amount"]) == (
        receipt.number,
        "Voided",
        "70.00",
    )
    assert body["void_reason"] == "Paid twice"
    assert dt.datetime.fromisoformat(body["voided_at"]) == DAY_1
    assert body["transaction_numbers"] == [t.transaction_id for t in gateway_transactions(receipt)]
    assert [t.status for t in gateway_transactions(receipt)] == ["voided"]
    assert balances(guarantor).current_balance == 9000
    assert differences(practice.pk) == []
    event = AuditEvent.objects.get(action="payments.receipt.voided")
    assert (event.actor_type, event.actor_label) == ("api", KEY_NAME)


def test_a_void_replayed_with_its_key_answers_the_same_and_another_body_is_422(api, guarantor):
    receipt = paid_receipt(guarantor, 1000)
    k = str(uuid.uuid4())
    first = void(api, receipt.number, key=k)

    again = void(api, receipt.number, key=k)
    other = void(api, receipt.number, reason="Another reason", key=k)

    assert again.status_code == 200
    assert again.json() == first.json()
    assert other.status_code == 422
    assert error_paths(other) == ["Idempotency-Key"]
    assert AuditEvent.objects.filter(action="payments.receipt.voided").count() == 1


def test_a_void_on_a_later_day_is_422_and_changes_nothing(day_1, api, practice, guarantor):
    receipt = paid_receipt(guarantor, 1000)
    day_1.move_to(DAY_2)
    unchanged = nothing_changed_since(practice)

    response = void(api, receipt.number)

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["path"] == "receipt_number"
    assert "refund it instead" in error["message"]
    unchanged()
    assert not IdempotentRequest.objects.exists()


def test_a_refund_an_unsuccessful_receipt_or_one_voided_already_cannot_be_voided(
    day_1, api, practice, guarantor
):
    declined = pay_card(guarantor, 1000, card=DECLINED).receipt
    voided = paid_receipt(guarantor, 1000)
    assert void(api, voided.number).status_code == 200
    paid = paid_receipt(guarantor, 2000)
    day_1.move_to(DAY_2)
    made = refund(api, paid.number, "5.00").json()["receipt_number"]
    unchanged = nothing_changed_since(practice)

    for number, words in (
        (made, "A refund receipt cannot be voided"),
        (declined.number, "this one is Unsuccessful"),
        (voided.number, "voided already, on 2026-10-05"),
    ):
        response = void(api, number)
        assert response.status_code == 422, number
        [error] = response.json()["errors"]
        assert error["path"] == "receipt_number"
        assert words in error["message"]
    unchanged()


def test_a_body_over_16_kb_is_400_and_changes_nothing(api, guarantor):
    receipt = paid_receipt(guarantor, 1000)

    response = void(api, receipt.number, reason="x" * 20_000)

    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["message"] == "the body is over 16384 bytes"
    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.PAID


def test_void_and_refund_need_an_idempotency_key(api, guarantor):
    receipt = paid_receipt(guarantor, 1000)

    for response in (
        void(api, receipt.number, key=None),
        refund(api, receipt.number, "1.00", key=None),
        void(api, receipt.number, key="   "),
        void(api, receipt.number, key="x" * 256),
    ):
        assert response.status_code == 400, response.content
        assert error_paths(response) == ["Idempotency-Key"]
    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.PAID


def test_an_unknown_receipt_and_another_practices_receipt_are_404(api, day_1):
    other = prepared_practice("p2")
    other_receipt = paid_receipt(guarantor_of(other), 1000)

    for number in ("P9999999", other_receipt.number):
        assert void(api, number).status_code == 404
        response = refund(api, number, "1.00")
        assert response.status_code == 404
        assert error_paths(response) == ["receipt_number"]
    other_receipt.refresh_from_db()
    assert other_receipt.status == Receipt.Status.PAID


def test_a_request_refused_by_validation_does_not_use_up_its_key(api, guarantor):
    receipt = paid_receipt(guarantor, 1000)
    k = str(uuid.uuid4())

    for body in ({"reason": ""}, {"reason": "   "}, {}, {"reason": "ok", "extra": 1}):
        response = post(api, f"{receipt.number}/void", body, k)
        assert response.status_code == 422, body
    assert not IdempotentRequest.objects.exists()

    assert void(api, receipt.number, reason="Now with a reason", key=k).status_code == 200


def test_a_void_the_gateway_did_not_make_is_503_and_the_key_can_be_retried(api, guarantor):
    receipt = paid_receipt(guarantor, 1000)
    k = str(uuid.uuid4())

    with faults.inject(Fault.CONNECTION_REFUSED, [Operation.VOID]):
        response = void(api, receipt.number, key=k)

    assert response.status_code == 503
    assert response.json()["errors"][0]["message"]
    assert void(api, receipt.number, key=k).status_code == 200
    assert [t.status for t in gateway_transactions(receipt)] == ["voided"]


# --- Refund ---------------------------------------------------------------------------------


def test_a_refund_answers_201_with_the_refund_receipt_and_its_batch(day_1, api, guarantor):
    receipt = paid_receipt(guarantor, 7000)
    day_1.move_to(DAY_2)

    response = refund(api, receipt.number, "25.00")

    assert response.status_code == 201, response.content
    body = response.json()
    made = Receipt.objects.get(number=body["receipt_number"])
    [refund_at_gateway] = Refund.objects.all()
    assert body == {
        "receipt_number": made.number,
        "status": "Paid",
        "amount": "25.00",
        "date": DAY_2.date().isoformat(),
        "refund_of": receipt.number,
        "transaction_numbers": [refund_at_gateway.refund_id],
        "reference_batch": {
            "id": str(made.reference_batch_id),
            "date": DAY_2.date().isoformat(),
            "description": "API Payments",
            "user": "POPS",
            "status": "Open",
        },
    }
    assert made.type == Receipt.Type.REFUND
    assert balances(guarantor).current_balance == 2000 + 2500
    event = AuditEvent.objects.get(action="payments.refund.succeeded")
    assert (event.actor_type, event.actor_label) == ("api", KEY_NAME)
    # The receipt itself shows the refund's transaction number, and the payment's its own.
    shown = api.get(f"/api/v1/receipts/{made.number}").json()
    assert (shown["type"], shown["refund_of"], shown["amount"]) == (
        "Patient Refund",
        receipt.number,
        "25.00",
    )
    assert shown["transaction_numbers"] == [refund_at_gateway.refund_id]
    [charge] = gateway_transactions(receipt)
    shown = api.get(f"/api/v1/receipts/{receipt.number}").json()
    assert shown["transaction_numbers"] == [charge.transaction_id]


def test_a_refund_replayed_with_its_key_refunds_once(day_1, api, guarantor):
    receipt = paid_receipt(guarantor, 7000)
    day_1.move_to(DAY_2)
    k = str(uuid.uuid4())

    first = refund(api, receipt.number, "25.00", key=k)
    again = refund(api, receipt.number, "25.0", key=k)  # the same amount, written otherwise
    other = refund(api, receipt.number, "26.00", key=k)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert other.status_code == 422
    assert error_paths(other) == ["Idempotency-Key"]
    assert gateway_refunds(receipt) == [2500]


def test_a_refund_above_what_is_left_is_422_saying_what_is_left(day_1, api, practice, guarantor):
    receipt = paid_receipt(guarantor, 7000)
    day_1.move_to(DAY_2)
    assert refund(api, receipt.number, "60.00").status_code == 201
    unchanged = nothing_changed_since(practice)

    response = refund(api, receipt.number, "10.01")

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["path"] == "amount"
    assert "$10.00 left to refund" in error["message"]
    unchanged()
    assert gateway_refunds(receipt) == [6000]


@pytest.mark.parametrize("amount", ["0", "0.00", "-1.00", "1.001", "ten", 10, None, "", True])
def test_a_bad_amount_is_422_and_changes_nothing(day_1, api, practice, guarantor, amount):
    receipt = paid_receipt(guarantor, 7000)
    day_1.move_to(DAY_2)
    unchanged = nothing_changed_since(practice)

    response = refund(api, receipt.number, amount)

    assert response.status_code == 422
    assert error_paths(response) == ["amount"]
    unchanged()


def test_a_refund_on_the_payments_day_is_422_void_it_instead(api, guarantor):
    receipt = paid_receipt(guarantor, 7000)

    response = refund(api, receipt.number, "10.00")

    assert response.status_code == 422
    assert "void it instead" in response.json()["errors"][0]["message"]


def test_a_refund_still_in_progress_with_the_key_is_409(day_1, api, practice, guarantor):
    receipt = paid_receipt(guarantor, 7000)
    day_1.move_to(DAY_2)
    k = str(uuid.uuid4())
    operation = "api:receipts.refund"
    payload = {"receipt": receipt.number, "body": {"amount": 1000}}
    IdempotentRequest.objects.create(
        practice=practice,
        operation=operation,
        key=k,
        fingerprint=idempotency.fingerprint(operation, payload),
    )

    response = refund(api, receipt.number, "10.00", key=k)

    assert response.status_code == 409
    assert error_paths(response) == ["Idempotency-Key"]
    assert gateway_refunds(receipt) == []


def test_a_refund_the_gateway_did_not_confirm_is_503_and_a_retry_finishes_it_once(
    day_1, api, practice, guarantor
):
    receipt = paid_receipt(guarantor, 7000)
    day_1.move_to(DAY_2)
    k = str(uuid.uuid4())

    with faults.inject(Fault.TIMEOUT_AFTER_COMMIT, [Operation.REFUND]):
        response = refund(api, receipt.number, "25.00", key=k)
    assert response.status_code == 503
    assert "same idempotency key" in response.json()["errors"][0]["message"]

    retried = refund(api, receipt.number, "25.00", key=k)

    assert retried.status_code == 201, retried.content
    assert retried.json()["amount"] == "25.00"
    assert gateway_refunds(receipt) == [2500]
    assert Receipt.objects.filter(type=Receipt.Type.REFUND).count() == 1
    assert differences(practice.pk) == []


def test_the_operations_are_in_the_openapi_schema_with_the_key_header(api):
    schema = api.get("/api/v1/openapi.json").json()
    for path in (
        "/api/v1/receipts/{receipt_number}/void",
        "/api/v1/receipts/{receipt_number}/refunds",
    ):
        operation = schema["paths"][path]["post"]
        header = [p for p in operation["parameters"] if p["in"] == "header"]
        assert header[0]["name"] == "Idempotency-Key"
        assert header[0]["required"] is True
        assert {"400", "401", "404", "409", "422", "503"} <= set(operation["responses"])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs several connections")
def test_concurrent_refund_requests_with_one_key_answer_once_or_409(day_1, api, guarantor):
    receipt = paid_receipt(guarantor, 7000)
    day_1.move_to(DAY_2)
    k = str(uuid.uuid4())

    def send():
        # One test client per thread, with the same API key.
        response = refund(
            SimpleNamespace(client=Client(), headers=api.headers), receipt.number, "25.00", key=k
        )
        return response.status_code, response.json()

    outcomes = run_concurrently([send] * 12)

    created = [body for status, body in outcomes if status == 201]
    assert created
    assert all(body == created[0] for body in created)
    assert {status for status, _ in outcomes} <= {201, 409}
    assert gateway_refunds(receipt) == [2500]
    assert Receipt.objects.filter(type=Receipt.Type.REFUND).count() == 1
