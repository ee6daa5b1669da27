"""Replay of the append-only ledger entries, and its comparison with the stored figures.

DESIGN.md rule 6: any stored running figure must equal a replay of the entries. The replay
reads only `LedgerEntry` rows and derives, by the accounts each entry moves money between:

- a line's responsibility  = net of entries between ar(line) and charges (debit ar adds);
- a line's patient paid    = net of entries between unapplied and ar(line) (credit ar adds),
  kept per (receipt, line) as the applications;
- a receipt's net money    = net of entries between cash and unapplied (debit cash adds: a
  payment; credit cash subtracts: a refund or a reversed payment);
- a guarantor's unapplied  = net of the unapplied account (credits add, debits subtract).

Reversals need no special case: a reversing entry swaps the accounts, so it cancels the entry it
reverses. A reversal undoes all of its entry, except that an application entry may be undone in
parts (each refund takes part of a payment off a line), as long as its reversals add up to no
more than the entry.

The stored figures are the ones the balances are computed from: the line amounts (billed -
adjusted - insurance paid - pending insurance), `ServiceLine.patient_paid_cents`, the
Application rows, and the Paid receipts.

The comparison walks a practice in chunks of lines, receipts and guarantors (keyset pages), so
its memory does not grow with the size of the practice.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.db.models import Count, F, Max, Model, Q, QuerySet, Sum

from pops.core.money import format_amount
from pops.ledger.models import (
    Account,
    Application,
    Guarantor,
    LedgerEntry,
    Receipt,
    ServiceLine,
)

CHUNK = 2000

AR, CHARGES, CASH, UNAPPLIED = Account.PATIENT_AR, Account.CHARGES, Account.CASH, Account.UNAPPLIED

# The accounts each kind of entry may move money between, in either direction (a reversal swaps
# them), and the references it must carry.
_KIND_RULES: dict[str, tuple[frozenset[str], Q]] = {
    LedgerEntry.Kind.CHARGE: (frozenset({AR, CHARGES}), Q(line__isnull=False)),
    LedgerEntry.Kind.PAYMENT: (frozenset({CASH, UNAPPLIED}), Q(receipt__isnull=False)),
    LedgerEntry.Kind.REFUND: (frozenset({CASH, UNAPPLIED}), Q(receipt__isnull=False)),
    LedgerEntry.Kind.APPLICATION: (
        frozenset({AR, UNAPPLIED}),
        Q(line__isnull=False, receipt__isnull=False),
    ),
}


@dataclass
class Figures:
    """Running figures keyed by row id, from a replay of the entries or from the stored rows.
    A missing key means 0."""

    responsibility: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    patient_paid: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    applied: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    received: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    unapplied: dict[int, int] = field(default_factory=lambda: defaultdict(int))


@dataclass(frozen=True)
class EntryTotal:
    """The sum of entries with the same accounts and references (one entry, or many)."""

    debit: str
    credit: str
    amount: int
    line_id: int | None
    receipt_id: int | None
    guarantor_id: int


def fold(entries: Iterable[EntryTotal]) -> Figures:
    """Replay entries into running figures (pure: no database). Entries between accounts no
    rule knows are left out here; `entry_problems` reports them."""
    figures = Figures()
    for e in entries:
        accounts = {e.debit, e.credit}
        if accounts == {AR, CHARGES} and e.line_id is not None:
            figures.responsibility[e.line_id] += e.amount if e.debit == AR else -e.amount
        elif accounts == {AR, UNAPPLIED} and e.line_id is not None:
            onto_line = e.amount if e.credit == AR else -e.amount
            figures.patient_paid[e.line_id] += onto_line
            if e.receipt_id is not None:
                figures.applied[(e.receipt_id, e.line_id)] += onto_line
            figures.unapplied[e.guarantor_id] -= onto_line
        elif accounts == {CASH, UNAPPLIED}:
            received = e.amount if e.debit == CASH else -e.amount
            if e.receipt_id is not None:
                figures.received[e.receipt_id] += received
            figures.unapplied[e.guarantor_id] += received
    return figures


def replay(entries: QuerySet[LedgerEntry]) -> Figures:
    """Replay the given entries; the database sums entries that share accounts and references."""
    totals = (
        entries.order_by()
        .values_list("debit", "credit", "line_id", "receipt_id", "guarantor_id")
        .annotate(total=Sum("amount_cents"))
    )
    return fold(
        EntryTotal(debit, credit, total, line_id, receipt_id, guarantor_id)
        for debit, credit, line_id, receipt_id, guarantor_id, total in totals
    )


@dataclass(frozen=True)
class Difference:
    """One stored figure that a replay of the entries does not give, or an entry that breaks
    the ledger's rules (then `stored` and `replayed` are None)."""

    subject: str
    figure: str
    stored: int | None = None
    replayed: int | None = None

    def __str__(self) -> str:
        if self.stored is None or self.replayed is None:
            return f"{self.subject}: {self.figure}"
        return (
            f"{self.subject}: {self.figure} stored {format_amount(self.stored)}, "
            f"replayed {format_amount(self.replayed)}"
        )


