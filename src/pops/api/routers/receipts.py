import datetime as dt

from django.http import HttpRequest
from ninja import Path, Router, Schema

from pops.api.auth import actor_of, practice_of
from pops.api.errors import ApiError
from pops.api.schemas import with_errors
from pops.core import audit
from pops.core.money import format_amount
from pops.ledger.models import ID_LENGTH, Receipt
from pops.payments.services.receipts import Figures, ReceiptContent, receipt_content

router = Router(tags=["receipts"])


class FiguresOut(Schema):
    amount_billed: str
    adjusted_or_pending_insurance: str
    insurance_paid: str
    patient_paid: str
    remaining_balance: str


class VisitLineOut(FiguresOut):
    service_date: dt.date
    service_id: str
    description: str
    patient_paid_this_receipt: str


class VisitOut(Schema):
    facility: str
    provider: str
    patient: str
    lines: list[VisitLineOut]


class ReceiptOut(Schema):
    receipt_number: str
    payment_date: dt.date
    payment_status: str
    type: str
    paid_with: str
    amount: str
    guarantor: str
    account_number: str
    transaction_numbers: list[str]
    refund_of: str | None
    summary: FiguresOut
    visit_details: list[VisitOut]


def _figures(figures: Figures) -> dict[str, str]:
    return {
        "amount_billed": format_amount(figures.billed_cents),
        "adjusted_or_pending_insurance": format_amount(figures.adjusted_or_pending_cents),
        "insurance_paid": format_amount(figures.insurance_paid_cents),
        "patient_paid": format_amount(figures.patient_paid_cents),
        "remaining_balance": format_amount(figures.remaining_cents),
    }


def _out(content: ReceiptContent) -> dict:
    return {
        "receipt_number": content.receipt_number,
        "payment_date": content.payment_date,
        "payment_status": content.payment_status,
        "type": content.type,
        "paid_with": content.paid_with,
        "amount": format_amount(content.amount_cents),
        "guarantor": content.guarantor,
        "account_number": content.account_number,
        "transaction_numbers": list(content.transaction_numbers),
        "refund_of": content.refund_of,
        "summary": _figures(content.summary),
        "visit_details": [
            {
                "facility": visit.facility,
                "provider": visit.provider,
                "patient": visit.patient,
                "lines": [
                    {
                        "service_date": line.service_date,
                        "service_id": line.service_id,
                        "description": line.description,
                        **_figures(line.figures),
                        "patient_paid_this_receipt": format_amount(line.paid_by_receipt_cents),
                    }
                    for line in visit.lines
                ],
            }
            for visit in content.visits
        ],
    }


@router.get(
    "/receipts/{receipt_number}",
    response=with_errors({200: ReceiptOut}, 404),
    summary="A receipt: payment summary and Visit Details",
)
def receipt(request: HttpRequest, receipt_number: str = Path(..., max_length=ID_LENGTH)) -> dict:
    """A receipt as spec §9 shows it: the payment summary, and the lines it was applied to
    grouped by Facility + Provider + Patient, money as decimal strings. Every view is audited."""
    practice = practice_of(request)
    found = (
        Receipt.objects.filter(practice=practice, number=receipt_number)
        .select_related("guarantor", "refund_of")
        .first()
    )
    if found is None:
        raise ApiError(404, f"no receipt {receipt_number!r}", "receipt_number")
    content = receipt_content(found)
    audit.record(
        "payments.receipt.viewed",
        actor=actor_of(request),
        practice=practice,
        resource=("receipt", found.number),
        guarantor_id=found.guarantor.external_id,
        request=request,
    )
    return _out(content)
