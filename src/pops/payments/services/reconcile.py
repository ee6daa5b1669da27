"""Settling payments whose outcome POPS does not know, by asking the gateway.

An attempt is `unknown` when a gateway call may have charged the card but its answer never came
(a timeout, a 5xx, a reset connection, test card 0341). An attempt still `processing` long after
it began was left half-way by a process that died. For each such attempt the reconciler asks
the gateway what it holds under each pending part's merchant reference:

- found approved: the part is approved (the gateway's transaction id, card and approval time);
- found declined or voided, or not found: the part is declined (nothing was charged);
- the gateway cannot be reached: the part stays pending for the next run.

Then `finish()` writes the outcome exactly as a live payment would: one paid receipt dated the
practice-local day the gateway approved it, or a $0.00 Unsuccessful receipt (approved parts of a
declined split payment are voided first). The reconciler never charges. The same run finishes
voids and refunds whose gateway answer never came (`voids.complete_interrupted_voids`,
`refunds.complete_interrupted_refunds`), exactly as a retry would. Run it from cron or a
worker loop (`pops payments reconcile`; see docs/payments.md).
"""

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q

from pops.core import audit, clock
from pops.payments.gateways.base import (
    DECLINE_MESSAGES,
    DeclineCode,
    GatewayError,
    GatewayUnavailable,
    QueryResult,
    TransactionStatus,
)
from pops.payments.gateways.registry import gateway_for
from pops.payments.models import PaymentAttempt, PaymentPart
from pops.payments.services.attempts import card_fields, finish, write_answer
from pops.payments.services.refunds import complete_interrupted_refunds
from pops.payments.services.voids import complete_interrupted_voids

logger = logging.getLogger("pops.payments.reconcile")

Status = PaymentAttempt.Status
PartStatus = PaymentPart.Status

# A live payment answers within seconds; one still `processing` after this was abandoned.
ABANDONED_AFTER = dt.timedelta(minutes=10)
# S-37: an attempt unknown for longer than this raises an alert.
ALERT_AFTER = dt.timedelta(hours=24)

NOT_FOUND_MESSAGE = (
    "The card processor has no record of this payment, so nothing was charged. Please try again."
)
VOIDED_MESSAGE = "The card processor cancelled this payment, so nothing was charged."


@dataclass
class ReconcileReport:
    """What one run did. `overdue` lists the attempts unknown for more than 24 hours."""

    examined: int = 0
    settled_paid: int = 0
    settled_declined: int = 0
    still_unknown: int = 0
    voids_finished: int = 0
    refunds_finished: int = 0
    errors: int = 0
    overdue: list[int] = field(default_factory=list)

    @property
    def overdue_count(self) -> int:
        return len(self.overdue)

    def lines(self) -> list[str]:
        out = [
            f"Examined {self.examined} payment attempt(s): "
            f"{self.settled_paid} settled paid, {self.settled_declined} settled declined, "
            f"{self.still_unknown} still unknown."
        ]
        if self.voids_finished or self.refunds_finished:
            out.append(
                f"Finished {self.voids_finished} interrupted void(s) and "
                f"{self.refunds_finished} interrupted refund(s)."
            )
        if self.errors:
            out.append(f"{self.errors} attempt(s) could not be examined (see the error log).")
        if self.overdue:
            ids = ", ".join(str(pk) for pk in self.overdue)
            out.append(
                f"ALERT: {self.overdue_count} attempt(s) unknown for more than 24 hours: {ids}."
            )
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def reconcile(
    *, older_than: dt.timedelta = dt.timedelta(seconds=30), now: dt.datetime | None = None
) -> ReconcileReport:
    """Settle every `unknown` attempt begun at least `older_than` ago, and every attempt still
    `processing` after ten minutes, by asking the gateway. Never charges; safe to run again and
    side by side with itself. Call it outside any transaction (gateway calls refuse to run in
    one)."""
    now = now or clock.now()
    due = Q(status=Status.UNKNOWN, created_at__lte=now - older_than) | Q(
        status=Status.PROCESSING, created_at__lte=now - ABANDONED_AFTER
    )
    report = ReconcileReport()
    ids = list(PaymentAttempt.objects.filter(due).order_by("pk").values_list("pk", flat=True))
    for attempt_id in ids:
        report.examined += 1
        try:
            attempt = _reconcile_attempt(attempt_id)
        except Exception:
            # One attempt's trouble (a misconfigured account, a bug) never stops the others.
            logger.exception("could not reconcile payment attempt %s", attempt_id)
            report.errors += 1
            attempt = PaymentAttempt.objects.get(pk=attempt_id)
        if attempt.status == Status.SUCCEEDED:
            report.settled_paid += 1
        elif attempt.status == Status.DECLINED:
            report.settled_declined += 1
        else:
            report.still_unknown += 1
            if attempt.created_at <= now - ALERT_AFTER:
                report.overdue.append(attempt.pk)
    report.voids_finished = _guarded(complete_interrupted_voids, report)
    report.refunds_finished = _guarded(complete_interrupted_refunds, report)
    if report.overdue:
        logger.error(
            "%s payment attempt(s) unknown for more than 24 hours: %s",
            report.overdue_count,
            ", ".join(str(pk) for pk in report.overdue),
        )
    return report


