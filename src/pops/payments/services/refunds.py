"""Refunding a POPS payment, in full or in part, from the day after it was made.

A refund is its own Patient Refund receipt (a positive amount, type refund, `refund_of` the
payment) in the POPS reference batch of its practice-local date; its ledger entries take the
money off the payment's lines (`post_refund`). Refunds of one payment never add up to more than
was captured. On the payment's own day it is voided instead (`voids.void_receipt`).

A refund is a `RefundAttempt` with one `RefundPart` per gateway refund (the latest part of a
split payment gives back first), exactly as a payment is a `PaymentAttempt` with its
`PaymentPart`s. Three phases, because a gateway call never sits inside a database transaction:

1. **Begin** (one transaction; the guarantor's row locked first, then the receipt's): check the
   rules, then write the attempt and its parts. The attempt's idempotency key is unique per
   practice, so a second call with the key never gets further than finding the first. While
   the attempt is not settled its amount is reserved: two refunds of one payment under
   different keys can never add up to more than was captured.
2. **Refund** (no transaction): one gateway refund per part, under the part's merchant
   reference. The gateway makes one refund per reference, so asking again never refunds twice.
   Each answer (the gateway's refund transaction number) is written on its part as it arrives.
3. **Settle** (one transaction, the same locks): the Patient Refund receipt, dated the
   practice-local day the gateway made the refund, in that date's open POPS batch; its ledger
   entries; the payment parts' `refunded_cents`; the attempt marked succeeded; the audit record.

Failure cases, and what a retry with the same key does:

- Refused by the rules (a refund on the payment's own day, an amount above what is left, a
  void under way, ...): nothing is written, nothing is refunded, and the key is not used up.
- The gateway refuses the request itself, or is certainly not reached, before anything may
  have been refunded: the attempt is deleted (the key is free again) and the caller told why.
- The gateway times out, answers 5xx or drops the connection (it may have refunded), or fails
  after a part was refunded: the attempt is kept, interrupted, with what each part got so far,
  and its amount stays reserved; the caller gets `RefundIncomplete`. A retry with the same key
  resumes it: refunded parts are skipped, the others are asked again under the same references
  (the gateway answers a refund it already made without making it again), then it is settled.
- The process dies between the gateway and the settle: the attempt stays processing; after
  `STALE_AFTER` a retry takes it over as if it had been interrupted.
- A retry after a success (the answer was lost): the same refund receipt, the gateway not called.
- The same key with another payment or amount: `KeyReused`. The same key while a call with it is
  still running: `InProgress`.

`complete_interrupted_refunds()` finishes interrupted refunds nobody retried: run it with the
payment reconciler, so that no amount stays reserved, nor refunded at the gateway without its
receipt.
"""

import datetime as dt
import logging

from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet, Sum

from pops.core import audit, clock
from pops.core.db import retry_on_conflict
from pops.core.models import AuditEvent
from pops.core.money import display_amount
from pops.ledger.models import Receipt, ReceiptNumber
from pops.ledger.services.batches import pops_batch
from pops.ledger.services.posting import post_refund, refundable
from pops.payments.gateways.base import (
    GatewayMisconfigured,
    GatewayUnavailable,
    InvalidRequest,
    RefundRequest,
)
from pops.payments.gateways.registry import gateway_for
from pops.payments.models import PaymentPart, RefundAttempt, RefundPart, VoidRequest
from pops.payments.services import methods
from pops.payments.services.errors import (
    InProgress,
    KeyReused,
    PaymentRefused,
    PaymentsUnavailable,
)
from pops.payments.services.locks import lock_receipt

logger = logging.getLogger("pops.payments")

Status = RefundAttempt.Status
PartStatus = RefundPart.Status
# A live refund is settled within seconds; an attempt left processing this long was abandoned.
STALE_AFTER = dt.timedelta(minutes=10)
KEY_MAX_LENGTH = 255