def _pages(queryset: QuerySet) -> Iterator[list[int]]:
    """Row ids of `queryset` in pages of CHUNK, by keyset (no offset scans)."""
    last = 0
    while True:
        page = list(
            queryset.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:CHUNK]
        )
        if not page:
            return
        yield page
        if len(page) < CHUNK:
            return  # the last page: no need to ask for the next one
        last = page[-1]


def _compare(
    figure: str,
    stored: dict,
    replayed: dict,
    keys: Iterable,
    subject: Callable[[list], dict],
) -> list[Difference]:
    differing = [key for key in keys if stored.get(key, 0) != replayed.get(key, 0)]
    if not differing:
        return []
    names = subject(differing)
    return [
        Difference(names.get(key, str(key)), figure, stored.get(key, 0), replayed.get(key, 0))
        for key in differing
    ]


def _line_names(line_ids: Iterable[int]) -> dict[int, str]:
    return {
        pk: f"line {number}-{line}"
        for pk, number, line in ServiceLine.objects.filter(pk__in=list(line_ids)).values_list(
            "pk", "encounter__number", "line"
        )
    }


def _receipt_names(receipt_ids: Iterable[int]) -> dict[int, str]:
    return {
        pk: f"receipt {number}"
        for pk, number in Receipt.objects.filter(pk__in=list(receipt_ids)).values_list(
            "pk", "number"
        )
    }


def _guarantor_names(guarantor_ids: Iterable[int]) -> dict[int, str]:
    return {
        pk: f"guarantor {external_id}"
        for pk, external_id in Guarantor.objects.filter(pk__in=list(guarantor_ids)).values_list(
            "pk", "external_id"
        )
    }


