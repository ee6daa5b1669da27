"""The edge of `POST /api/v1/payments`: the request's key and body into a `PaymentRequest`, and a
payment attempt into the answer. The payment itself is `pops.payments.services.attempts.pay`.

The fingerprint an `Idempotency-Key` is bound to is the SHA-256 of the canonical JSON of the
parsed body (defaults filled in, the amount in cents), so `"10.0"` and `"10.00"`, or a missing
and a null `group`, are the same request, and anything else is another one.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from django.http import HttpRequest
from ninja import Schema
from ninja.errors import ValidationError as RequestInvalid
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from pops.api import idempotency
from pops.api.errors import ApiError
from pops.api.lookups import group_of, guarantor_of
from pops.core import json_body
from pops.core.audit import Actor
from pops.core.money import AMOUNT_HINT, AmountError, format_amount, parse_amount
from pops.ledger.importing.schema import plain_text
from pops.ledger.models import ID_LENGTH, Practice, ReferenceBatch
from pops.payments.gateways.base import WalletKind
from pops.payments.models import PaymentAttempt
from pops.payments.services import attempts
from pops.payments.services.attempts import PaymentRequest
from pops.payments.services.errors import (
    InProgress,
    KeyReused,
    PaymentRefused,
    PaymentsUnavailable,
)
from pops.payments.services.receipts import transaction_numbers
from pops.payments.services.stored_cards import find_card, is_card_id

BODY_MAX_BYTES = 64 * 1024
M = TypeVar("M", bound=BaseModel)
TOKEN_MAX_LENGTH = 8192  # a wallet's opaque payload is the longest token a gateway hands out
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Status = PaymentAttempt.Status

# --- The request --------------------------------------------------------------------------------


def _amount(value: Any) -> int:
    negative = isinstance(value, str) and value.startswith("-")
    try:
        cents = parse_amount(value[1:] if negative else value)
    except AmountError:
        raise PydanticCustomError("amount", f"must be {AMOUNT_HINT}") from None
    if negative or cents <= 0:  # "-5.00" reads as an amount, just not one that can be paid
        raise PydanticCustomError("amount", "must be more than 0.00")
    return cents


def _stored_card(value: Any) -> Any:
    """A stored card's id: a string of digits, or the same as a JSON integer."""
    if isinstance(value, bool) or not isinstance(value, int | str | None):
        raise PydanticCustomError("id", 'must be a stored card id, like "12"')
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and not is_card_id(value):
        raise PydanticCustomError("id", 'must be a stored card id, like "12"')
    return value


def _blank_if_null(value: Any) -> Any:
    return "" if value is None else value


Amount = Annotated[
    int,
    BeforeValidator(_amount),
    WithJsonSchema(
        {
            "type": "string",
            "example": "10.00",
            "description": 'a decimal string over 0 with at most two decimals, like "10.00"',
        }
    ),
]
GuarantorId = Annotated[str, Field(min_length=1, max_length=ID_LENGTH)]
StoredCardId = Annotated[
    str | None,
    BeforeValidator(_stored_card),
    WithJsonSchema({"type": ["string", "integer", "null"]}),
]
Email = Annotated[
    str,
    BeforeValidator(_blank_if_null),
    Field(max_length=254),
    WithJsonSchema({"type": ["string", "null"], "maxLength": 254}),
]


class PaymentIn(BaseModel):
    """`POST /api/v1/payments`. Exactly one of `payment_token` (a one-time hosted-fields token,
    or with `wallet` a wallet's payload) and `stored_card` is given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    guarantor: GuarantorId
    amount: Amount
    payment_token: str | None = Field(default=None, max_length=TOKEN_MAX_LENGTH)
    group: str | None = Field(default=None, max_length=50)
    email: Email = ""
    wallet: Literal["apple_pay", "google_pay"] | None = None
    stored_card: StoredCardId = None
    store_card: StrictBool = False

    @field_validator("*", mode="after")
    @classmethod
    def storable_text(cls, value: Any) -> Any:
        return plain_text(value)

    @field_validator("email")
    @classmethod
    def plausible_email(cls, value: str) -> str:
        if value and not _EMAIL.match(value):
            raise PydanticCustomError("email", "must be an email address, like pat@example.com")
        return value

    @property
    def fingerprint(self) -> str:
        return idempotency.fingerprint("api:payments", self.model_dump(mode="json"))


def read_json(request: HttpRequest, model: type[M], max_bytes: int = BODY_MAX_BYTES) -> M:
    """The JSON body as `model`: 400 when it is too large (refused before it is read when its
    Content-Length says so) or not JSON, 422 naming each bad field by its name in the body.
    Read here rather than by a view parameter, so nothing but the field's name is in a path."""
    too_large = ApiError(400, f"the body is over {max_bytes} bytes")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError(400, "must be a number of bytes", "Content-Length") from None
    if length > max_bytes:
        raise too_large  # refused before it is read
    body = request.body
    if len(body) > max_bytes:
        raise too_large
    try:
        data = json_body.parse(body)
    except json_body.NotJson:
        raise ApiError(400, "send a JSON object") from None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise RequestInvalid(
            [{"loc": p["loc"], "msg": p["msg"]} for p in error.errors(include_input=False)]
        ) from None


