"""A guarantor's balances, exactly as DESIGN.md ("Product decisions") defines them.

Line remaining = billed - adjusted - insurance paid - pending insurance - patient payments applied,
never below 0.

- Collection Balance = remaining of lines whose encounter is in collections.
- Unapplied Funds    = patient payments - refunds - money applied to lines.
- Current Balance    = max(0, remaining of non-collection lines - Unapplied Funds).
- Statement Balance, Last Statement = the latest statement's statement balance and amount due.
- Amount Due = latest statement's amount due - net patient payments dated after the statement
  date (+ remaining of non-collection lines with a later service date, when the Group includes
  new charges), clamped to 0 .. Current Balance. Without a statement: 0, or those new charges.

The figures come from a handful of aggregate queries over one guarantor's rows (indexed), so the
cost does not grow with the size of the practice. `combine` is the pure formula, shared by the
per-guarantor and the practice-wide computations.
"""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Case, F, Q, Sum, Value, When
from django.db.models.lookups import GreaterThan

from pops.ledger.models import Application, Guarantor, Receipt, ServiceLine, Statement

_OWED = (
    F("billed_cents")
    - F("adjusted_cents")
    - F("insurance_paid_cents")
    - F("pending_insurance_cents")
    - F("patient_paid_cents")
)
# A line's Remaining Balance in SQL: what is owed, never below 0.
REMAINING = Case(When(GreaterThan(_OWED, 0), then=_OWED), default=Value(0))
OPEN = Q(encounter__collection_agency__isnull=True)
IN_COLLECTIONS = Q(encounter__collection_agency__isnull=False)


@dataclass(frozen=True)
class LatestStatement:
    statement_date: dt.date
    statement_balance_cents: int
    amount_due_cents: int


@dataclass(frozen=True)
class BalanceFacts:
    """The aggregates the formulas need, for one guarantor."""

    open_remaining: int
    collection_remaining: int
    new_charges_remaining: int  # open lines with a service date after the statement date
    payments: int
    refunds: int
    applied: int
    net_paid_since_statement: int  # payments - refunds dated after the statement date
    statement: LatestStatement | None

    @property
    def unapplied(self) -> int:
        return self.payments - self.refunds - self.applied


@dataclass(frozen=True)
class Balances:
    statement_balance: int | None
    last_statement: int | None
    amount_due: int
    current_balance: int
    unapplied_funds: int
    collection_balance: int


def current_balance(open_remaining: int, unapplied: int) -> int:
    return max(0, open_remaining - unapplied)


def combine(facts: BalanceFacts, *, include_new_charges: bool) -> Balances:
    """The formulas of DESIGN.md over the aggregated facts (pure: no database)."""
    current = current_balance(facts.open_remaining, facts.unapplied)
    new_charges = facts.new_charges_remaining if include_new_charges else 0
    if facts.statement is None:
        due = new_charges
    else:
        due = facts.statement.amount_due_cents - facts.net_paid_since_statement + new_charges
    stmt = facts.statement
    return Balances(
        statement_balance=stmt.statement_balance_cents if stmt else None,
        last_statement=stmt.amount_due_cents if stmt else None,
        amount_due=min(max(due, 0), current),
        current_balance=current,
        unapplied_funds=facts.unapplied,
        collection_balance=facts.collection_remaining,
    )


def latest_statement(guarantor_id: int) -> LatestStatement | None:
    row = (
        Statement.objects.filter(guarantor_id=guarantor_id)
        .order_by("-statement_date", "-id")
        .values_list("statement_date", "statement_balance_cents", "amount_due_cents")
        .first()
    )
    return LatestStatement(*row) if row else None


def balance_facts(guarantor_id: int) -> BalanceFacts:
    statement = latest_statement(guarantor_id)
    since = statement.statement_date if statement else None
    new_lines = OPEN & Q(encounter__service_date__gt=since) if since else OPEN
    lines = ServiceLine.objects.filter(encounter__guarantor_id=guarantor_id).aggregate(
        open=Sum(REMAINING, filter=OPEN, default=0),
        collections=Sum(REMAINING, filter=IN_COLLECTIONS, default=0),
        new=Sum(REMAINING, filter=new_lines, default=0),
    )
    payment = Q(type=Receipt.Type.PAYMENT)
    refund = Q(type=Receipt.Type.REFUND)
    sums = {
        "payments": Sum("amount_cents", filter=payment, default=0),
        "refunds": Sum("amount_cents", filter=refund, default=0),
    }
    if since:
        later = Q(date__gt=since)
        sums["payments_since"] = Sum("amount_cents", filter=payment & later, default=0)
        sums["refunds_since"] = Sum("amount_cents", filter=refund & later, default=0)
    money = Receipt.objects.filter(guarantor_id=guarantor_id, status=Receipt.Status.PAID).aggregate(
        **sums
    )
    applied = Application.objects.filter(guarantor_id=guarantor_id).aggregate(
        total=Sum("amount_cents", default=0)
    )["total"]
    return BalanceFacts(
        open_remaining=lines["open"],
        collection_remaining=lines["collections"],
        new_charges_remaining=lines["new"],
        payments=money["payments"],
        refunds=money["refunds"],
        applied=applied,
        net_paid_since_statement=money.get("payments_since", 0) - money.get("refunds_since", 0),
        statement=statement,
    )


def guarantor_balances(guarantor: Guarantor | int, *, include_new_charges: bool) -> Balances:
    """All balances of one guarantor. `include_new_charges` is the Group's option."""
    guarantor_id = guarantor if isinstance(guarantor, int) else guarantor.pk
    return combine(balance_facts(guarantor_id), include_new_charges=include_new_charges)


def current_balances(practice_id: int) -> dict[int, int]:
    """Current Balance of every guarantor of a practice that has open lines, in three queries."""
    open_by_guarantor = dict(
        ServiceLine.objects.filter(practice_id=practice_id)
        .filter(OPEN)
        .values_list("encounter__guarantor_id")
        .annotate(total=Sum(REMAINING))
        .values_list("encounter__guarantor_id", "total")
    )
    money: dict[int, int] = {}
    for gid, kind, total in (
        Receipt.objects.filter(practice_id=practice_id, status=Receipt.Status.PAID)
        .values_list("guarantor_id", "type")
        .annotate(total=Sum("amount_cents"))
        .values_list("guarantor_id", "type", "total")
    ):
        money[gid] = money.get(gid, 0) + (total if kind == Receipt.Type.PAYMENT else -total)
    for gid, total in (
        Application.objects.filter(practice_id=practice_id)
        .values_list("guarantor_id")
        .annotate(total=Sum("amount_cents"))
        .values_list("guarantor_id", "total")
    ):
        money[gid] = money.get(gid, 0) - total
    return {
        gid: current_balance(remaining, money.get(gid, 0))
        for gid, remaining in open_by_guarantor.items()
    }
