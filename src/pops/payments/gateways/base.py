"""The gateway contract: plain frozen dataclasses in and out, and one typed error family.

An adapter speaks to one outside gateway (the Sandbox, NMI, ...). It never touches POPS models,
never writes to POPS tables and never decides anything about receipts, balances or batches: it
turns a request into the gateway's answer, or into one of the errors below.

How POPS calls an adapter (the payment service relies on all of this):

- Outside any POPS database transaction. A gateway call is a foreign call: POPS records the
  attempt and commits first, calls the gateway, then writes the outcome in a new transaction.
- Every charge carries a server-issued `merchant_reference` (the attempt's idempotency key).
  Charging the same reference again never charges twice: the gateway answers with the first
  transaction (an approval comes back with `duplicate=True`, a decline is raised again).
- `GatewayUnavailable` with `charge_may_have_happened=True` means the outcome is unknown.
  The attempt becomes `unknown` and is settled only by `query_by_reference`; never treat it as a
  decline and never charge again under a new reference.
- `Declined` is final for that reference; its `message` may be shown to the patient.
- `InvalidRequest` and `GatewayMisconfigured` are for staff and logs, never retried as such.

Money is integer cents (USD). Instants are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import abc
import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

REFERENCE_MAX_LENGTH = 100


class WalletKind(enum.StrEnum):
    APPLE_PAY = "apple_pay"
    GOOGLE_PAY = "google_pay"

    @property
    def label(self) -> str:
        return "Apple Pay" if self == WalletKind.APPLE_PAY else "Google Pay"


class TransactionStatus(enum.StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    VOIDED = "voided"


class DeclineCode(enum.StrEnum):
    """Stable codes for declines; each has a message the patient may read."""

    DECLINED = "declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    INCORRECT_CVV = "incorrect_cvv"
    PROCESSING_ERROR = "processing_error"
    NOT_A_TEST_CARD = "not_a_test_card"


DECLINE_MESSAGES: Mapping[DeclineCode, str] = {
    DeclineCode.DECLINED: "Your card was declined. Please use another card.",
    DeclineCode.INSUFFICIENT_FUNDS: "Your card was declined for insufficient funds.",
    DeclineCode.EXPIRED_CARD: "Your card has expired. Please use another card.",
    DeclineCode.INCORRECT_CVV: "The security code (CVV) is incorrect.",
    DeclineCode.PROCESSING_ERROR: "Your card could not be processed. Please try again.",
    DeclineCode.NOT_A_TEST_CARD: "This is not a test card. Use one of the Sandbox test cards.",
}


@dataclass(frozen=True)
class Capabilities:
    """What a gateway can do; POPS hides what it cannot (e.g. no Apple Pay button)."""

    stored_cards: bool = False
    void: bool = False
    refund: bool = False
    partial_refund: bool = False
    apple_pay: bool = False
    google_pay: bool = False
    query_by_reference: bool = False

    def supports_wallet(self, wallet: WalletKind) -> bool:
        return self.apple_pay if wallet == WalletKind.APPLE_PAY else self.google_pay


@dataclass(frozen=True)
class CardInfo:
    """All POPS may know of a card: brand, last 4 and expiry."""

    brand: str
    last4: str
    exp_month: int
    exp_year: int

    def __post_init__(self) -> None:
        if len(self.last4) != 4 or not self.last4.isdigit():
            raise ValueError("last4 must be exactly 4 digits")


@dataclass(frozen=True)
class ClientSetup:
    """What a payment page needs to embed the gateway's card fields and wallet sheets.

    `origin` is the origin the iframes are served from ("" when it is POPS's own origin); the
    parent page accepts postMessage events only from it.
    """

    hosted_fields_url: str
    origin: str = ""
    wallet_sheet_urls: Mapping[WalletKind, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChargeRequest:
    """One charge. Exactly one of `payment_token` and `vault_token` is given.

    `payment_token` is what the browser got from the gateway: a one-time hosted-fields token or,
    with `wallet` set, the wallet's opaque payload, which adapters pass on byte for byte.
    `store_card` asks the gateway to keep the card in its vault for `customer_id` (POPS's id
    of the payer); a vaulted card is charged with `vault_token` and the same `customer_id`.
    """

    merchant_reference: str
    amount_cents: int
    payment_token: str = field(default="", repr=False)
    vault_token: str = field(default="", repr=False)
    wallet: WalletKind | None = None
    store_card: bool = False
    customer_id: str = ""

    def __post_init__(self) -> None:
        if not 0 < len(self.merchant_reference) <= REFERENCE_MAX_LENGTH:
            raise ValueError(f"merchant_reference must be 1-{REFERENCE_MAX_LENGTH} characters")
        _require_positive_cents(self.amount_cents)
        if bool(self.payment_token) == bool(self.vault_token):
            raise ValueError("give exactly one of payment_token and vault_token")
        if self.wallet is not None and not self.payment_token:
            raise ValueError("a wallet charge carries the wallet payload as payment_token")
        if self.vault_token and self.store_card:
            raise ValueError("a vaulted card is already stored")
        if (self.store_card or self.vault_token) and not self.customer_id:
            raise ValueError("stored cards need the customer_id they belong to")


@dataclass(frozen=True)
class ChargeResult:
    """An approved charge. Declines are raised as `Declined`, never returned."""

    transaction_id: str
    merchant_reference: str
    amount_cents: int
    card: CardInfo
    approved_at: dt.datetime
    wallet: WalletKind | None = None
    vault_token: str = ""
    message: str = "Approved"
    duplicate: bool = False


@dataclass(frozen=True)
class QueryResult:
    """What the gateway holds under one merchant reference (the reconciler's answer)."""

    transaction_id: str
    merchant_reference: str
    status: TransactionStatus
    amount_cents: int
    refunded_cents: int
    card: CardInfo
    created_at: dt.datetime
    wallet: WalletKind | None = None
    decline_code: DeclineCode | None = None
    vault_token: str = ""

    @property
    def approved(self) -> bool:
        """True when the charge was approved and not voided (refunds are in refunded_cents)."""
        return self.status == TransactionStatus.APPROVED


@dataclass(frozen=True)
class VoidResult:
    transaction_id: str
    voided_at: dt.datetime


@dataclass(frozen=True)
class RefundRequest:
    """Refund `amount_cents` of a transaction; `merchant_reference` makes a retry safe."""

    transaction_id: str
    amount_cents: int
    merchant_reference: str

    def __post_init__(self) -> None:
        if not 0 < len(self.merchant_reference) <= REFERENCE_MAX_LENGTH:
            raise ValueError(f"merchant_reference must be 1-{REFERENCE_MAX_LENGTH} characters")
        _require_positive_cents(self.amount_cents)


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    transaction_id: str
    amount_cents: int
    refunded_total_cents: int
    refunded_at: dt.datetime
    duplicate: bool = False


def _require_positive_cents(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("amount_cents must be a positive integer")


# --- Errors ---------------------------------------------------------------------------------


class GatewayError(Exception):
    """Base of every error an adapter raises. `retryable` says whether trying later may help."""

    retryable: ClassVar[bool] = False
    code: str = "gateway_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Declined(GatewayError):
    """The gateway refused the card. `message` may be shown to the patient; final for the
    merchant reference. `transaction_id` and `card` are given when the gateway recorded them."""

    def __init__(
        self,
        code: DeclineCode,
        message: str | None = None,
        *,
        transaction_id: str = "",
        card: CardInfo | None = None,
    ):
        super().__init__(message or DECLINE_MESSAGES[code])
        self.code = code
        self.transaction_id = transaction_id
        self.card = card


class GatewayUnavailable(GatewayError):
    """The gateway could not be reached or did not answer in time. Worth retrying later.

    `charge_may_have_happened` is True whenever the request may have reached the gateway (a
    timeout, a 5xx, a reset connection): the outcome is then unknown until queried by reference.
    It is False only when the request certainly never arrived (e.g. connection refused).
    """

    retryable = True
    code = "unavailable"

    def __init__(self, message: str, *, charge_may_have_happened: bool):
        super().__init__(message)
        self.charge_may_have_happened = charge_may_have_happened


class GatewayMisconfigured(GatewayError):
    """Credentials or settings are missing or wrong. For operators; not retryable as such."""

    code = "misconfigured"


class InvalidRequest(GatewayError):
    """The gateway refused the request itself (not the card): an unknown, expired or used token,
    a refund above what is left, a void of a refunded transaction, a reference reused with
    another amount, an unsupported operation. Nothing happened at the gateway."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# --- The adapter base class -----------------------------------------------------------------


class Gateway(abc.ABC):
    """One outside gateway, configured for one merchant account.

    Subclasses set `name` and `capabilities` and implement the methods below. Constructing an
    adapter validates its credentials (raising `GatewayMisconfigured`) but calls nothing.
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, credentials: Mapping[str, Any], config: Mapping[str, Any] | None = None):
        self._credentials = dict(credentials)
        self.config = dict(config or {})

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    @abc.abstractmethod
    def client_setup(self) -> ClientSetup:
        """Where the payment page finds the hosted fields and wallet sheets. Calls nothing."""

    @abc.abstractmethod
    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Take money. Must be idempotent by `request.merchant_reference`.

        Returns only approvals. Raises `Declined` (final; message for the patient),
        `GatewayUnavailable` (unknown outcome when `charge_may_have_happened`), `InvalidRequest`
        or `GatewayMisconfigured` (nothing charged). Must not be called inside a POPS transaction.
        """

    @abc.abstractmethod
    def query_by_reference(self, merchant_reference: str) -> QueryResult | None:
        """What the gateway holds under a merchant reference, or None if it holds nothing.

        Never moves money: this is how the reconciler settles an `unknown` attempt.
        """

    def void(self, transaction_id: str) -> VoidResult:
        """Cancel an approved, unsettled transaction in full. Voiding twice answers the first
        void. Raises `InvalidRequest` when the transaction cannot be voided."""
        raise _unsupported("void")

    def refund(self, request: RefundRequest) -> RefundResult:
        """Give back part or all of an approved transaction. Idempotent by the refund's
        `merchant_reference`; cumulative refunds never exceed the captured amount."""
        raise _unsupported("refund")

    def remove_stored_card(self, vault_token: str) -> None:
        """Delete a card from the gateway's vault. Removing it twice is not an error."""
        raise _unsupported("stored cards")


def _unsupported(what: str) -> InvalidRequest:
    return InvalidRequest("unsupported", f"This gateway does not support {what}.")