def read_payment(request: HttpRequest) -> PaymentIn:
    """The body as a `PaymentIn`: 400 when it is not JSON, 422 naming each bad field."""
    payment = read_json(request, PaymentIn)
    if payment.stored_card is not None and payment.wallet is not None:
        raise ApiError(
            422, "a stored card is not a wallet payment: send one or the other", "wallet"
        )
    if payment.stored_card is not None and payment.store_card:
        raise ApiError(422, "that card is stored already", "store_card")
    return payment


def earlier_attempt(practice: Practice, key: str, fingerprint: str) -> PaymentAttempt | None:
    """The attempt already made with this key, if any. Looked up before the body is checked
    against the ledger, so a retry gets the first answer even if, say, the stored card it paid
    with was removed since. Raises KeyReused (another body) or InProgress."""
    return attempts.earlier_attempt(
        practice.pk, key, fingerprint, related=("receipt__reference_batch__user",)
    )


def payment_request(
    practice: Practice, actor: Actor, key: str, payment: PaymentIn
) -> PaymentRequest:
    """The service's request: 404 for a guarantor the practice does not have, 422 for a Group or
    stored card it does not have. Nothing is written, so the key is not used up."""
    guarantor = guarantor_of(practice, payment.guarantor, "guarantor")
    group = group_of(practice, payment.group) if payment.group else None
    stored_card = None
    if payment.stored_card is not None:
        stored_card = find_card(guarantor, payment.stored_card)
        if stored_card is None:
            raise ApiError(422, "That stored card is not available.", "stored_card")
    return PaymentRequest(
        guarantor=guarantor,
        amount_cents=payment.amount,
        idempotency_key=key,
        fingerprint=payment.fingerprint,
        actor=actor,
        group=group,
        payment_token=payment.payment_token or "",
        stored_card=stored_card,
        wallet=WalletKind(payment.wallet) if payment.wallet else None,
        store_card=payment.store_card,
        email=payment.email,
        source="api",
    )


# --- The answer ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


PENDING = Answer(202, {"status": "Pending", "receipt_number": None})


class ReferenceBatchOut(Schema):
    """A reference batch as every answer shows it (a payment's, a refund's, the batch list's)."""

    id: str
    date: dt.date
    description: str
    user: str | None
    status: str


def batch_out(batch: ReferenceBatch | None) -> dict[str, Any] | None:
    """The batch as JSON values (answers are stored for replays as they are sent)."""
    return None if batch is None else batch_fields(batch)


def batch_fields(batch: ReferenceBatch) -> dict[str, Any]:
    return {
        "id": str(batch.pk),
        "date": batch.date.isoformat(),
        "description": batch.description,
        "user": str(batch.user) if batch.user else None,
        "status": batch.get_status_display(),
    }


def answer(attempt: PaymentAttempt) -> Answer:
    """What a payment answers, first time and every replay: the attempt's outcome (a receipt
    voided later still answers as the payment it was; its batch with its current status).
    An attempt still `unknown` answers Pending, never failed."""
    receipt = attempt.receipt
    if attempt.status not in (Status.SUCCEEDED, Status.DECLINED) or receipt is None:
        return PENDING
    if attempt.status == Status.DECLINED:
        return Answer(
            201,
            {
                "receipt_number": receipt.number,
                "status": "Unsuccessful",
                "amount": format_amount(0),
                "transaction_numbers": [],
                "reference_batch": None,
                "message": attempt.decline_message or "The payment was declined.",
            },
        )
    numbers = list(transaction_numbers(receipt))
    return Answer(
        201,
        {
            "receipt_number": receipt.number,
            "status": "Paid",
            "amount": format_amount(attempt.amount_cents),
            "transaction_numbers": numbers,
            "reference_batch": batch_out(receipt.reference_batch),
            "message": None,
        },
    )


# The payment services' refusals, as every money endpoint answers them.
SERVICE_ERRORS = (PaymentRefused, KeyReused, InProgress, PaymentsUnavailable)


def api_error(error: Exception, *, unavailable: str = "") -> ApiError:
    """One of SERVICE_ERRORS as an API error: 422 naming the field, 409 while the first
    request with the key is still running, 503 (with `unavailable`, else the service's own
    words) when the gateway or the practice's account cannot take it now."""
    if isinstance(error, PaymentRefused):
        path = "receipt_number" if error.path == "receipt" else error.path
        return ApiError(422, error.message, path)
    if isinstance(error, KeyReused):
        return ApiError(
            422, "this Idempotency-Key was used with another request", idempotency.HEADER
        )
    if isinstance(error, InProgress):
        return ApiError(
            409, "the first request with this Idempotency-Key is still running", idempotency.HEADER
        )
    return ApiError(503, unavailable or str(error))
