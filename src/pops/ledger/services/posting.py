"""Posting patient money onto service lines, and taking it off again.

Callers hold the guarantor's row lock (`select_for_update`) inside their transaction: every
writer of a guarantor's money takes that lock first, so check-then-post is atomic. Line figures
change through F() expressions, never read-modify-write. Every movement is a LedgerEntry.
"""

from dataclasses import dataclass

from django.db.models import F, Q, Sum

from pops.core import rows
from pops.ledger.models import Account, Application, LedgerEntry, Receipt, ServiceLine

Kind = LedgerEntry.Kind


def _entry(receipt: Receipt, kind: str, debit: str, credit: str, amount: int, **kw: object):
    return LedgerEntry(
        practice_id=receipt.practice_id,
        guarantor_id=receipt.guarantor_id,
        receipt=receipt,
        kind=kind,
        debit=debit,
        credit=credit,
        amount_cents=amount,
        **kw,
    )


_OPEN_LINES_OLDEST_FIRST = """
    SELECT line.id, line.billed_cents - line.adjusted_cents - line.insurance_paid_cents
                    - line.pending_insurance_cents - line.patient_paid_cents AS remaining,
           encounter.facility_id, encounter.provider_id
    FROM ledger_serviceline line
    JOIN ledger_encounter encounter ON encounter.id = line.encounter_id
    WHERE encounter.guarantor_id = %s AND encounter.collection_agency_id IS NULL
      AND line.billed_cents - line.adjusted_cents - line.insurance_paid_cents
          - line.pending_insurance_cents - line.patient_paid_cents > 0
    ORDER BY encounter.service_date, encounter.number_numeric NULLS LAST, encounter.number,
             line.line
"""


def open_lines_oldest_first(guarantor_id: int) -> list[tuple[int, int, int, int]]:
    """(line id, remaining, facility id, provider id) of the guarantor's payable lines, oldest
    first: by service date, then encounter number (numerically where it is a number), then
    line. Collection lines are never payable. (Hand-written: every payment posts through it.)"""
    return rows.fetch_all(_OPEN_LINES_OLDEST_FIRST, [guarantor_id])


def post_payment(
    receipt: Receipt, *, auto_post: bool, lines: list[tuple[int, int, int, int]] | None = None
) -> list[Application]:
    """Record a payment receipt's money, and with Auto-Post apply it to the oldest open lines
    (`lines`, when the caller has read them already under the guarantor's lock, so that its
    writes and these can be held together; else read now); what no line takes stays
    unapplied."""
    entries = [_entry(receipt, Kind.PAYMENT, Account.CASH, Account.UNAPPLIED, receipt.amount_cents)]
    applications: list[Application] = []
    left = receipt.amount_cents if auto_post else 0
    if left and lines is None:
        lines = open_lines_oldest_first(receipt.guarantor_id)
    for line_id, remaining, _, _ in lines or () if left else ():
        amount = min(left, remaining)
        applications.append(
            Application(
                practice_id=receipt.practice_id,
                receipt=receipt,
                line_id=line_id,
                guarantor_id=receipt.guarantor_id,
                amount_cents=amount,
            )
        )
        entries.append(
            _entry(
                receipt,
                Kind.APPLICATION,
                Account.UNAPPLIED,
                Account.PATIENT_AR,
                amount,
                line_id=line_id,
            )
        )
        left -= amount
        if not left:
            break
    with rows.together():  # (a caller's own block holds them on, with its closing writes)
        rows.insert(*applications)
        rows.insert(*entries)
        for application in applications:
            rows.write(_ADD_PATIENT_PAID, [application.amount_cents, application.line_id])
    return applications


_ADD_PATIENT_PAID = (
    "UPDATE ledger_serviceline SET patient_paid_cents = patient_paid_cents + %s WHERE id = %s"
)


def _live_entries(receipt: Receipt) -> list[LedgerEntry]:
    """The receipt's entries that no entry reverses in full yet, with what is left of each."""
    entries = list(LedgerEntry.objects.filter(receipt=receipt).order_by("pk"))
    reversed_cents: dict[int, int] = {}
    for entry in entries:
        if entry.reverses_id is not None:
            reversed_cents[entry.reverses_id] = (
                reversed_cents.get(entry.reverses_id, 0) + entry.amount_cents
            )
    live = []
    for entry in entries:
        if entry.reverses_id is None:
            left = entry.amount_cents - reversed_cents.get(entry.pk, 0)
            if left > 0:
                entry.amount_cents = left  # what is left to reverse (not saved)
                live.append(entry)
    return live


def _reverse(entry: LedgerEntry, amount: int) -> LedgerEntry:
    """An entry undoing `amount` of `entry` (all of it, or part of it for a partial refund)."""
    return LedgerEntry(
        practice_id=entry.practice_id,
        guarantor_id=entry.guarantor_id,
        line_id=entry.line_id,
        receipt_id=entry.receipt_id,
        kind=entry.kind,
        debit=entry.credit,
        credit=entry.debit,
        amount_cents=amount,
        reverses_id=entry.pk,
    )


