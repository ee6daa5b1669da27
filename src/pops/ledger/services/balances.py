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

The figures come from one statement of aggregates over one guarantor's rows (indexed), so the
cost does not grow with the size of the practice. `combine` is the pure formula, shared by the
per-guarantor and the practice-wide computations.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Case, F, Q, Sum, Value, When
from django.db.models.lookups import GreaterThan

from pops.ledger.models import (
    Application,
    Encounter,
    Guarantor,
    Receipt,
    ServiceLine,
    Statement,
)

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


@cache
def facts_sql() -> str:
    """One statement for all of a guarantor's facts: a round trip, and no query to build per
    call (the ORM spent more time composing four queries than the database answering them).
    A larger statement may hold it as a subquery, over the parameters `facts_params` names;
    `facts_of` reads its row."""
    line, encounter = ServiceLine._meta.db_table, Encounter._meta.db_table
    receipt, application = Receipt._meta.db_table, Application._meta.db_table
    statement = Statement._meta.db_table
    owed = (
        "(sl.billed_cents - sl.adjusted_cents - sl.insurance_paid_cents"
        " - sl.pending_insurance_cents - sl.patient_paid_cents)"
    )
    remaining = f"CASE WHEN {owed} > 0 THEN {owed} ELSE 0 END"
    is_open = "e.collection_agency_id IS NULL"
    later = "(st.statement_date IS NULL OR {column} > st.statement_date)"
    # Only table names from the models and the constant fragments above are interpolated; every
    # value is a parameter.
    return f"""
        WITH st AS (
            SELECT statement_date, statement_balance_cents, amount_due_cents
            FROM {statement} WHERE guarantor_id = %(g)s
            ORDER BY statement_date DESC, id DESC LIMIT 1
        )
        SELECT st.statement_date, st.statement_balance_cents, st.amount_due_cents,
               lines.open, lines.collections, lines.new,
               money.payments, money.refunds, money.payments_since, money.refunds_since,
               applied.total
        FROM (SELECT 1 AS one) base
        LEFT JOIN st ON 1 = 1
        CROSS JOIN (
            SELECT COALESCE(SUM(CASE WHEN {is_open} THEN {remaining} ELSE 0 END), 0) AS open,
                   COALESCE(SUM(CASE WHEN {is_open} THEN 0 ELSE {remaining} END), 0)
                       AS collections,
                   COALESCE(SUM(CASE WHEN {is_open} AND {later.format(column="e.service_date")}
                                THEN {remaining} ELSE 0 END), 0) AS new
            FROM {line} sl
            JOIN {encounter} e ON e.id = sl.encounter_id
            LEFT JOIN st ON 1 = 1
            WHERE e.guarantor_id = %(g)s
        ) lines
        CROSS JOIN (
            SELECT COALESCE(SUM(CASE WHEN r.type = %(payment)s THEN r.amount_cents ELSE 0 END), 0)
                       AS payments,
                   COALESCE(SUM(CASE WHEN r.type = %(refund)s THEN r.amount_cents ELSE 0 END), 0)
                       AS refunds,
                   COALESCE(SUM(CASE WHEN r.type = %(payment)s
                                AND st.statement_date IS NOT NULL AND r.date > st.statement_date
                                THEN r.amount_cents ELSE 0 END), 0) AS payments_since,
                   COALESCE(SUM(CASE WHEN r.type = %(refund)s
                                AND st.statement_date IS NOT NULL AND r.date > st.statement_date
                                THEN r.amount_cents ELSE 0 END), 0) AS refunds_since
            FROM {receipt} r
            LEFT JOIN st ON 1 = 1
            WHERE r.guarantor_id = %(g)s AND r.status = %(paid)s
        ) money
        CROSS JOIN (
            SELECT COALESCE(SUM(amount_cents), 0) AS total
            FROM {application} WHERE guarantor_id = %(g)s
        ) applied
    """  # noqa: S608


def facts_params(guarantor_id: int) -> dict[str, int | str]:
    return {
        "g": guarantor_id,
        "payment": Receipt.Type.PAYMENT.value,
        "refund": Receipt.Type.REFUND.value,
        "paid": Receipt.Status.PAID.value,
    }


_FACTS_COLUMNS = 11  # the columns of a row of `facts_sql`


def facts_of(row: Sequence[Any]) -> BalanceFacts:
    """The facts in a row of `facts_sql`."""
    (date, statement_balance, amount_due, open_, collections, new) = row[:6]
    (payments, refunds, payments_since, refunds_since, applied) = row[6:_FACTS_COLUMNS]
    statement = None
    if date is not None:
        if isinstance(date, str):  # SQLite answers dates as ISO text
            date = dt.date.fromisoformat(date)
        statement = LatestStatement(date, statement_balance, amount_due)
    return BalanceFacts(
        open_remaining=int(open_),
        collection_remaining=int(collections),
        new_charges_remaining=int(new),
        payments=int(payments),
        refunds=int(refunds),
        applied=int(applied),
        net_paid_since_statement=int(payments_since) - int(refunds_since),
        statement=statement,
    )


def balance_facts(guarantor_id: int) -> BalanceFacts:
    """The aggregates over one guarantor's rows, in one statement (indexed by guarantor)."""
    with connection.cursor() as cursor:
        cursor.execute(facts_sql(), facts_params(guarantor_id))
        row = cursor.fetchone()
    return facts_of(row)


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
