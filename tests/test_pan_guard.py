"""S-2: every endpoint refuses a card number in a query string or body (400, never logged, an
audit security event), except the gateway's own tokenization endpoint."""

import json
import logging
import time

import pytest
from django.test import override_settings

from pops.core.card_numbers import ScanGaveUp, holds_card_number, luhn_valid
from pops.core.models import AuditEvent
from pops.payments.gateways.sandbox import cards
from pops.payments.models import PaymentAttempt
from tests.conftest import run_import
from tests.test_import_documents import small_document

# The standard gateway test card numbers: the Sandbox's own, and those of the card networks.
TEST_PANS = [card.number for card in cards.TEST_CARDS] + [
    "4242424242424242",  # Visa
    "4222222222222",  # Visa, 13 digits
    "4111111111111111110",  # Visa, 19 digits
    "5555555555554444",  # Mastercard
    "2223003122003222",  # Mastercard 2-series
    "378282246310005",  # American Express
    "371449635398431",  # American Express
    "6011111111111117",  # Discover
    "6011000990139424",  # Discover
    "30569309025904",  # Diners Club, 14 digits
    "3530111333300000",  # JCB
    "6200000000000005",  # UnionPay
]
FORMATS = {
    "plain": lambda pan: pan,
    "spaces": lambda pan: " ".join(pan[i : i + 4] for i in range(0, len(pan), 4)),
    "dashes": lambda pan: "-".join(pan[i : i + 4] for i in range(0, len(pan), 4)),
}
CARD = "4111111111111111"


def audit_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="security.card_number_refused"))


@pytest.fixture
def api(api_for, db):
    return api_for(run_import(small_document()).practice)


# --- What counts as a card number ----------------------------------------------------------------


@pytest.mark.parametrize("pan", TEST_PANS)
@pytest.mark.parametrize("style", FORMATS)
def test_every_standard_test_card_number_is_found_in_any_format(pan, style):
    assert luhn_valid(pan.encode())
    assert holds_card_number(f'{{"note": "paid with {FORMATS[style](pan)} thanks"}}'.encode())


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1111 12/28",  # followed by the expiry
        "card 1 4111-1111-1111-1111 123",  # between other numbers
        "3782 822463 10005",  # American Express grouping
        "x4111111111111111y",
        "-4111111111111111-",
    ],
)
def test_a_card_number_among_other_digits_is_found(text):
    assert holds_card_number(text.encode())


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # fails the Luhn check
        "411111111116",  # 12 digits, Luhn-valid
        "12345678901234567890",  # an unbroken 20-digit id
        "41111111111111111111111",  # a longer id that starts like a card number
        "4111  1111  1111  1111",  # groups apart by two spaces are separate numbers
        "4111.1111.1111.1111",
        '{"billed": "150.00", "service_date": "2026-09-01", "mobile": "+1 555 201 0104"}',
        '{"npi": "1234567893", "ids": [4111, 1111, 1111, 1111]}',
    ],
)
def test_what_is_not_a_card_number_passes(text):
    assert not holds_card_number(text.encode())


def test_a_body_built_to_be_slow_is_given_up_on_quickly():
    started = time.perf_counter()
    with pytest.raises(ScanGaveUp):
        holds_card_number(b"1 " * 2_000_000)
    assert time.perf_counter() - started < 2


def test_a_large_import_document_is_scanned_quickly():
    document = small_document()
    document["encounters"] = document["encounters"] * 20_000  # about 5 MB
    body = json.dumps(document).encode()
    started = time.perf_counter()
    assert not holds_card_number(body)
    assert time.perf_counter() - started < 2