class RefundIncomplete(PaymentsUnavailable):
    """The gateway did not finish the refund: part of it may have been made. Nothing is lost
    and nothing will be refunded twice: a retry with the same idempotency key finishes it."""


def refund_receipt(
    receipt: Receipt, amount_cents: int, *, actor: audit.Actor, idempotency_key: str
) -> Receipt:
    """Refund `amount_cents` of a paid POPS payment receipt; answers the Patient Refund receipt.

    Raises PaymentRefused (nothing written, nothing refunded, key not used up), KeyReused,
    InProgress, PaymentsUnavailable (nothing refunded: try again) or RefundIncomplete (retry
    with the same key to finish it)."""
    if not 0 < len(idempotency_key or "") <= KEY_MAX_LENGTH:
        raise PaymentRefused("idempotency_key", "Give an idempotency key of 1-255 characters.")
    begun = retry_on_conflict(lambda: _begin(receipt.pk, amount_cents, actor, idempotency_key))
    if isinstance(begun, Receipt):
        return begun
    return _run(begun, actor)


def complete_interrupted_refunds(*, actor: audit.Actor | None = None) -> int:
    """Finish every refund left interrupted, or abandoned processing for longer than
    `STALE_AFTER`, exactly as a retry with its key would. Never refunds twice. Answers how many
    were finished; those the gateway still does not answer stay for the next run."""
    actor = actor or audit.Actor.system()
    stale = clock.now() - STALE_AFTER
    waiting = RefundAttempt.objects.filter(
        Q(status=Status.INTERRUPTED) | Q(status=Status.PROCESSING, touched_at__lt=stale)
    )
    finished = 0
    for attempt_id in waiting.order_by("pk").values_list("pk", flat=True):
        attempt = _take_over(attempt_id)
        if attempt is None:
            continue
        try:
            _run(attempt, actor)
        except (PaymentsUnavailable, PaymentRefused) as error:
            logger.warning("refund attempt %s not finished: %s", attempt_id, error)
        else:
            finished += 1
    return finished


# --- 1. Begin ---------------------------------------------------------------------------------


def _begin(receipt_id: int, amount: int, actor: audit.Actor, key: str) -> RefundAttempt | Receipt:
    with transaction.atomic():
        payment = lock_receipt(receipt_id)
        practice = payment.guarantor.practice
        earlier = (
            RefundAttempt.objects.select_for_update()
            .filter(practice=practice, idempotency_key=key)
            .first()
        )
        if earlier is not None:
            return _resume(earlier, payment.pk, amount)
        plan = _plan(payment, _check(payment, amount), amount)
        try:
            with transaction.atomic():
                attempt = RefundAttempt.objects.create(
                    practice=practice,
                    payment=payment,
                    idempotency_key=key,
                    amount_cents=amount,
                    actor_label=actor.label[:150],
                    touched_at=clock.now(),
                )
        except IntegrityError:
            # The same key, for a payment of another guarantor (another lock), a moment ago.
            twin = RefundAttempt.objects.filter(practice=practice, idempotency_key=key).first()
            if twin is not None and (twin.payment_id, twin.amount_cents) != (payment.pk, amount):
                raise KeyReused() from None
            raise InProgress() from None
        RefundPart.objects.bulk_create(
            RefundPart(
                refund=attempt,
                payment_part=part,
                merchant_reference=f"pops-rf-{attempt.pk}-{index}",
                amount_cents=cents,
            )
            for index, (part, cents) in enumerate(plan, start=1)
        )
        audit.record(
            "payments.refund.started",
            actor=actor,
            practice=practice,
            resource=("receipt", payment.number),
            guarantor_id=payment.guarantor.external_id,
            data={"amount_cents": amount, "refund_attempt": attempt.pk},
        )
        return attempt


