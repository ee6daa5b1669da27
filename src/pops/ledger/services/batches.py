"""Reference batches. POPS's own: the first POPS receipt of a practice-local date opens one
("API Payments", user "POPS"); later ones that date join it; a closed batch is never posted
into, so a later POPS receipt that date opens a new one. Never closed automatically."""

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q, Sum

from pops.core import audit, clock
from pops.ledger.models import Practice, Receipt, ReferenceBatch


class BatchError(Exception):
    """A batch cannot be changed that way; the message says why."""


def pops_batch(practice: Practice, date: dt.date) -> ReferenceBatch:
    """The open POPS batch of `date`, opened now if there is none. Call inside the posting
    transaction. A partial unique index keeps it to one open batch per practice and date:
    when two first-of-day payments race, the loser's insert fails and it joins the winner's."""
    from pops.groups.services import system_user

    for _ in range(3):
        found = ReferenceBatch.objects.filter(
            practice=practice, date=date, is_pops=True, status=ReferenceBatch.Status.OPEN
        ).first()
        if found is not None and _held_open(found):
            return found  # (one closed a moment ago is not: open a new one)
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


def _held_open(batch: ReferenceBatch) -> bool:
    """Whether `batch` is still open, holding it so until the caller's transaction ends: a
    FOR KEY SHARE row lock, which close_batch's FOR UPDATE waits for and other payments do not
    (no hot row). On SQLite the write lock every transaction takes at BEGIN already does it."""
    if connection.vendor != "postgresql":
        return True
    table = connection.ops.quote_name(ReferenceBatch._meta.db_table)
    sql = f"SELECT status FROM {table} WHERE id = %s FOR KEY SHARE"  # noqa: S608 (our own table)
    with connection.cursor() as cursor:
        cursor.execute(sql, [batch.pk])
        row = cursor.fetchone()
    return row is not None and row[0] == ReferenceBatch.Status.OPEN


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