# --- The middleware ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("pan", TEST_PANS)
def test_a_card_number_in_an_api_body_is_refused_with_400_and_nothing_happens(api, pan):
    response = api.client.post(
        "/api/v1/payments",
        data=json.dumps({"guarantor": "2010", "amount": "10.00", "card_number": pan}),
        content_type="application/json",
        headers={**api.headers, "Idempotency-Key": "k"},
    )

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "path": "",
                "message": "Card numbers may not be sent to POPS. Enter card details only in "
                "the payment page's secure card fields.",
            }
        ]
    }
    assert not PaymentAttempt.objects.exists()
    [event] = audit_events()
    assert event.outcome == "denied"
    assert event.data["where"] == "body"
    assert pan not in json.dumps(event.data) + event.user_agent + event.resource_id


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "group=4111111111111111",
        "group=4111+1111+1111+1111",
        "group=4111%201111%201111%201111",
        "group=4111-1111-1111-1111",
        "q=5555555555554444&group=x",
    ],
)
def test_a_card_number_in_a_query_string_is_refused(api, query):
    response = api.get(f"/api/v1/guarantors/2010/balances?{query}")

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("Card numbers may not be sent")
    assert [e.data["where"] for e in audit_events()] == ["query"]
    assert not AuditEvent.objects.filter(action="ledger.balances.viewed").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "written",
    [
        "\\u0034111111111111111@example.com",  # one digit escaped
        "".join(f"\\u{ord(digit):04x}" for digit in CARD),  # every digit, lower case
        "4111\\u00201111\\u002D1111 1111",  # the separators escaped
    ],
)
@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_card_number_written_with_json_escapes_is_refused_too(api, written, content_type):
    raw = f'{{"guarantor": "2010", "amount": "10.00", "email": "{written}"}}'.encode()
    assert CARD in json.loads(raw)["email"].replace(" ", "").replace("-", "")  # what a view reads

    response = api.client.post(
        "/api/v1/payments",
        data=raw,
        content_type=content_type,  # (the API reads the body as JSON whatever this says)
        headers={**api.headers, "Idempotency-Key": "k"},
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("Card numbers may not be sent")
    assert [e.data["where"] for e in audit_events()] == ["body"]
    assert not PaymentAttempt.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_body_in_another_unicode_encoding_is_not_read_as_json(api, encoding):
    # json.loads would read these, and the guard sees no run of digits in them.
    raw = f'{{"guarantor": "2010", "amount": "10.00", "email": "{CARD}@example.com"}}'
    response = api.client.post(
        "/api/v1/payments",
        data=raw.encode(encoding),
        content_type="application/json",
        headers={**api.headers, "Idempotency-Key": "k"},
    )

    assert response.status_code == 400
    assert response.json() == {"errors": [{"path": "", "message": "send a JSON object"}]}
    assert not PaymentAttempt.objects.exists()


@pytest.mark.django_db
def test_escaped_letters_and_short_numbers_pass(api):
    raw = b'{"guarantor": "\\u0032010", "note": "caf\\u00e9 \\u0031\\u0032"}'
    response = api.client.post(
        "/api/v1/payments", data=raw, content_type="application/json", headers=api.headers
    )
    assert response.status_code == 400  # on to the view, which wants an Idempotency-Key
    assert response.json()["errors"][0]["path"] == "Idempotency-Key"
    assert not audit_events()


@pytest.mark.django_db
def test_a_page_refuses_a_card_number_in_a_form_in_plain_text(client):
    response = client.post("/", data={"card": "4111 1111 1111 1111", "exp": "12/30"})

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert b"Card numbers may not be sent to POPS" in response.content
    assert [e.data["where"] for e in audit_events()] == ["body"]


@pytest.mark.django_db
def test_a_raw_or_multipart_body_is_looked_at_too(client):
    raw = client.post("/health", data=f"card {CARD}", content_type="text/plain")
    multipart = client.post("/health", data={"note": f"card {CARD} exp 12/30"})

    assert raw.status_code == multipart.status_code == 400
    assert len(audit_events()) == 2


@pytest.mark.django_db
def test_the_card_number_is_never_logged(api, caplog):
    caplog.set_level(logging.DEBUG)
    api.client.post(
        "/api/v1/payments?note=5555555555554444",
        data=json.dumps({"card_number": CARD}),
        content_type="application/json",
        headers=api.headers,
    )
    api.post("/api/v1/import", {"practice": {"id": "p1", "name": f"x {CARD}"}})

    assert "card number" in caplog.text
    for pan in (CARD, "5555555555554444"):
        assert pan not in caplog.text
    for event in AuditEvent.objects.all():
        assert CARD not in json.dumps(event.data)


@pytest.mark.django_db
def test_an_import_with_long_ids_that_are_not_card_numbers_goes_through(api):
    document = small_document()
    document["guarantors"][0]["mobile"] = "+1 555 201 0104"
    document["providers"][0]["id"] = "12345678901234567890"
    document["encounters"][0]["provider"] = "12345678901234567890"

    response = api.post("/api/v1/import", document)

    assert response.status_code == 200, response.json()
    assert audit_events() == []


@pytest.mark.django_db
def test_a_luhn_valid_16_digit_id_is_refused_too_the_documented_trade_off(api):
    document = small_document()
    document["providers"][0]["id"] = "4000056655665556"

    assert api.post("/api/v1/import", document).status_code == 400


@pytest.mark.django_db
def test_the_gateways_tokenization_endpoint_is_exempt(client):
    response = client.post(
        "/sandbox-gateway/tokens",
        data={"card_number": CARD, "exp": "12/40", "cvv": "123"},
        content_type="application/json",
    )

    assert response.status_code == 200
    assert response.json()["token"].startswith("tok_")
    assert audit_events() == []


@pytest.mark.django_db
@override_settings(PAN_GUARD_EXEMPT_PATHS=())
def test_the_exemption_is_a_setting(client):
    response = client.post(
        "/sandbox-gateway/tokens",
        data={"card_number": CARD, "exp": "12/40", "cvv": "123"},
        content_type="application/json",
    )
    assert response.status_code == 400


@pytest.mark.django_db
def test_other_gateway_paths_are_not_exempt(client):
    response = client.post(
        "/sandbox-gateway/wallets/google-pay/tokens",
        data={"card": CARD},
        content_type="application/json",
    )
    assert response.status_code == 400


@pytest.mark.django_db
@override_settings(PAN_GUARD_MAX_BODY_BYTES=64)
def test_a_body_over_the_size_limit_is_left_to_the_view(api):
    response = api.client.post(
        "/api/v1/payments",
        data=json.dumps({"note": CARD, "padding": "x" * 100}),
        content_type="application/json",
        headers={**api.headers, "Idempotency-Key": "k"},
    )

    assert response.status_code == 422  # the view's own answer: no such fields
    assert audit_events() == []


@pytest.mark.django_db
def test_a_card_number_in_the_path_is_withheld_from_the_record(api, caplog):
    caplog.set_level(logging.DEBUG)
    response = api.get(f"/api/v1/guarantors/{CARD}/balances?q={CARD}")

    assert response.status_code == 400
    [event] = audit_events()
    assert event.data["path"] == "(withheld)"
    assert CARD not in caplog.text
