"""Closing and reopening reference batches (`pops.ledger.services.batches`): a closed batch is
never posted into, so a later POPS payment that date opens a new one; a closed batch reopens
only while no other POPS batch of its date is open, and then takes that date's later payments.
Each close and reopen is audited; a refused one changes nothing."""

import datetime as dt
import uuid

import pytest

from pops.core import clock
from pops.core.audit import Actor
from pops.core.models import AuditEvent
from pops.groups.services import prepare_practice
from pops.ledger.models import Guarantor, Practice, Receipt, ReferenceBatch
from pops.ledger.services.batches import BatchError, close_batch, reopen_batch
from pops.payments.models import PaymentAttempt
from pops.payments.services.attempts import PaymentRequest, pay
from tests.conftest import run_import
from tests.ledger import row_counts
from tests.payments.conftest import card_token
from tests.test_import_documents import small_document

pytestmark = pytest.mark.django_db

ACTOR = Actor.command("tests")


@pytest.fixture
def practice() -> Practice:
    document = small_document()
    document["encounters"][0]["lines"][0]["billed"] = "500.00"  # 2010 owes $400.00
    practice = run_import(document).practice
    prepare_practice(practice, actor=ACTOR)
    return practice


def pay_today(cents: int = 1_000) -> Receipt:
    """A POPS payment by guarantor 2010, answered as its Paid receipt."""
    request = PaymentRequest(
        Guarantor.objects.get(external_id="2010"),
        cents,
        uuid.uuid4().hex,
        "f",
        ACTOR,
        payment_token=card_token(),
    )
    attempt = pay(request)
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert attempt.receipt is not None
    return attempt.receipt


def fresh(batch: ReferenceBatch) -> ReferenceBatch:
    return ReferenceBatch.objects.get(pk=batch.pk)


def batch_events(action: str) -> list[tuple[str, str, str, int | None]]:
    return list(
        AuditEvent.objects.filter(action=action)
        .order_by("pk")
        .values_list("resource_type", "resource_id", "actor_label", "practice_id")
    )


# --- Closing -------------------------------------------------------------------------------------


def test_closing_a_batch_closes_it_and_audits_who_did(practice):
    batch = pay_today().reference_batch

    closed = close_batch(batch, actor=ACTOR)

    assert fresh(batch).status == closed.status == ReferenceBatch.Status.CLOSED
    assert fresh(batch).closed_at is not None
    assert batch_events("ledger.batch.closed") == [
        ("reference_batch", str(batch.pk), "pops tests", practice.pk)
    ]


def test_a_closed_batch_is_never_posted_into_a_later_payment_opens_a_new_one(practice):
    first = pay_today()
    close_batch(first.reference_batch, actor=ACTOR)

    later = pay_today()

    assert later.reference_batch_id != first.reference_batch_id
    assert later.date == first.date == clock.local_date(practice.time_zone)
    assert fresh(later.reference_batch).status == ReferenceBatch.Status.OPEN
    assert list(first.reference_batch.receipts.values_list("pk", flat=True)) == [first.pk]


def test_a_batch_that_is_not_open_cannot_be_closed(practice):
    batch = close_batch(pay_today().reference_batch, actor=ACTOR)
    before = row_counts()

    with pytest.raises(BatchError, match="the batch is closed, not open"):
        close_batch(batch, actor=ACTOR)

    assert row_counts() == before
    assert fresh(batch).closed_at == batch.closed_at


# --- Reopening -----------------------------------------------------------------------------------


def test_reopening_a_closed_batch_opens_it_and_audits_who_did(practice):
    batch = close_batch(pay_today().reference_batch, actor=ACTOR)

    reopened = reopen_batch(batch, actor=ACTOR)

    assert (reopened.status, reopened.closed_at) == (ReferenceBatch.Status.OPEN, None)
    assert (fresh(batch).status, fresh(batch).closed_at) == (ReferenceBatch.Status.OPEN, None)
    assert batch_events("ledger.batch.reopened") == [
        ("reference_batch", str(batch.pk), "pops tests", practice.pk)
    ]


def test_an_open_batch_cannot_be_reopened(practice):
    batch = pay_today().reference_batch
    before = row_counts()

    with pytest.raises(BatchError, match="the batch is open, not closed"):
        reopen_batch(batch, actor=ACTOR)

    assert row_counts() == before


def test_an_archived_batch_cannot_be_reopened(practice):
    batch = pay_today().reference_batch
    ReferenceBatch.objects.filter(pk=batch.pk).update(status=ReferenceBatch.Status.ARCHIVED)
    before = row_counts()

    with pytest.raises(BatchError, match="the batch is archived, not closed"):
        reopen_batch(batch, actor=ACTOR)

    assert row_counts() == before
    assert fresh(batch).status == ReferenceBatch.Status.ARCHIVED


def test_reopening_is_refused_while_another_pops_batch_of_that_date_is_open(practice):
    first = close_batch(pay_today().reference_batch, actor=ACTOR)
    second = pay_today().reference_batch
    before = row_counts()

    with pytest.raises(BatchError) as refused:
        reopen_batch(first, actor=ACTOR)

    assert str(refused.value) == (
        "another POPS batch of that date is open; close it before reopening this one"
    )
    assert row_counts() == before
    assert (fresh(first).status, fresh(first).closed_at) == (
        ReferenceBatch.Status.CLOSED,
        first.closed_at,
    )
    assert fresh(second).status == ReferenceBatch.Status.OPEN
    assert batch_events("ledger.batch.reopened") == []


def test_once_the_other_is_closed_the_batch_reopens_and_takes_that_dates_payments(practice):
    first = close_batch(pay_today().reference_batch, actor=ACTOR)
    second = pay_today().reference_batch
    close_batch(second, actor=ACTOR)

    reopen_batch(first, actor=ACTOR)
    later = pay_today()

    assert later.reference_batch_id == first.pk
    assert fresh(second).status == ReferenceBatch.Status.CLOSED
    assert ReferenceBatch.objects.count() == 2
    assert first.receipts.count() == 2


def test_only_an_open_pops_batch_of_the_same_date_blocks_reopening(practice):
    first = close_batch(pay_today().reference_batch, actor=ACTOR)
    for date, is_pops in ((first.date - dt.timedelta(days=1), True), (first.date, False)):
        ReferenceBatch.objects.create(
            practice=practice, date=date, description="Front desk", is_pops=is_pops
        )

    assert reopen_batch(first, actor=ACTOR).status == ReferenceBatch.Status.OPEN