def reverse_receipt(receipt: Receipt) -> None:
    """Undo everything a payment receipt posted (a void): reversing entries for what is still
    live of each of its entries, its applications removed and its lines' patient paid lowered.
    Safe to call twice (nothing is left to reverse the second time). A receipt that was refunded
    cannot be reversed: its refunds have already given part of its money back."""
    if Receipt.objects.filter(refund_of=receipt, status=Receipt.Status.PAID).exists():
        raise ValueError(f"receipt {receipt.number} has refunds and cannot be reversed")
    live = _live_entries(receipt)
    LedgerEntry.objects.bulk_create([_reverse(entry, entry.amount_cents) for entry in live])
    for application in Application.objects.filter(receipt=receipt):
        ServiceLine.objects.filter(pk=application.line_id).update(
            patient_paid_cents=F("patient_paid_cents") - application.amount_cents
        )
    Application.objects.filter(receipt=receipt).delete()


@dataclass(frozen=True)
class Refundable:
    """What of a payment receipt's money the ledger can still give back: `unapplied` (its money
    on no line, never more than the guarantor's Unapplied Funds) and `applied` (on its lines)."""

    unapplied: int
    applied: int

    @property
    def total(self) -> int:
        return self.unapplied + self.applied


def refundable(original: Receipt, *, leaving_out: Receipt | None = None) -> Refundable:
    """The receipt's money still in the ledger: what it received, less its refunds, split into
    what sits on lines (its applications) and what does not. The unapplied part is capped by
    the guarantor's Unapplied Funds, which a refund or an application made elsewhere (an
    import) may have lowered. `leaving_out` is a refund receipt not to count (the one being
    posted, already saved)."""
    if original.status != Receipt.Status.PAID or original.type != Receipt.Type.PAYMENT:
        return Refundable(0, 0)
    paid = Receipt.objects.filter(status=Receipt.Status.PAID)
    if leaving_out is not None and leaving_out.pk is not None:
        paid = paid.exclude(pk=leaving_out.pk)
    applied = Application.objects.filter(receipt=original).aggregate(
        total=Sum("amount_cents", default=0)
    )["total"]
    refunded = paid.filter(refund_of=original).aggregate(total=Sum("amount_cents", default=0))[
        "total"
    ]
    money = paid.filter(guarantor_id=original.guarantor_id).aggregate(
        payments=Sum("amount_cents", filter=Q(type=Receipt.Type.PAYMENT), default=0),
        refunds=Sum("amount_cents", filter=Q(type=Receipt.Type.REFUND), default=0),
    )
    guarantor_applied = Application.objects.filter(guarantor_id=original.guarantor_id).aggregate(
        total=Sum("amount_cents", default=0)
    )["total"]
    guarantor_unapplied = money["payments"] - money["refunds"] - guarantor_applied
    own_unapplied = original.amount_cents - refunded - applied
    return Refundable(max(0, min(own_unapplied, guarantor_unapplied)), applied)


def post_refund(refund: Receipt, original: Receipt) -> None:
    """Give `refund.amount_cents` of `original` back, as a Patient Refund receipt's entries.

    The money comes first out of what of `original` sits in no line (its unapplied part: an
    overpayment, or a payment left unposted), so a refund of a credit does not reopen paid
    visits; then off its lines, latest application first, by entries reversing part (or all)
    of the application entries; and it leaves as one refund entry (unapplied -> cash) on the
    refund receipt. Either way Current Balance rises by the refunded amount (as far as the
    guarantor's remaining credit does not still cover the open lines).

    Call it with the guarantor's row lock held, after saving `refund` (Paid, type refund,
    `refund_of=original`). Raises ValueError, writing nothing, when the ledger holds less of
    `original` than the refund asks for.
    """
    if refund.refund_of_id != original.pk or refund.type != Receipt.Type.REFUND:
        raise ValueError("a refund receipt must name the payment it refunds")
    available = refundable(original, leaving_out=refund)
    if refund.amount_cents <= 0 or refund.amount_cents > available.total:
        raise ValueError(
            f"receipt {original.number} has {available.total} cents left in the ledger, "
            f"not {refund.amount_cents}"
        )
    left = refund.amount_cents - min(refund.amount_cents, available.unapplied)
    entries: list[LedgerEntry] = []
    applications = {a.line_id: a for a in Application.objects.filter(receipt=original)}
    live = [e for e in _live_entries(original) if e.kind == Kind.APPLICATION]
    for entry in reversed(live):
        if not left:
            break
        amount = min(left, entry.amount_cents)
        line_id = entry.line_id
        assert line_id is not None  # application entries always name their line
        entries.append(_reverse(entry, amount))
        application = applications[line_id]
        application.amount_cents -= amount
        ServiceLine.objects.filter(pk=line_id).update(
            patient_paid_cents=F("patient_paid_cents") - amount
        )
        left -= amount
    entries.append(
        _entry(refund, Kind.REFUND, Account.UNAPPLIED, Account.CASH, refund.amount_cents)
    )
    LedgerEntry.objects.bulk_create(entries)
    for application in applications.values():
        if application.amount_cents <= 0:
            application.delete()
        else:
            application.save(update_fields=["amount_cents"])
