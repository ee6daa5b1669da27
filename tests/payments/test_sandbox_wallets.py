"""Apple Pay and Google Pay: the sheets hand back opaque payloads that reach the gateway intact."""

import base64
import json

import pytest

from pops.payments.gateways.base import DeclineCode, Declined, InvalidRequest, WalletKind
from pops.payments.gateways.sandbox.models import Transaction
from tests.payments.conftest import charge_request, wallet_payload

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("wallet", list(WalletKind))
def test_a_wallet_payload_reaches_the_gateway_byte_for_byte(gateway, wallet):
    payload = wallet_payload(wallet)

    result = gateway.charge(charge_request(payload, wallet=wallet))

    assert result.wallet == wallet
    stored = Transaction.objects.get(transaction_id=result.transaction_id)
    assert stored.wallet_payload.encode() == payload.encode()
    assert stored.wallet == wallet


def test_a_wallet_card_can_be_declined(gateway):
    payload = wallet_payload(WalletKind.APPLE_PAY, "insufficient_funds")

    with pytest.raises(Declined) as raised:
        gateway.charge(charge_request(payload, wallet=WalletKind.APPLE_PAY))

    assert raised.value.code == DeclineCode.INSUFFICIENT_FUNDS


def test_a_payload_of_another_wallet_is_refused(gateway):
    payload = wallet_payload(WalletKind.GOOGLE_PAY)

    with pytest.raises(InvalidRequest) as raised:
        gateway.charge(charge_request(payload, wallet=WalletKind.APPLE_PAY))

    assert raised.value.code == "invalid_token"


@pytest.mark.parametrize(
    "payload",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(json.dumps({"wallet": "google_pay"}).encode()).decode(),
        "é",
        "A" * 9000,
    ],
)
def test_a_tampered_payload_is_refused(gateway, payload):
    with pytest.raises(InvalidRequest):
        gateway.charge(charge_request(payload, wallet=WalletKind.GOOGLE_PAY))
    assert Transaction.objects.count() == 0


def test_a_card_token_is_not_a_wallet_payload(gateway):
    with pytest.raises(InvalidRequest):
        gateway.charge(charge_request(wallet=WalletKind.GOOGLE_PAY))


def test_a_wallet_payment_cannot_be_stored(gateway):
    payload = wallet_payload()

    with pytest.raises(InvalidRequest) as raised:
        gateway.charge(
            charge_request(payload, wallet=WalletKind.GOOGLE_PAY, store_card=True, customer_id="g")
        )

    assert raised.value.code == "cannot_store_wallet"


@pytest.mark.parametrize(
    ("slug", "name"), [("google-pay", "Google Pay"), ("apple-pay", "Apple Pay")]
)
def test_the_wallet_sheet_offers_test_cards_without_their_numbers(client, slug, name):
    response = client.get(f"/sandbox-gateway/wallets/{slug}")

    assert response.status_code == 200
    html = response.content.decode()
    assert f"Pay with {name}" in html
    assert "Visa ending 1111" in html
    assert "4111111111111111" not in html
    assert "frame-ancestors 'self'" in response["Content-Security-Policy"]


def test_the_sheet_endpoint_returns_a_payload_the_adapter_accepts(client, gateway):
    response = client.post(
        "/sandbox-gateway/wallets/apple-pay/tokens",
        data={"card": "approved"},
        content_type="application/json",
    )

    assert response.status_code == 200
    payload = response.json()["payload"]
    result = gateway.charge(charge_request(payload, wallet=WalletKind.APPLE_PAY))
    assert result.card.last4 == "1111"


def test_the_sheet_endpoint_refuses_an_unknown_card_choice(client):
    response = client.post(
        "/sandbox-gateway/wallets/google-pay/tokens",
        data={"card": "not-a-card"},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "card"


def test_an_unknown_wallet_is_not_found(client):
    assert client.get("/sandbox-gateway/wallets/samsung-pay").status_code == 404