def _resume(attempt: RefundAttempt, payment_id: int, amount: int) -> RefundAttempt | Receipt:
    """An attempt with this key exists (its row locked): answer its refund receipt, refuse, or
    take it over to finish it."""
    if (attempt.payment_id, attempt.amount_cents) != (payment_id, amount):
        raise KeyReused()
    if attempt.status == Status.SUCCEEDED:
        assert attempt.receipt is not None  # a database constraint says so
        return attempt.receipt
    if attempt.status == Status.PROCESSING and attempt.touched_at >= clock.now() - STALE_AFTER:
        raise InProgress()
    attempt.status, attempt.touched_at = Status.PROCESSING, clock.now()
    attempt.save(update_fields=["status", "touched_at"])
    return attempt


def _take_over(attempt_id: int) -> RefundAttempt | None:
    """Claim an interrupted (or abandoned) refund for this process; None if another has it."""
    with transaction.atomic():
        payment_id = (
            RefundAttempt.objects.filter(pk=attempt_id).values_list("payment_id", flat=True).first()
        )
        if payment_id is None:
            return None
        lock_receipt(payment_id)
        attempt = RefundAttempt.objects.select_for_update().filter(pk=attempt_id).first()
        if attempt is None:
            return None
        try:
            resumed = _resume(attempt, attempt.payment_id, attempt.amount_cents)
        except InProgress:
            return None
        return resumed if isinstance(resumed, RefundAttempt) else None


def _check(payment: Receipt, amount: int) -> list[PaymentPart]:
    """The rules of a refund, checked under the locks; answers the payment's approved parts."""
    if payment.type == Receipt.Type.REFUND:
        raise PaymentRefused("receipt", "A refund receipt cannot be refunded.")
    if not payment.made_in_pops:
        raise PaymentRefused(
            "receipt", "Only a payment made in POPS can be refunded here; this one was imported."
        )
    if payment.status != Receipt.Status.PAID:
        raise PaymentRefused(
            "receipt",
            f"Only a paid receipt can be refunded; this one is {payment.get_status_display()}.",
        )
    if VoidRequest.objects.filter(receipt=payment).exists():
        raise PaymentRefused(
            "receipt", "A void of this payment is under way: void it again to finish it."
        )
    today = clock.local_date(payment.guarantor.practice.time_zone)
    if today <= payment.date:
        raise PaymentRefused(
            "receipt",
            f"This payment was made today ({payment.date.isoformat()}): void it instead. "
            "Refunds are made from the next day on.",
        )
    if amount <= 0:
        raise PaymentRefused("amount", "The refund amount must be more than $0.00.")
    parts = list(
        PaymentPart.objects.filter(attempt__receipt=payment, status=PaymentPart.Status.APPROVED)
        .select_related("merchant_account")
        .order_by("pk")
    )
    if not parts:
        raise PaymentRefused("receipt", "This payment has no card transaction to refund.")
    can = methods.common(part.merchant_account for part in parts)
    if not can.refund:
        raise PaymentRefused(
            "receipt", "This payment's card processor cannot refund it through POPS."
        )
    refunded = _total(Receipt.objects.filter(refund_of=payment, status=Receipt.Status.PAID))
    reserved = _total(
        RefundAttempt.objects.filter(payment=payment, status__in=RefundAttempt.UNDER_WAY)
    )
    left = min(payment.amount_cents - refunded, refundable(payment).total) - reserved
    if amount > left:
        if left <= 0:
            message = "Nothing is left to refund on this receipt."
            if reserved:
                message += f" {display_amount(reserved)} of it is being refunded right now."
        else:
            message = (
                f"The refund cannot be more than the {display_amount(left)} left to refund "
                f"on this receipt (of {display_amount(payment.amount_cents)} paid)."
            )
        raise PaymentRefused("amount", message)
    if amount < payment.amount_cents and not can.partial_refund:
        raise PaymentRefused(
            "amount",
            "This payment's card processor refunds only whole payments: refund all "
            f"{display_amount(payment.amount_cents)} of it.",
        )
    return parts