def _guarded(complete: Callable[[], int], report: ReconcileReport) -> int:
    """Run one of the voids' or refunds' own catch-up passes; its trouble never stops the run."""
    try:
        return complete()
    except Exception:
        logger.exception("%s failed", complete.__name__)
        report.errors += 1
        return 0


def _reconcile_attempt(attempt_id: int) -> PaymentAttempt:
    attempt = PaymentAttempt.objects.select_related("practice", "guarantor").get(pk=attempt_id)
    if attempt.is_settled:  # another run settled it a moment ago
        return attempt
    pending = attempt.parts.select_related("merchant_account").filter(status=PartStatus.PENDING)
    for part in pending.order_by("pk"):
        try:
            gateway = gateway_for(part.merchant_account)
            if not gateway.capabilities.query_by_reference:
                # Left unknown: the overdue alert names it, for someone to settle by hand.
                logger.error("%s cannot be asked by reference", part.merchant_reference)
                continue
            found = gateway.query_by_reference(part.merchant_reference)
        except GatewayUnavailable as error:
            logger.warning("gateway unavailable for %s: %s", part.merchant_reference, error)
            continue  # ask again on the next run
        except GatewayError as error:
            logger.error("could not query %s: %s", part.merchant_reference, error)
            continue
        _record_answer(attempt, part, found)
    return finish(attempt)


def _record_answer(attempt: PaymentAttempt, part: PaymentPart, found: QueryResult | None) -> None:
    """Write what the gateway holds for a pending part (only while it is still pending, so two
    runs side by side write it once)."""
    if found is None:
        changes: dict[str, object] = {
            "status": PartStatus.DECLINED,
            "decline_code": "not_found",
            "decline_message": NOT_FOUND_MESSAGE,
        }
    elif found.status == TransactionStatus.APPROVED:
        if found.amount_cents != part.amount_cents:
            logger.error(
                "gateway holds %s cents under %s, POPS asked for %s: left for an operator",
                found.amount_cents,
                part.merchant_reference,
                part.amount_cents,
            )
            return
        changes = {
            "status": PartStatus.APPROVED,
            "transaction_id": found.transaction_id,
            "approved_at": found.created_at,
            "vault_token": found.vault_token,
            **card_fields(found.card),
        }
    elif found.status == TransactionStatus.VOIDED:
        changes = {
            "status": PartStatus.VOIDED,
            "transaction_id": found.transaction_id,
            "decline_code": "voided",
            "decline_message": VOIDED_MESSAGE,
        }
    else:
        code = found.decline_code or DeclineCode.DECLINED
        changes = {
            "status": PartStatus.DECLINED,
            "transaction_id": found.transaction_id,
            "decline_code": str(code),
            "decline_message": DECLINE_MESSAGES[code],
        }
    with transaction.atomic():
        written = write_answer(part, PartStatus.PENDING, **changes)
        if written:
            audit.record(
                "payments.part.reconciled",
                actor=audit.Actor.system(),
                practice=attempt.practice,
                resource=("payment_attempt", str(attempt.pk)),
                guarantor_id=attempt.guarantor.external_id,
                data={
                    "reference": part.merchant_reference,
                    "found": str(found.status) if found else "not_found",
                    "transaction": found.transaction_id if found else "",
                },
            )
    if written:
        logger.info(
            "%s: the gateway holds %s",
            part.merchant_reference,
            found.status if found else "nothing",
        )