def _application_names(keys: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
    receipts = _receipt_names(receipt for receipt, _ in keys)
    lines = _line_names(line for _, line in keys)
    return {(r, ln): f"{receipts.get(r, r)} on {lines.get(ln, ln)}" for r, ln in keys}


def _stored_lines(line_ids: list[int]) -> Figures:
    stored = Figures()
    for pk, billed, adjusted, insurance, pending, paid in ServiceLine.objects.filter(
        pk__in=line_ids
    ).values_list(
        "pk",
        "billed_cents",
        "adjusted_cents",
        "insurance_paid_cents",
        "pending_insurance_cents",
        "patient_paid_cents",
    ):
        stored.responsibility[pk] = billed - adjusted - insurance - pending
        stored.patient_paid[pk] = paid
    for receipt_id, line_id, amount in Application.objects.filter(line_id__in=line_ids).values_list(
        "receipt_id", "line_id", "amount_cents"
    ):
        stored.applied[(receipt_id, line_id)] += amount
    return stored


def _compare_lines(line_ids: list[int]) -> list[Difference]:
    stored = _stored_lines(line_ids)
    replayed = replay(LedgerEntry.objects.filter(line_id__in=line_ids))
    return [
        *_compare(
            "responsibility", stored.responsibility, replayed.responsibility, line_ids, _line_names
        ),
        *_compare(
            "patient paid", stored.patient_paid, replayed.patient_paid, line_ids, _line_names
        ),
        *_compare(
            "applied",
            stored.applied,
            replayed.applied,
            sorted(stored.applied.keys() | replayed.applied.keys()),
            _application_names,
        ),
    ]


def _net(kind: str, amount: int) -> int:
    return amount if kind == Receipt.Type.PAYMENT else -amount


def _compare_receipts(receipt_ids: list[int]) -> list[Difference]:
    stored = {
        pk: _net(kind, amount) if status == Receipt.Status.PAID else 0
        for pk, kind, status, amount in Receipt.objects.filter(pk__in=receipt_ids).values_list(
            "pk", "type", "status", "amount_cents"
        )
    }
    replayed = replay(LedgerEntry.objects.filter(receipt_id__in=receipt_ids)).received
    return _compare("money received", stored, replayed, receipt_ids, _receipt_names)


def _compare_guarantors(guarantor_ids: list[int]) -> list[Difference]:
    stored: dict[int, int] = defaultdict(int)
    for gid, kind, total in (
        Receipt.objects.filter(guarantor_id__in=guarantor_ids, status=Receipt.Status.PAID)
        .order_by()
        .values_list("guarantor_id", "type")
        .annotate(total=Sum("amount_cents"))
    ):
        stored[gid] += _net(kind, total)
    for gid, total in (
        Application.objects.filter(guarantor_id__in=guarantor_ids)
        .order_by()
        .values_list("guarantor_id")
        .annotate(total=Sum("amount_cents"))
    ):
        stored[gid] -= total
    unapplied = Q(debit=UNAPPLIED) | Q(credit=UNAPPLIED)
    replayed = replay(LedgerEntry.objects.filter(unapplied, guarantor_id__in=guarantor_ids))
    return _compare("unapplied funds", stored, replayed.unapplied, guarantor_ids, _guarantor_names)


def entry_problems(practice_id: int) -> list[Difference]:
    """Entries that break the ledger's rules: accounts or references their kind does not
    allow, reversals that do not mirror the entry they reverse (an application entry may be
    reversed in parts), entries reversed twice or, in parts, for more than their amount."""
    entries = LedgerEntry.objects.filter(practice_id=practice_id)
    allowed = Q()
    for kind, (accounts, references) in _KIND_RULES.items():
        allowed |= Q(kind=kind, debit__in=accounts, credit__in=accounts) & references
    problems = [
        Difference(f"entry {pk}", f"a {kind} entry cannot move money from {credit} to {debit}")
        for pk, kind, debit, credit in entries.exclude(allowed)
        .order_by("pk")
        .values_list("pk", "kind", "debit", "credit")
    ]
    partial = Q(kind=LedgerEntry.Kind.APPLICATION, reverses__amount_cents__gt=F("amount_cents"))
    mirrored = Q(
        reverses__kind=F("kind"),
        reverses__debit=F("credit"),
        reverses__credit=F("debit"),
        reverses__guarantor_id=F("guarantor_id"),
    ) & (Q(reverses__amount_cents=F("amount_cents")) | partial)
    same_line = Q(line__isnull=True, reverses__line__isnull=True) | Q(reverses__line=F("line"))
    same_receipt = Q(receipt__isnull=True, reverses__receipt__isnull=True) | Q(
        reverses__receipt=F("receipt")
    )
    problems += [
        Difference(f"entry {pk}", f"reverses entry {reversed_pk} but does not mirror it")
        for pk, reversed_pk in entries.filter(reverses__isnull=False)
        .exclude(mirrored & same_line & same_receipt)
        .order_by("pk")
        .values_list("pk", "reverses_id")
    ]
    reversals = entries.filter(reverses__isnull=False).order_by()
    problems += [
        Difference(f"entry {reversed_pk}", f"is reversed {count} times")
        for reversed_pk, count in reversals.exclude(reverses__kind=LedgerEntry.Kind.APPLICATION)
        .values_list("reverses_id")
        .annotate(count=Count("pk"))
        .filter(count__gt=1)
        .order_by("reverses_id")
    ]
    problems += [
        Difference(f"entry {reversed_pk}", "is reversed for more than its amount")
        for reversed_pk in reversals.filter(reverses__kind=LedgerEntry.Kind.APPLICATION)
        .values_list("reverses_id")
        .annotate(total=Sum("amount_cents"), entry=Max("reverses__amount_cents"))
        .filter(total__gt=F("entry"))
        .order_by("reverses_id")
        .values_list("reverses_id", flat=True)
    ]
    return problems


def differences(practice_id: int) -> list[Difference]:
    """Every stored figure of the practice that a replay of its entries does not give, and
    every entry that breaks the ledger's rules. Empty when the ledger is consistent."""
    found = entry_problems(practice_id)
    checks: list[tuple[type[Model], Callable[[list[int]], list[Difference]]]] = [
        (ServiceLine, _compare_lines),
        (Receipt, _compare_receipts),
        (Guarantor, _compare_guarantors),
    ]
    for model, compare in checks:
        for page in _pages(model._default_manager.filter(practice_id=practice_id)):
            found += compare(page)
    return found