def _total(rows: QuerySet) -> int:
    return int(rows.aggregate(total=Sum("amount_cents", default=0))["total"])


def _plan(payment: Receipt, parts: list[PaymentPart], amount: int) -> list[tuple[PaymentPart, int]]:
    """How much each gateway transaction gives back: the latest part first, each no more than
    it has left (less what refunds under way will take of it)."""
    reserved = dict(
        RefundPart.objects.filter(
            refund__payment=payment, refund__status__in=RefundAttempt.UNDER_WAY
        )
        .values_list("payment_part_id")
        .annotate(total=Sum("amount_cents"))
        .values_list("payment_part_id", "total")
    )
    plan: list[tuple[PaymentPart, int]] = []
    left = amount
    for part in reversed(parts):
        take = min(left, part.amount_cents - part.refunded_cents - reserved.get(part.pk, 0))
        if take > 0:
            plan.append((part, take))
            left -= take
        if not left:
            return plan
    # The receipt's figures allowed it, its transactions do not: they disagree.
    logger.error("receipt %s: its parts cannot refund %s cents", payment.number, amount)
    raise PaymentRefused("amount", "This payment's card transactions cannot refund that amount.")


# --- 2. Refund at the gateway -----------------------------------------------------------------


def _run(attempt: RefundAttempt, actor: audit.Actor) -> Receipt:
    _refund_at_gateway(attempt, actor)
    try:
        return retry_on_conflict(lambda: _settle(attempt.pk, actor))
    except ValueError as error:
        # The ledger no longer holds what the gateway gave back (the payment was changed since
        # the refund began): keep the attempt for staff rather than post a wrong refund.
        logger.error("refund attempt %s cannot be posted: %s", attempt.pk, error)
        RefundAttempt.objects.filter(pk=attempt.pk).update(
            status=Status.INTERRUPTED, touched_at=clock.now()
        )
        raise RefundIncomplete(
            "The card processor made the refund but it cannot be posted to this payment; "
            "the practice must settle it."
        ) from None


def _refund_at_gateway(attempt: RefundAttempt, actor: audit.Actor) -> None:
    parts = list(attempt.parts.select_related("payment_part__merchant_account").order_by("pk"))
    for part in parts:
        if part.status == PartStatus.REFUNDED:
            continue
        paid = part.payment_part
        request = RefundRequest(paid.transaction_id, part.amount_cents, part.merchant_reference)
        try:
            result = gateway_for(paid.merchant_account).refund(request)
        except GatewayUnavailable as error:
            if error.charge_may_have_happened and not part.uncertain:
                part.uncertain = True
                RefundPart.objects.filter(pk=part.pk).update(uncertain=True)
            _stop(attempt, parts, actor, error)
        except (InvalidRequest, GatewayMisconfigured) as error:
            _stop(attempt, parts, actor, error)
        else:
            part.status, part.transaction_id = PartStatus.REFUNDED, result.refund_id
            part.refunded_at, part.uncertain = result.refunded_at, False
            part.save(update_fields=["status", "transaction_id", "refunded_at", "uncertain"])
            RefundAttempt.objects.filter(pk=attempt.pk).update(touched_at=clock.now())


