"""Voiding a POPS payment on its own practice-local day.

A void cancels the card transaction(s) at the gateway before they settle (every part of a split
payment), marks the receipt Voided (it is kept, and shown as deleted) and undoes its postings
with reversing ledger entries. From the next day on a payment is refunded instead
(`pops.payments.services.refunds`); a Patient Refund receipt is never voided.

Three phases, because a gateway call never sits inside a database transaction:

1. **Request** (one transaction; the guarantor's row locked first, then the receipt's): check
   the rules, then record the `VoidRequest` (reason, who, when). From then on the void is under
   way: a refund of the payment is refused, and the void may be finished on a later day.
2. **Void at the gateway** (no transaction): every part not voided yet is voided, and marked
   voided as soon as the gateway confirms it. Voiding twice is safe at the gateway (it answers
   the first void), so this phase can always run again.
3. **Record** (one transaction, the same locks): the receipt marked Voided (when, why), its
   postings reversed (`reverse_receipt`), the audit record.

Failure cases:

- Refused by the rules (not a paid POPS payment, already voided, refunded or being refunded,
  another day, no reason): nothing is written and the gateway is not called.
- The gateway is unreachable, times out, fails or is misconfigured: the request stays, the
  receipt stays Paid, and the caller is told to try again (`PaymentsUnavailable`). The gateway
  may have voided the money already, so a retry finishes the void even on a later day (the
  day rule is for *asking* for a void), and so does `complete_interrupted_voids()`, run with
  the reconciler.
- The gateway refuses the void (a real gateway does once the transaction has settled) before
  any part was voided: nothing happened, the request is dropped, and the caller is told to
  refund it instead.
- A split payment whose gateway refused a part after voiding others: the voided parts are
  marked, the receipt stays Paid with its void under way, and the error is logged for staff
  (the money of some parts is back with the patient; the rest must be settled by hand).
- Two voids at once: the second waits for the lock, finds the void under way (or done) and,
  at the end, the receipt already voided: it is told so, and nothing is written twice.
"""

import datetime as dt
import logging
from typing import NoReturn

from django.db import transaction

from pops.core import audit, clock
from pops.core.db import retry_on_conflict
from pops.core.models import AuditEvent
from pops.ledger.models import Receipt
from pops.ledger.services.posting import reverse_receipt
from pops.payments.gateways.base import GatewayMisconfigured, GatewayUnavailable, InvalidRequest
from pops.payments.gateways.registry import gateway_for
from pops.payments.models import PaymentPart, RefundAttempt, VoidRequest
from pops.payments.services import methods
from pops.payments.services.errors import PaymentRefused, PaymentsUnavailable
from pops.payments.services.locks import lock_receipt

logger = logging.getLogger("pops.payments")

PartStatus = PaymentPart.Status
REASON_MAX_LENGTH = 300
# A live void is recorded within seconds; a request left this long was interrupted.
STALE_AFTER = dt.timedelta(minutes=2)


def void_receipt(receipt: Receipt, *, reason: str, actor: audit.Actor) -> Receipt:
    """Void a paid POPS payment receipt on its own practice-local date (or finish a void asked
    for then); answers the receipt, now Voided.

    Raises PaymentRefused (nothing written, nothing called: the message says why, e.g. "from
    the next day on, refund it instead", or "already voided") or PaymentsUnavailable (the
    gateway did not confirm the void: try again; voiding twice is safe)."""
    reason = _reason(reason)
    request = retry_on_conflict(lambda: _request(receipt.pk, reason, actor))
    return _finish(request, actor)


def complete_interrupted_voids(*, actor: audit.Actor | None = None) -> int:
    """Finish every void asked for more than `STALE_AFTER` ago whose receipt is still Paid
    (the gateway did not answer, nobody retried), as a retry would. Answers how many were
    finished; those the gateway still does not answer stay for the next run."""
    actor = actor or audit.Actor.system()
    waiting = VoidRequest.objects.filter(
        receipt__status=Receipt.Status.PAID, requested_at__lt=clock.now() - STALE_AFTER
    )
    finished = 0
    for request in waiting.order_by("pk"):
        try:
            _finish(request, actor)
        except (PaymentsUnavailable, PaymentRefused) as error:
            logger.warning("void of receipt %s not finished: %s", request.receipt_id, error)
        else:
            finished += 1
    return finished


