"""The gateway contract's own rules: what a request may hold and what an adapter must offer."""

import pytest

from pops.payments.gateways.base import (
    DECLINE_MESSAGES,
    Capabilities,
    CardInfo,
    ChargeRequest,
    ClientSetup,
    DeclineCode,
    Declined,
    Gateway,
    GatewayError,
    GatewayMisconfigured,
    GatewayUnavailable,
    InvalidRequest,
    RefundRequest,
    WalletKind,
)


class Minimal(Gateway):
    name = "minimal"
    capabilities = Capabilities()

    def client_setup(self):
        return ClientSetup(hosted_fields_url="/x")

    def charge(self, request):
        raise NotImplementedError

    def query_by_reference(self, merchant_reference):
        return None


@pytest.mark.parametrize(
    "fields",
    [
        {"merchant_reference": "", "amount_cents": 100, "payment_token": "t"},
        {"merchant_reference": "r" * 101, "amount_cents": 100, "payment_token": "t"},
        {"merchant_reference": "r", "amount_cents": 0, "payment_token": "t"},
        {"merchant_reference": "r", "amount_cents": -5, "payment_token": "t"},
        {"merchant_reference": "r", "amount_cents": True, "payment_token": "t"},
        {"merchant_reference": "r", "amount_cents": 1.5, "payment_token": "t"},
        {"merchant_reference": "r", "amount_cents": 100},
        {"merchant_reference": "r", "amount_cents": 100, "payment_token": "t", "vault_token": "v"},
        {"merchant_reference": "r", "amount_cents": 100, "vault_token": "v"},
        {"merchant_reference": "r", "amount_cents": 100, "payment_token": "t", "store_card": True},
        {
            "merchant_reference": "r",
            "amount_cents": 100,
            "wallet": WalletKind.APPLE_PAY,
            "vault_token": "v",
            "customer_id": "c",
        },
    ],
)
def test_a_malformed_charge_request_is_refused_before_any_call(fields):
    with pytest.raises(ValueError):  # noqa: PT011
        ChargeRequest(**fields)


def test_tokens_and_wallet_payloads_never_show_in_a_request_repr():
    request = ChargeRequest(
        merchant_reference="r", amount_cents=100, payment_token="secret-wallet-payload"
    )
    assert "secret-wallet-payload" not in repr(request)


def test_requests_are_frozen():
    request = ChargeRequest(merchant_reference="r", amount_cents=100, payment_token="t")
    with pytest.raises(AttributeError):
        request.amount_cents = 1  # type: ignore[misc]


def test_refund_requests_need_a_positive_amount_and_a_reference():
    with pytest.raises(ValueError):  # noqa: PT011
        RefundRequest(transaction_id="t", amount_cents=0, merchant_reference="r")
    with pytest.raises(ValueError):  # noqa: PT011
        RefundRequest(transaction_id="t", amount_cents=1, merchant_reference="")


def test_last4_is_exactly_four_digits():
    with pytest.raises(ValueError):  # noqa: PT011
        CardInfo(brand="Visa", last4="41111", exp_month=1, exp_year=2030)


def test_every_decline_code_has_a_patient_message():
    assert set(DECLINE_MESSAGES) == set(DeclineCode)
    assert (
        Declined(DeclineCode.INSUFFICIENT_FUNDS).message
        == DECLINE_MESSAGES[DeclineCode.INSUFFICIENT_FUNDS]
    )


def test_one_error_family_says_what_is_worth_retrying():
    assert issubclass(Declined, GatewayError)
    assert GatewayUnavailable("x", charge_may_have_happened=True).retryable
    assert not Declined(DeclineCode.DECLINED).retryable
    assert not GatewayMisconfigured("x").retryable
    assert not InvalidRequest("c", "m").retryable


def test_optional_operations_are_refused_when_a_gateway_lacks_them():
    gateway = Minimal({"key": "very-secret"})
    with pytest.raises(InvalidRequest, match="void"):
        gateway.void("t")
    with pytest.raises(InvalidRequest, match="refund"):
        gateway.refund(RefundRequest(transaction_id="t", amount_cents=1, merchant_reference="r"))
    with pytest.raises(InvalidRequest, match="stored cards"):
        gateway.remove_stored_card("v")
    assert "very-secret" not in repr(gateway)


def test_capabilities_answer_per_wallet():
    capabilities = Capabilities(apple_pay=False, google_pay=True)
    assert capabilities.supports_wallet(WalletKind.GOOGLE_PAY)
    assert not capabilities.supports_wallet(WalletKind.APPLE_PAY)
