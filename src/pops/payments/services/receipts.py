"""What a receipt shows (spec §9), and the Unsuccessful receipts a day's batches report.

`receipt_content` reads a fixed handful of queries whatever the number of lines: the receipt's
lines come from its application entries in the ledger (so a voided receipt still lists what it
was paid toward), the amounts it has on each line now from its applications. A Patient Refund
receipt lists the lines of the payment it gives money back from, and as its Transaction Numbers
the card processor's refund transactions (`RefundPart`), as a payment lists its charges
(`PaymentPart`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import F

from pops.core import rows
from pops.ledger.models import (
    Application,
    LedgerEntry,
    Practice,
    Receipt,
    ReferenceBatch,
    ServiceLine,
)
from pops.payments.models import PaymentAttempt, RefundPart

WALLETS = (PaymentAttempt.Method.APPLE_PAY.label, PaymentAttempt.Method.GOOGLE_PAY.label)


@dataclass(frozen=True)
class Figures:
    """Money on a set of lines, in cents. `patient_paid_cents` is every patient payment applied
    to them, so billed - adjusted or pending - insurance paid - patient paid = remaining
    (each line's remaining never below 0)."""

    billed_cents: int = 0
    adjusted_or_pending_cents: int = 0
    insurance_paid_cents: int = 0
    patient_paid_cents: int = 0
    remaining_cents: int = 0

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.billed_cents + other.billed_cents,
            self.adjusted_or_pending_cents + other.adjusted_or_pending_cents,
            self.insurance_paid_cents + other.insurance_paid_cents,
            self.patient_paid_cents + other.patient_paid_cents,
            self.remaining_cents + other.remaining_cents,
        )


@dataclass(frozen=True)
class VisitLine:
    service_date: dt.date
    service_id: str  # "<encounter number>-<line>"
    description: str
    figures: Figures
    paid_by_receipt_cents: int  # what this receipt's payment has on the line now


@dataclass(frozen=True)
class Visit:
    """The lines of one Facility + Provider + Patient."""

    facility: str
    provider: str
    patient: str
    lines: tuple[VisitLine, ...]


@dataclass(frozen=True)
class ReceiptContent:
    receipt_number: str
    payment_date: dt.date
    payment_status: str  # Paid, Unsuccessful or Voided
    type: str  # Patient Payment or Patient Refund
    paid_with: str  # "Visa ending 1111", "Apple Pay", "Check", ...
    amount_cents: int
    guarantor: str
    account_number: str  # the Guarantor ID
    transaction_numbers: tuple[str, ...]  # a refund's: the gateway's refund transactions
    refund_of: str | None  # a refund's payment receipt number
    summary: Figures  # over the lines the receipt was applied to
    visits: tuple[Visit, ...]


def paid_with(receipt: Receipt) -> str:
    if receipt.method in WALLETS:
        return receipt.method
    if receipt.card_last4:
        return f"{receipt.card_brand or 'Card'} ending {receipt.card_last4}"
    return receipt.method


def transaction_numbers(receipt: Receipt) -> tuple[str, ...]:
    """The card processor's numbers for the money of a receipt: a payment's transaction(s),
    one per part of a split payment (kept when it is voided), or a Patient Refund's refund
    transaction(s) at the gateway. None for an Unsuccessful receipt (no money moved)."""
    if receipt.status == Receipt.Status.UNSUCCESSFUL:
        return ()
    if receipt.type == Receipt.Type.REFUND:
        parts = RefundPart.objects.filter(refund__receipt=receipt)
        return tuple(
            parts.exclude(transaction_id="").order_by("pk").values_list("transaction_id", flat=True)
        )
    return tuple(number for (number,) in rows.fetch_all(_PAYMENT_NUMBERS, [receipt.pk]))


# A payment's transaction numbers (hand-written: every emailed receipt and payment answer
# reads them).
_PAYMENT_NUMBERS = """
    SELECT part.transaction_id FROM payments_paymentpart part
    JOIN payments_paymentattempt attempt ON attempt.id = part.attempt_id
    WHERE attempt.receipt_id = %s AND part.transaction_id <> ''
    ORDER BY part.id
"""


