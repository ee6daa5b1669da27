import base64

import pytest

from pops.payments.gateways.base import WalletKind
from pops.payments.gateways.sandbox.tokens import _wallet_token_id
from pops.payments.models import PaymentAttempt
from tests.api.test_payments_api import body, post, prepared_practice
from tests.conftest import run_import
from tests.test_import_documents import small_document

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "address",
    ["/api/v1/guarantors/%00/balances", "/api/v1/guarantors/2010/balances?group=%00"],
)
def test_an_address_with_control_characters_is_refused_clearly(api_for, address):
    api = api_for(run_import(small_document()).practice)
    response = api.get(address)
    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"path": "", "message": "the address holds control characters"}]
    }


def test_a_page_address_with_control_characters_is_refused(client):
    assert client.get("/?q=%01").status_code == 400


DEEP_ARRAY = b"[" * 1500 + b"]" * 1500  # deeper than Python's recursion limit, in 3 kB
DEEP_OBJECT = b'{"":[' * 580 + b"]}" * 580  # objects and arrays, 1,160 deep in 4,060 bytes


@pytest.mark.parametrize("document", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_a_document_nested_too_deep_is_refused_clearly_everywhere(api_for, client, document):
    api = api_for(prepared_practice())
    receipt = post(api, body(), key="paid").json()["receipt_number"]
    attempts = PaymentAttempt.objects.count()
    for path in (
        "/api/v1/payments",
        f"/api/v1/receipts/{receipt}/void",
        f"/api/v1/receipts/{receipt}/refunds",
    ):
        headers = {**api.headers, "Idempotency-Key": f"deep-{path}"}
        response = api.client.post(
            path, data=document, content_type="application/json", headers=headers
        )
        assert response.status_code == 400, path
        assert response.json() == {"errors": [{"path": "", "message": "send a JSON object"}]}
    response = api.post("/api/v1/import", raw=document)
    assert response.status_code == 422, response.content  # (the import streams its document)
    for path in ("/sandbox-gateway/tokens", "/sandbox-gateway/wallets/google-pay/tokens"):
        response = client.post(path, data=document, content_type="application/json")
        assert response.status_code == 400, path
        assert response.json() == {"errors": [{"path": "", "message": "Send a JSON object."}]}
    assert PaymentAttempt.objects.count() == attempts
    assert api.get(f"/api/v1/receipts/{receipt}").json()["payment_status"] == "Paid"


def test_a_wallet_payload_nested_too_deep_is_not_a_wallet_token():
    payload = base64.urlsafe_b64encode(DEEP_ARRAY).decode()
    assert _wallet_token_id(payload, WalletKind.GOOGLE_PAY) is None


@pytest.mark.parametrize(
    ("method", "address", "status", "message"),
    [
        (
            "get",
            "/api/v1/nope",
            404,
            "no such address in the API (the reference is at /api/v1/docs)",
        ),
        ("put", "/api/v1/payments", 405, "PUT is not allowed here; this address takes POST"),
        (
            "delete",
            "/api/v1/receipts/P1/void",
            405,
            "DELETE is not allowed here; this address takes POST",
        ),
    ],
)
def test_the_api_answers_its_own_json_errors_for_what_no_view_answers(
    api_for, method, address, status, message
):
    api = api_for(run_import(small_document()).practice)
    response = getattr(api.client, method)(address, headers=api.headers)

    assert response.status_code == status
    assert response.json() == {"errors": [{"path": "", "message": message}]}
    if status == 405:
        assert response["Allow"] == "POST"


def test_pages_outside_the_api_keep_their_own_error_pages(client):
    response = client.get("/nope")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
