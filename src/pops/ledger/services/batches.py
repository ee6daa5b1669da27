"""Reference batches. POPS's own: the first POPS receipt of a practice-local date opens one
("API Payments", user "POPS"); later ones that date join it; a closed batch is never posted
into, so a later POPS receipt that date opens a new one. Never closed automatically."""

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q, Sum

from pops.core import audit, clock, rows
from pops.ledger.models import Practice, Receipt, ReferenceBatch


class BatchError(Exception):
    """A batch cannot be changed that way; the message says why."""


def pops_batch(practice_id: int, date: dt.date) -> ReferenceBatch:
    """The open POPS batch of `date`, opened now if there is none. Call inside the posting
    transaction. A partial unique index keeps it to one open batch per practice and date:
    when two first-of-day payments race, the loser's insert fails and it joins the winner's."""
    from pops.groups.services import system_user

    for _ in range(3):
        found = _open_pops_batch(practice_id, date)
        if found is not None:
            return found
        practice = Practice.objects.get(pk=practice_id)  # (the first payment of the day)
        try:
            with transaction.atomic():
                return ReferenceBatch.objects.create(
                    practice=practice,
                    date=date,
                    description=ReferenceBatch.POPS_DESCRIPTION,
                    user=system_user(practice),
                    is_pops=True,
                )
        except IntegrityError:
            continue  # another payment opened it a moment ago: join that one
    raise RuntimeError("could not open or find the POPS batch")  # pragma: no cover


def _open_pops_batch(practice_id: int, date: dt.date) -> ReferenceBatch | None:
    """The open POPS batch of the date, held open until the caller's transaction ends: a FOR
    KEY SHARE row lock, which close_batch's FOR UPDATE waits for and other payments do not (no
    hot row). A batch being closed makes this wait, then find no open batch (PostgreSQL checks
    the row again once the lock is free). On SQLite the write lock every transaction takes at
    BEGIN already does it."""
    return rows.get(
        ReferenceBatch,
        "practice_id = %s AND date = %s AND is_pops = %s AND status = %s",
        [practice_id, connection.ops.adapt_datefield_value(date), True, ReferenceBatch.Status.OPEN],
        lock="key share",
    )


@transaction.atomic
def close_batch(batch: ReferenceBatch, *, actor: audit.Actor) -> ReferenceBatch:
    batch = ReferenceBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status != ReferenceBatch.Status.OPEN:
        raise BatchError(f"the batch is {batch.get_status_display().lower()}, not open")
    batch.status, batch.closed_at = ReferenceBatch.Status.CLOSED, clock.now()
    batch.save(update_fields=["status", "closed_at"])
    audit.record(
        "ledger.batch.closed",
        actor=actor,
        practice=batch.practice,
        resource=("reference_batch", str(batch.pk)),
    )
    return batch


@transaction.atomic
def reopen_batch(batch: ReferenceBatch, *, actor: audit.Actor) -> ReferenceBatch:
    batch = ReferenceBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status != ReferenceBatch.Status.CLOSED:
        raise BatchError(f"the batch is {batch.get_status_display().lower()}, not closed")
    batch.status, batch.closed_at = ReferenceBatch.Status.OPEN, None
    try:
        with transaction.atomic():
            batch.save(update_fields=["status", "closed_at"])
    except IntegrityError:
        raise BatchError(
            "another POPS batch of that date is open; close it before reopening this one"
        ) from None
    audit.record(
        "ledger.batch.reopened",
        actor=actor,
        practice=batch.practice,
        resource=("reference_batch", str(batch.pk)),
    )
    return batch


@dataclass(frozen=True)
class BatchTotals:
    batch: ReferenceBatch
    receipts: int
    payments_cents: int
    refunds_cents: int

    @property
    def total_cents(self) -> int:
        return self.payments_cents - self.refunds_cents


def batches_of(practice: Practice, date: dt.date) -> list[BatchTotals]:
    """A date's batches with their receipt counts and totals (voided receipts left out):
    computed, never kept in a counter row that every payment would have to lock."""
    paid = Q(receipts__status=Receipt.Status.PAID)
    rows = (
        ReferenceBatch.objects.filter(practice=practice, date=date)
        .select_related("user")
        .annotate(
            receipt_count=Count("receipts", filter=paid),
            payments=Sum(
                "receipts__amount_cents", filter=paid & Q(receipts__type=Receipt.Type.PAYMENT)
            ),
            refunds=Sum(
                "receipts__amount_cents", filter=paid & Q(receipts__type=Receipt.Type.REFUND)
            ),
        )
        .order_by("opened_at", "pk")
    )
    return [
        BatchTotals(row, row.receipt_count, row.payments or 0, row.refunds or 0) for row in rows
    ]