def receipt_content(receipt: Receipt) -> ReceiptContent:
    """Everything a receipt shows. Bounded: the same few queries for any number of lines."""
    guarantor = receipt.guarantor
    refunded = receipt.refund_of if receipt.type == Receipt.Type.REFUND else None
    source_id = refunded.pk if refunded is not None else receipt.pk
    on_line = dict(
        Application.objects.filter(receipt_id=source_id).values_list("line_id", "amount_cents")
    )
    line_ids = set(on_line) | set(
        LedgerEntry.objects.filter(receipt_id=source_id, kind=LedgerEntry.Kind.APPLICATION)
        .values_list("line_id", flat=True)
        .distinct()
    )
    lines = (
        ServiceLine.objects.filter(pk__in=line_ids)
        .select_related("encounter__facility", "encounter__provider", "encounter__patient")
        .order_by(
            "encounter__service_date",
            F("encounter__number_numeric").asc(nulls_last=True),
            "encounter__number",
            "line",
        )
        if line_ids
        else ServiceLine.objects.none()
    )
    visits = _visits(lines, on_line)
    summary = sum((line.figures for visit in visits for line in visit.lines), Figures())
    return ReceiptContent(
        receipt_number=receipt.number,
        payment_date=receipt.date,
        payment_status=receipt.get_status_display(),
        type=receipt.get_type_display(),
        paid_with=paid_with(receipt),
        amount_cents=receipt.amount_cents,
        guarantor=f"{guarantor.first_name} {guarantor.last_name}".strip(),
        account_number=guarantor.external_id,
        transaction_numbers=transaction_numbers(receipt),
        refund_of=refunded.number if refunded is not None else None,
        summary=summary,
        visits=visits,
    )


def _visits(lines: Iterable[ServiceLine], on_line: dict[int, int]) -> tuple[Visit, ...]:
    grouped: dict[tuple[int, int, int], list[ServiceLine]] = {}
    for line in lines:
        encounter = line.encounter
        key = (encounter.facility_id, encounter.provider_id, encounter.patient_id)
        grouped.setdefault(key, []).append(line)
    visits = []
    for group in grouped.values():
        encounter = group[0].encounter
        patient = encounter.patient
        visits.append(
            Visit(
                facility=encounter.facility.name,
                provider=encounter.provider.name,
                patient=f"{patient.first_name} {patient.last_name}".strip(),
                lines=tuple(_visit_line(line, on_line.get(line.pk, 0)) for line in group),
            )
        )
    return tuple(visits)


def _visit_line(line: ServiceLine, paid_by_receipt: int) -> VisitLine:
    return VisitLine(
        service_date=line.encounter.service_date,
        service_id=f"{line.encounter.number}-{line.line}",
        description=line.description,
        figures=Figures(
            billed_cents=line.billed_cents,
            adjusted_or_pending_cents=line.adjusted_cents + line.pending_insurance_cents,
            insurance_paid_cents=line.insurance_paid_cents,
            patient_paid_cents=line.patient_paid_cents,
            remaining_cents=line.remaining_cents,
        ),
        paid_by_receipt_cents=paid_by_receipt,
    )


# --- Requested, Not Processed -------------------------------------------------------------------


@dataclass(frozen=True)
class NotProcessed:
    """Declined POPS payments: how many, and how much was asked for."""

    count: int = 0
    amount_cents: int = 0

    def __add__(self, cents: int) -> NotProcessed:
        return NotProcessed(self.count + 1, self.amount_cents + cents)


def requested_not_processed(
    practice: Practice, date: dt.date, batches: Iterable[ReferenceBatch]
) -> tuple[NotProcessed, dict[int, NotProcessed]]:
    """A date's declined POPS payments (their $0.00 Unsuccessful receipts are in no batch): the
    date's total, and the share each of the date's batches reports. A decline belongs to the
    POPS batch open when it happened or, when none was, to the next one opened (the batch a
    payment at that moment would have joined); after the last one closed, to the last. So with
    a batch closed and another opened the same day, nothing is counted twice."""
    pops = sorted((b for b in batches if b.is_pops), key=lambda b: (b.opened_at, b.pk))
    shares = {b.pk: NotProcessed() for b in pops}
    total = NotProcessed()
    declines = PaymentAttempt.objects.filter(
        practice=practice, status=PaymentAttempt.Status.DECLINED, receipt__date=date
    ).values_list("receipt__created_at", "amount_cents")
    for at, cents in declines:
        total += cents
        if pops:
            owner = next((b for b in pops if b.closed_at is None or b.closed_at > at), pops[-1])
            shares[owner.pk] += cents
    return total, shares
