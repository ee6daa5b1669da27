"""The row locks of a guarantor's money, taken in one order by every writer."""

from pops.core import rows
from pops.ledger.models import Guarantor, Receipt

_LOCK_GUARANTOR = "SELECT id FROM ledger_guarantor WHERE id = %s"


def lock_guarantor(guarantor_id: int) -> None:
    """Inside a transaction: lock the guarantor's row, the first lock of every money writer."""
    rows.fetch_one(_LOCK_GUARANTOR + rows.row_lock(), [guarantor_id])


def lock_receipt(receipt_id: int) -> Receipt:
    """Inside a transaction: lock the receipt's guarantor row, then the receipt's row (the order
    payments, voids and refunds all follow, so they never deadlock on each other), and answer
    the receipt as it is now, with its guarantor and practice."""
    guarantor_id = Receipt.objects.filter(pk=receipt_id).values_list("guarantor_id", flat=True)
    Guarantor.objects.select_for_update().filter(pk__in=guarantor_id).first()  # one query
    Receipt.objects.select_for_update().filter(pk=receipt_id).first()
    return Receipt.objects.select_related("guarantor__practice").get(pk=receipt_id)
