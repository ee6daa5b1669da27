import datetime as dt
import re
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from pops.api.auth import practice_of
from pops.api.errors import ApiError
from pops.api.payments_io import ReferenceBatchOut, batch_fields
from pops.api.schemas import with_errors
from pops.core.money import format_amount
from pops.ledger.services.batches import batches_of
from pops.payments.services.receipts import NotProcessed, requested_not_processed

router = Router(tags=["reference batches"])

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> dt.date:
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError("date", "must be a date like 2026-11-26")


IsoDate = Annotated[
    dt.date, BeforeValidator(_iso_date), WithJsonSchema({"type": "string", "format": "date"})
]


class NotProcessedOut(Schema):
    count: int
    amount: str


class BatchTotalsOut(ReferenceBatchOut):
    receipt_count: int
    total: str
    requested_not_processed: NotProcessedOut


class BatchList(Schema):
    items: list[BatchTotalsOut]
    count: int
    requested_not_processed: NotProcessedOut


def _not_processed(figures: NotProcessed) -> dict:
    return {"count": figures.count, "amount": format_amount(figures.amount_cents)}


@router.get(
    "/reference-batches",
    response=with_errors({200: BatchList}),
    summary="A date's reference batches, with Requested, Not Processed",
)
def reference_batches(request: HttpRequest, date: Query[IsoDate]) -> dict:
    """A practice-local date's reference batches, oldest first, with their receipt counts and
    totals (payments less refunds; voided receipts left out). "Requested, Not Processed" counts
    the date's declined POPS payments and the amount asked for: each POPS batch reports those
    made while it was the open one (or, with none open, before it opened), and
    `requested_not_processed` at the top the whole date's, also when every payment of the date
    was declined and no batch was opened."""
    unknown = sorted(set(request.GET) - {"date"})
    if unknown:
        raise ApiError(422, "is not a parameter of this list (it takes `date`)", unknown[0])
    if len(request.GET.getlist("date")) > 1:
        raise ApiError(422, "give one date", "date")
    practice = practice_of(request)
    batches = batches_of(practice, date)
    total, shares = requested_not_processed(practice, date, (b.batch for b in batches))
    items = [
        {
            **batch_fields(b.batch),
            "receipt_count": b.receipts,
            "total": format_amount(b.total_cents),
            "requested_not_processed": _not_processed(shares.get(b.batch.pk, NotProcessed())),
        }
        for b in batches
    ]
    return {"items": items, "count": len(items), "requested_not_processed": _not_processed(total)}