# --- 1. Request -------------------------------------------------------------------------------


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise PaymentRefused("reason", "Give the reason for the void.")
    if len(reason) > REASON_MAX_LENGTH:
        raise PaymentRefused(
            "reason", f"The reason must be at most {REASON_MAX_LENGTH} characters."
        )
    return reason


def _request(receipt_id: int, reason: str, actor: audit.Actor) -> VoidRequest:
    with transaction.atomic():
        receipt = lock_receipt(receipt_id)
        _check(receipt)
        request = VoidRequest.objects.filter(receipt=receipt).first()
        if request is not None:
            return request  # under way: finish it, whatever the day
        today = clock.local_date(receipt.guarantor.practice.time_zone)
        if today != receipt.date:
            raise PaymentRefused(
                "receipt",
                "A payment can be voided only on the day it was made "
                f"({receipt.date.isoformat()}); from the next day on, refund it instead.",
            )
        request = VoidRequest.objects.create(
            receipt=receipt, reason=reason, actor_type=actor.type, actor_label=actor.label[:150]
        )
        audit.record(
            "payments.void.requested",
            actor=actor,
            practice=receipt.guarantor.practice,
            resource=("receipt", receipt.number),
            guarantor_id=receipt.guarantor.external_id,
            data={"amount_cents": receipt.amount_cents, "reason": reason},
        )
        return request


def _check(receipt: Receipt) -> None:
    """The rules of a void that do not depend on the day, checked under the locks."""
    if receipt.type == Receipt.Type.REFUND:
        raise PaymentRefused(
            "receipt", "A refund receipt cannot be voided: a processed refund is kept."
        )
    if not receipt.made_in_pops:
        raise PaymentRefused(
            "receipt", "Only a payment made in POPS can be voided here; this one was imported."
        )
    if receipt.status == Receipt.Status.VOIDED:
        when = receipt.voided_at or clock.now()
        tz = receipt.guarantor.practice.time_zone
        raise PaymentRefused(
            "receipt", f"This payment was voided already, on {clock.local_date(tz, when)}."
        )
    if receipt.status != Receipt.Status.PAID:
        raise PaymentRefused(
            "receipt",
            f"Only a paid receipt can be voided; this one is {receipt.get_status_display()}.",
        )
    if Receipt.objects.filter(refund_of=receipt, status=Receipt.Status.PAID).exists():
        raise PaymentRefused("receipt", "This payment was refunded, so it cannot be voided.")
    if RefundAttempt.objects.filter(payment=receipt, status__in=RefundAttempt.UNDER_WAY).exists():
        raise PaymentRefused(
            "receipt", "A refund of this payment is under way, so it cannot be voided."
        )
    parts = PaymentPart.objects.filter(attempt__receipt=receipt).select_related("merchant_account")
    accounts = [part.merchant_account for part in parts]
    if not accounts:
        raise PaymentRefused("receipt", "This payment has no card transaction to void.")
    if not methods.common(accounts).void:
        raise PaymentRefused(
            "receipt",
            "This payment's card processor cannot void it through POPS: refund it from the "
            "next day on.",
        )


# --- 2. Void at the gateway -------------------------------------------------------------------


def _finish(request: VoidRequest, actor: audit.Actor) -> Receipt:
    parts = list(
        PaymentPart.objects.filter(
            attempt__receipt_id=request.receipt_id,
            status__in=(PartStatus.APPROVED, PartStatus.VOIDED),
        )
        .select_related("merchant_account")
        .order_by("pk")
    )
    _void_at_gateway(request, parts, actor)
    return retry_on_conflict(lambda: _record(request, actor))


