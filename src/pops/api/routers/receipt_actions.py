"""Voiding and refunding a POPS payment receipt: writes that move money, so both take an
`Idempotency-Key` (see `pops.api.idempotency`)."""

import datetime as dt
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    field_validator,
)

from pops.api import idempotency
from pops.api.auth import actor_of, practice_of
from pops.api.errors import ApiError
from pops.api.openapi import inline_schema
from pops.api.payments_io import (
    SERVICE_ERRORS,
    Amount,
    ReferenceBatchOut,
    api_error,
    batch_out,
    read_json,
)
from pops.api.schemas import with_errors
from pops.core.money import format_amount
from pops.ledger.importing.schema import plain_text
from pops.ledger.models import Receipt
from pops.payments.services.receipts import transaction_numbers
from pops.payments.services.refunds import refund_receipt
from pops.payments.services.voids import REASON_MAX_LENGTH, void_receipt

router = Router(tags=["receipts"])

KEY_PARAMETER = {
    "in": "header",
    "name": idempotency.HEADER,
    "required": True,
    "description": (
        "One key per void or refund (a UUID is a good key), at most 255 characters; 400 "
        "without it. The same key and request again answers the first answer; the same key "
        "with another request answers 422; while the first is still being processed, 409."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.KEY_MAX_LENGTH},
}
ERRORS = (404, 409, 503)
BODY_MAX_BYTES = 16 * 1024


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class VoidIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: Annotated[
        str,
        BeforeValidator(_strip),
        StringConstraints(min_length=1, max_length=REASON_MAX_LENGTH),
    ]

    @field_validator("reason", mode="after")
    @classmethod
    def storable(cls, value: str) -> str:
        return plain_text(value)


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: Amount


class VoidOut(Schema):
    receipt_number: str
    status: str
    amount: str
    voided_at: dt.datetime | None
    void_reason: str
    transaction_numbers: list[str]


class RefundOut(Schema):
    receipt_number: str
    status: str
    amount: str
    date: dt.date
    refund_of: str
    transaction_numbers: list[str]
    reference_batch: ReferenceBatchOut | None


def _extra(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "parameters": [KEY_PARAMETER],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(model)}},
        },
    }


def _receipt(request: HttpRequest, number: str) -> Receipt:
    receipt = Receipt.objects.filter(practice=practice_of(request), number=number).first()
    if receipt is None:
        raise ApiError(404, f"no receipt {number!r}", "receipt_number")
    return receipt


def _service_errors(work: idempotency.Work) -> idempotency.Work:
    """The services' refusals as API errors."""

    def run() -> tuple[int, Any]:
        try:
            return work()
        except SERVICE_ERRORS as error:
            raise api_error(error) from None

    return run


@router.post(
    "/receipts/{receipt_number}/void",
    response=with_errors({200: VoidOut}, *ERRORS),
    openapi_extra=_extra(VoidIn),
    summary="Void a POPS payment on the day it was made",
)
def void(
    request: HttpRequest,
    receipt_number: str,
) -> Status:
    """Voids a paid POPS payment on its own practice-local date: the card processor cancels
    every transaction of it, the receipt is kept as Voided (shown as deleted) and its postings
    are reversed. Answers the voided receipt with the transactions voided. From the next day on
    it is refunded instead (422); a refund receipt, an Unsuccessful receipt or one voided
    already answers 422 too, with nothing changed. 404 for a receipt this practice does not
    have; 503 when the card processor did not confirm the void: try again (voiding twice is
    safe), even on a later day, to finish it."""
    idempotency.key_of(request)
    body = read_json(request, VoidIn, BODY_MAX_BYTES)

    def work() -> tuple[int, Any]:
        receipt = _receipt(request, receipt_number)
        voided = void_receipt(receipt, reason=body.reason, actor=actor_of(request))
        return 200, {
            "receipt_number": voided.number,
            "status": voided.get_status_display(),
            "amount": format_amount(voided.amount_cents),
            "voided_at": voided.voided_at.isoformat() if voided.voided_at else None,
            "void_reason": voided.void_reason,
            "transaction_numbers": list(transaction_numbers(voided)),
        }

    payload = {"receipt": receipt_number, "body": body.model_dump()}
    status, answer = idempotency.run(request, "api:receipts.void", payload, _service_errors(work))
    return Status(status, answer)


@router.post(
    "/receipts/{receipt_number}/refunds",
    response=with_errors({201: RefundOut}, *ERRORS),
    openapi_extra=_extra(RefundIn),
    summary="Refund all or part of a POPS payment, from the day after it was made",
)
def refund(
    request: HttpRequest,
    receipt_number: str,
) -> Status:
    """Refunds `amount` of a paid POPS payment through the card processor, from the day after
    the payment on (on its own day it is voided instead: 422). Answers 201 with the Patient
    Refund receipt, which sits in the POPS reference batch of the refund's date, and the card
    processor's refund transaction number(s) (one per transaction of a split payment that gives
    money back). Refunds of a
    payment never add up to more than was paid: a larger amount answers 422 saying what is left,
    with nothing refunded. 503 when the card processor did not confirm the refund: retry with the
    same Idempotency-Key to finish it (it is never refunded twice)."""
    key = idempotency.key_of(request)
    body = read_json(request, RefundIn, BODY_MAX_BYTES)

    def work() -> tuple[int, Any]:
        receipt = _receipt(request, receipt_number)
        made = refund_receipt(receipt, body.amount, actor=actor_of(request), idempotency_key=key)
        return 201, {
            "receipt_number": made.number,
            "status": made.get_status_display(),
            "amount": format_amount(made.amount_cents),
            "date": made.date.isoformat(),
            "refund_of": receipt.number,
            "transaction_numbers": list(transaction_numbers(made)),
            "reference_batch": batch_out(made.reference_batch),
        }

    payload = {"receipt": receipt_number, "body": body.model_dump()}
    status, answer = idempotency.run(request, "api:receipts.refund", payload, _service_errors(work))
    return Status(status, answer)