def _stop(
    attempt: RefundAttempt,
    parts: list[RefundPart],
    actor: audit.Actor,
    error: GatewayUnavailable | InvalidRequest | GatewayMisconfigured,
) -> None:
    """The gateway did not refund a part. If nothing may have been refunded under this attempt,
    forget it (the key is free again) and say why; otherwise keep it interrupted for a retry."""
    nothing_happened = not any(p.status == PartStatus.REFUNDED or p.uncertain for p in parts)
    with transaction.atomic():
        payment = lock_receipt(attempt.payment_id)
        audit.record(
            "payments.refund.abandoned" if nothing_happened else "payments.refund.interrupted",
            actor=actor,
            practice=payment.guarantor.practice,
            resource=("receipt", payment.number),
            guarantor_id=payment.guarantor.external_id,
            outcome=AuditEvent.Outcome.ERROR,
            data={
                "refund_attempt": attempt.pk,
                "error": error.message,
                "gateway_error": error.code,
            },
        )
        if nothing_happened:
            RefundPart.objects.filter(refund_id=attempt.pk).delete()
            RefundAttempt.objects.filter(pk=attempt.pk).delete()
        else:
            RefundAttempt.objects.filter(pk=attempt.pk).update(
                status=Status.INTERRUPTED, touched_at=clock.now()
            )
    if not nothing_happened:
        if not isinstance(error, GatewayUnavailable):
            logger.error("refund attempt %s stopped half-way: %s", attempt.pk, error)
        raise RefundIncomplete(
            "The card processor did not confirm the whole refund. Nothing will be refunded "
            "twice: try again with the same idempotency key to finish it."
        ) from error
    if isinstance(error, InvalidRequest):
        path = "amount" if error.code == "refund_exceeds_captured" else "receipt"
        raise PaymentRefused(
            path, f"The card processor refused the refund: {error.message}"
        ) from error
    if isinstance(error, GatewayMisconfigured):
        logger.error("gateway misconfigured for refund attempt %s: %s", attempt.pk, error)
    raise PaymentsUnavailable(
        "The card processor could not be reached, so nothing was refunded. Please try again."
    ) from error


# --- 3. Settle --------------------------------------------------------------------------------


def _settle(attempt_id: int, actor: audit.Actor) -> Receipt:
    with transaction.atomic():
        payment_id = RefundAttempt.objects.values_list("payment_id", flat=True).get(pk=attempt_id)
        payment = lock_receipt(payment_id)
        attempt = RefundAttempt.objects.select_for_update().get(pk=attempt_id)
        if attempt.status == Status.SUCCEEDED:
            assert attempt.receipt is not None
            return attempt.receipt
        parts = list(attempt.parts.order_by("pk"))
        if any(part.status != PartStatus.REFUNDED for part in parts):  # pragma: no cover
            raise RefundIncomplete("The card processor did not confirm the whole refund.")
        guarantor = payment.guarantor
        practice = guarantor.practice
        # Dated the day the gateway gave the money back, as a payment is dated the day it was
        # approved (the same day, unless a retry finished an interrupted refund later).
        refunded_at = max(part.refunded_at or clock.now() for part in parts)
        date = clock.local_date(practice.time_zone, refunded_at)
        refund = Receipt.objects.create(
            practice=practice,
            guarantor=guarantor,
            number=ReceiptNumber.next(),
            type=Receipt.Type.REFUND,
            date=date,
            amount_cents=attempt.amount_cents,
            method=payment.method,
            source="POPS",
            status=Receipt.Status.PAID,
            made_in_pops=True,
            card_brand=payment.card_brand,
            card_last4=payment.card_last4,
            reference_batch=pops_batch(practice.pk, date),
            refund_of=payment,
        )
        post_refund(refund, payment)
        for part in parts:
            PaymentPart.objects.filter(pk=part.payment_part_id).update(
                refunded_cents=F("refunded_cents") + part.amount_cents
            )
        now = clock.now()
        attempt.status, attempt.receipt = Status.SUCCEEDED, refund
        attempt.settled_at, attempt.touched_at = now, now
        attempt.save(update_fields=["status", "receipt", "settled_at", "touched_at"])
        audit.record(
            "payments.refund.succeeded",
            actor=actor,
            practice=practice,
            resource=("receipt", refund.number),
            guarantor_id=guarantor.external_id,
            data={
                "amount_cents": refund.amount_cents,
                "refund_of": payment.number,
                "refund_attempt": attempt.pk,
                "transactions": [part.transaction_id for part in parts],
            },
        )
    return refund
