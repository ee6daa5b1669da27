from typing import Literal

from django.http import HttpRequest
from ninja import Router, Schema, Status

from pops.api import idempotency
from pops.api import payments_io as io
from pops.api.auth import actor_of, practice_of
from pops.api.openapi import inline_schema
from pops.api.schemas import with_errors
from pops.payments.services.attempts import pay

router = Router(tags=["payments"])


UNAVAILABLE = "payments cannot be taken right now and nothing was charged; try again later"


class PaymentOut(Schema):
    receipt_number: str
    status: Literal["Paid", "Unsuccessful"]
    amount: str
    transaction_numbers: list[str]
    reference_batch: io.ReferenceBatchOut | None
    message: str | None


class PendingOut(Schema):
    status: Literal["Pending"]
    receipt_number: None


_KEY_PARAMETER = {
    "in": "header",
    "name": idempotency.HEADER,
    "required": True,
    "description": (
        "One key per payment (a UUID is a good key), at most 255 characters. The same key and "
        "body again answers the first answer; the same key with another body answers 422."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.KEY_MAX_LENGTH},
}


@router.post(
    "/payments",
    response=with_errors({201: PaymentOut, 202: PendingOut}, 404, 409, 503),
    openapi_extra={
        "parameters": [_KEY_PARAMETER],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(io.PaymentIn)}},
        },
    },
    summary="Take a payment, exactly once per Idempotency-Key",
)
def create_payment(request: HttpRequest) -> Status:
    """Charges `payment_token` (from the gateway's hosted fields or a wallet sheet) or a
    `stored_card`, and answers the receipt: 201 Paid, or 201 Unsuccessful with a `message` the
    patient may read (amount "0.00"). When the gateway's answer never came the outcome is not
    known yet: 202 Pending, and the same request again later answers the settled receipt.
    A request refused with 404 or 422 charged nothing and did not use up its key; 409 means
    the first request with this key is still running; 503 means payments cannot be taken now
    and nothing was charged."""
    key = idempotency.key_of(request)
    payment = io.read_payment(request)
    practice = practice_of(request)
    try:
        attempt = io.earlier_attempt(practice, key, payment.fingerprint)
        if attempt is None:
            attempt = pay(io.payment_request(practice, actor_of(request), key, payment))
    except io.SERVICE_ERRORS as error:
        raise io.api_error(error, unavailable=UNAVAILABLE) from None
    result = io.answer(attempt)
    return Status(result.status, result.body)