def _void_at_gateway(request: VoidRequest, parts: list[PaymentPart], actor: audit.Actor) -> None:
    """Void every part not voided yet, outside any transaction; mark each as it is voided."""
    for part in parts:
        if part.status == PartStatus.VOIDED:
            continue
        try:
            gateway_for(part.merchant_account).void(part.transaction_id)
        except GatewayUnavailable:
            raise PaymentsUnavailable(
                "The card processor did not answer, so the payment is not voided yet. "
                "Try again: voiding twice is safe."
            ) from None
        except (InvalidRequest, GatewayMisconfigured) as error:
            _refused(request, parts, part, error, actor)
        PaymentPart.objects.filter(pk=part.pk, status=PartStatus.APPROVED).update(
            status=PartStatus.VOIDED
        )
        part.status = PartStatus.VOIDED


def _refused(
    request: VoidRequest,
    parts: list[PaymentPart],
    part: PaymentPart,
    error: InvalidRequest | GatewayMisconfigured,
    actor: audit.Actor,
) -> NoReturn:
    """The gateway would not void `part`. If it refused the void itself before any part was
    voided, nothing happened: drop the request (the payment may be refunded instead) and say
    why. Otherwise keep the request (the receipt stays Paid and cannot be refunded): a
    misconfigured gateway may be fixed and the void retried; a payment voided in part is for
    staff to settle with the card processor."""
    if any(p.status == PartStatus.VOIDED for p in parts):
        logger.error(
            "receipt %s: part %s could not be voided after others were: %s",
            request.receipt_id,
            part.merchant_reference,
            error,
        )
        raise PaymentsUnavailable(
            "Part of this payment was voided but the rest could not be; "
            "the practice must settle it with the card processor."
        ) from None
    if isinstance(error, GatewayMisconfigured):
        logger.error("gateway misconfigured for receipt %s: %s", request.receipt_id, error)
        raise PaymentsUnavailable(
            "The card processor cannot be used right now, so the payment is not voided yet."
        ) from None
    with transaction.atomic():
        receipt = lock_receipt(request.receipt_id)
        VoidRequest.objects.filter(pk=request.pk).delete()
        audit.record(
            "payments.void.refused",
            actor=actor,
            practice=receipt.guarantor.practice,
            resource=("receipt", receipt.number),
            guarantor_id=receipt.guarantor.external_id,
            outcome=AuditEvent.Outcome.ERROR,
            data={
                "error": error.message,
                "gateway_error": error.code,
                "requested_by": request.actor_label,
            },
        )
    raise PaymentRefused(
        "receipt",
        f"The card processor cannot void this payment ({error.message}); refund it instead.",
    ) from None


# --- 3. Record --------------------------------------------------------------------------------


def _record(request: VoidRequest, actor: audit.Actor) -> Receipt:
    with transaction.atomic():
        receipt = lock_receipt(request.receipt_id)
        if receipt.status != Receipt.Status.PAID:
            _check(receipt)  # another void of the same receipt got here first: say so
        parts = PaymentPart.objects.filter(attempt__receipt=receipt)
        if parts.filter(status=PartStatus.APPROVED).exists():  # pragma: no cover - see above
            raise PaymentsUnavailable("The card processor has not voided every part yet.")
        receipt.status = Receipt.Status.VOIDED
        receipt.voided_at = clock.now()
        receipt.void_reason = request.reason
        receipt.save(update_fields=["status", "voided_at", "void_reason"])
        reverse_receipt(receipt)
        audit.record(
            "payments.receipt.voided",
            actor=actor,
            practice=receipt.guarantor.practice,
            resource=("receipt", receipt.number),
            guarantor_id=receipt.guarantor.external_id,
            data={
                "amount_cents": receipt.amount_cents,
                "reason": request.reason,
                "requested_by": request.actor_label,
                "transactions": sorted(
                    parts.filter(status=PartStatus.VOIDED)
                    .exclude(transaction_id="")
                    .values_list("transaction_id", flat=True)
                ),
            },
        )
    return receipt
