"""Property tests of the balance formulas: first on the pure `combine`, then on small random
ledgers that go in through the import and are checked against a model of DESIGN.md's formulas
computed straight from the document.

Examples come from the Hypothesis profile (see conftest.py: "ci" by default, HYPOTHESIS_PROFILE=dev
for fewer). The database tests run a fifth of them, each example inside a savepoint that is
rolled back, so one example never sees another's rows.
"""

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pops.core.money import parse_amount
from pops.ledger.models import Guarantor, Practice
from pops.ledger.services.balances import (
    BalanceFacts,
    Balances,
    LatestStatement,
    combine,
    current_balances,
    guarantor_balances,
)
from pops.ledger.services.replay import differences
from tests.ledger.conftest import (
    applied,
    document,
    encounter,
    line,
    load,
    patient_id,
    receipt,
    refund,
    statement,
)

# --- the pure formulas -----------------------------------------------------------------------

cents = st.integers(min_value=0, max_value=10**9)
any_cents = st.integers(min_value=-(10**9), max_value=10**9)
dates = st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2027, 12, 31))
statements_ = st.none() | st.builds(LatestStatement, dates, cents, cents)


@st.composite
def consistent_facts(draw: st.DrawFn) -> BalanceFacts:
    """Facts a real ledger can produce: no more refunded or applied than was paid, new charges
    part of the open lines, the money since the statement part of all the money."""
    open_remaining = draw(cents)
    applied_ = draw(cents)
    refunds = draw(cents)
    payments = applied_ + refunds + draw(cents)
    return BalanceFacts(
        open_remaining=open_remaining,
        collection_remaining=draw(cents),
        new_charges_remaining=draw(st.integers(0, open_remaining)),
        payments=payments,
        refunds=refunds,
        applied=applied_,
        net_paid_since_statement=draw(st.integers(0, payments)) - draw(st.integers(0, refunds)),
        statement=draw(statements_),
    )


# Whatever the figures, even ones no ledger produces, the clamps must hold.
arbitrary_facts = st.builds(
    BalanceFacts,
    open_remaining=any_cents,
    collection_remaining=any_cents,
    new_charges_remaining=any_cents,
    payments=any_cents,
    refunds=any_cents,
    applied=any_cents,
    net_paid_since_statement=any_cents,
    statement=statements_,
)


@given(facts=consistent_facts() | arbitrary_facts, include_new_charges=st.booleans())
def test_current_balance_is_at_least_amount_due_which_is_at_least_zero(facts, include_new_charges):
    figures = combine(facts, include_new_charges=include_new_charges)
    assert figures.current_balance >= figures.amount_due >= 0


@given(
    facts=consistent_facts() | arbitrary_facts,
    other_collections=any_cents,
    include_new_charges=st.booleans(),
)
def test_collection_lines_change_neither_current_balance_nor_amount_due(
    facts, other_collections, include_new_charges
):
    before = combine(facts, include_new_charges=include_new_charges)
    after = combine(
        dataclasses.replace(facts, collection_remaining=other_collections),
        include_new_charges=include_new_charges,
    )
    assert (after.current_balance, after.amount_due) == (before.current_balance, before.amount_due)
    assert after.collection_balance == other_collections


@given(facts=consistent_facts())
def test_unapplied_funds_are_payments_less_refunds_less_applications(facts):
    figures = combine(facts, include_new_charges=False)
    assert facts.payments - facts.refunds == facts.applied + figures.unapplied_funds
    assert figures.unapplied_funds >= 0
    assert figures.current_balance == max(0, facts.open_remaining - figures.unapplied_funds)


@given(facts=consistent_facts(), extra=st.integers(1, 10**6))
def test_a_payment_after_the_statement_never_raises_amount_due(facts, extra):
    paid_more = dataclasses.replace(
        facts,
        payments=facts.payments + extra,
        net_paid_since_statement=facts.net_paid_since_statement + extra,
    )
    for include_new_charges in (False, True):
        before = combine(facts, include_new_charges=include_new_charges)
        after = combine(paid_more, include_new_charges=include_new_charges)
        assert after.amount_due <= before.amount_due
        assert after.current_balance <= before.current_balance


@given(facts=consistent_facts(), other_new_charges=cents)
def test_new_charges_count_only_when_the_group_includes_them(facts, other_new_charges):
    changed = dataclasses.replace(facts, new_charges_remaining=other_new_charges)
    assert combine(changed, include_new_charges=False) == combine(facts, include_new_charges=False)
    if facts.statement is None:
        assert combine(facts, include_new_charges=False).amount_due == 0


# --- random ledgers through the import -------------------------------------------------------

DB_EXAMPLES = max(10, settings().max_examples // 5)
db_settings = settings(
    max_examples=DB_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DAY0 = dt.date(2026, 1, 1)
days = st.integers(0, 60).map(lambda n: (DAY0 + dt.timedelta(days=n)).isoformat())
amounts = st.integers(0, 40000)


@dataclasses.dataclass
class Ledger:
    """A document for each import, in order; the last is what the practice ends up holding
    (every later document repeats every item, changed or not)."""

    imports: list[dict[str, Any]]
    guarantors: list[str]

    @property
    def final(self) -> dict[str, Any]:
        return self.imports[-1]


def _draw_lines(draw: st.DrawFn) -> list[dict[str, Any]]:
    lines = []
    for number in range(1, draw(st.integers(1, 3)) + 1):
        billed = draw(amounts)
        if draw(st.integers(0, 9)) == 0:
            # Over-adjusted: the line owes less than nothing, which counts as 0.
            adjusted, insurance, pending = billed + draw(st.integers(1, 5000)), 0, 0
        else:
            adjusted = draw(st.integers(0, billed))
            insurance = draw(st.integers(0, billed - adjusted))
            pending = draw(st.integers(0, billed - adjusted - insurance))
        lines.append(
            line(
                number,
                billed,
                adjusted=adjusted,
                insurance_paid=insurance,
                pending_insurance=pending,
            )
        )
    return lines


def _owed(item: dict[str, Any]) -> int:
    return (
        parse_amount(item["billed"])
        - parse_amount(item["adjusted"])
        - parse_amount(item["insurance_paid"])
        - parse_amount(item["pending_insurance"])
    )


@st.composite
def ledgers(draw: st.DrawFn) -> Ledger:
    guarantors = [f"G{n}" for n in range(1, draw(st.integers(1, 3)) + 1)]
    encounters: list[dict[str, Any]] = []
    receipts: list[dict[str, Any]] = []
    statements: list[dict[str, Any]] = []
    for g in guarantors:
        capacity: dict[tuple[str, int], int] = {}
        for k in range(draw(st.integers(0, 3))):
            number = f"{g}-E{k}"
            lines = _draw_lines(draw)
            collections = draw(st.sampled_from([False, False, True]))
            encounters.append(
                encounter(number, draw(days), *lines, guarantor=g, collections=collections)
            )
            capacity.update({(number, item["line"]): max(0, _owed(item)) for item in lines})
        unapplied = 0
        for k in range(draw(st.integers(0, 4))):
            number, date = f"{g}-R{k}", draw(days)
            if unapplied and draw(st.booleans()):
                amount = draw(st.integers(1, unapplied))
                receipts.append(refund(number, date, amount, guarantor=g))
                unapplied -= amount
                continue
            amount = draw(st.integers(1, 30000))
            left, applications = amount, []
            for (enc, ln), room in capacity.items():
                if left and room and draw(st.booleans()):
                    part = draw(st.integers(1, min(left, room)))
                    applications.append(applied(enc, ln, part))
                    capacity[(enc, ln)] -= part
                    left -= part
            receipts.append(receipt(number, date, amount, *applications, guarantor=g))
            unapplied += left
        for k, date in enumerate(draw(st.lists(days, unique=True, max_size=2))):
            statements.append(
                statement(
                    f"{g}-S{k}", date, balance=draw(amounts), amount_due=draw(amounts), guarantor=g
                )
            )
    first = document(
        guarantors=tuple(guarantors),
        encounters=encounters,
        receipts=receipts,
        statements=statements,
    )
    imports = [first]
    if draw(st.booleans()):
        imports.append(_changed(draw, first))
    return Ledger(imports, guarantors)


def _changed(draw: st.DrawFn, first: dict[str, Any]) -> dict[str, Any]:
    """A later version of the document that an import must accept: payments grow or lose
    applications (unapplied money only grows), lines are billed more, statements move."""
    second = {**first}
    second["receipts"] = []
    for item in first["receipts"]:
        if item["type"] == "payment" and draw(st.booleans()):
            keep = draw(st.integers(0, len(item["applications"])))
            grow = draw(st.integers(0, 5000))
            item = {
                **item,
                "amount": f"{(parse_amount(item['amount']) + grow) / 100:.2f}",
                "applications": item["applications"][:keep],
            }
        second["receipts"].append(item)
    second["encounters"] = []
    for item in first["encounters"]:
        if draw(st.booleans()):
            lines = [
                {**ln, "billed": f"{(parse_amount(ln['billed']) + draw(amounts)) / 100:.2f}"}
                for ln in item["lines"]
            ]
            item = {**item, "lines": lines, "collections": None}
        second["encounters"].append(item)
    second["statements"] = [
        {**item, "amount_due": f"{draw(amounts) / 100:.2f}"} for item in first["statements"]
    ]
    return second


def expected_balances(doc: dict[str, Any], g: str, *, include_new_charges: bool) -> Balances:
    """DESIGN.md's formulas, computed straight from the document (independently of the
    service's SQL and of `combine`)."""
    paid: dict[tuple[str, int], int] = defaultdict(int)
    payments = refunds = applied_ = 0
    for item in doc["receipts"]:
        if item["guarantor"] != g:
            continue
        amount = parse_amount(item["amount"])
        if item["type"] == "refund":
            refunds += amount
            continue
        payments += amount
        for a in item["applications"]:
            paid[(a["encounter"], a["line"])] += parse_amount(a["amount"])
            applied_ += parse_amount(a["amount"])
    unapplied = payments - refunds - applied_
    mine = [e for e in doc["encounters"] if e["patient"] == patient_id(g)]
    latest = max(
        (s for s in doc["statements"] if s["guarantor"] == g),
        key=lambda s: s["statement_date"],
        default=None,
    )
    open_remaining = collections = new_charges = 0
    for e in mine:
        for item in e["lines"]:
            remaining = max(0, _owed(item) - paid[(e["number"], item["line"])])
            if e["collections"]:
                collections += remaining
                continue
            open_remaining += remaining
            if latest is None or e["service_date"] > latest["statement_date"]:
                new_charges += remaining
    current = max(0, open_remaining - unapplied)
    due = new_charges if include_new_charges else 0
    if latest is not None:
        since = latest["statement_date"]
        net_since = sum(
            parse_amount(r["amount"]) * (1 if r["type"] == "payment" else -1)
            for r in doc["receipts"]
            if r["guarantor"] == g and r["date"] > since
        )
        due += parse_amount(latest["amount_due"]) - net_since
    return Balances(
        statement_balance=parse_amount(latest["statement_balance"]) if latest else None,
        last_statement=parse_amount(latest["amount_due"]) if latest else None,
        amount_due=min(max(due, 0), current),
        current_balance=current,
        unapplied_funds=unapplied,
        collection_balance=collections,
    )


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run one example inside a savepoint and undo everything it wrote."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def all_balances(guarantors: list[str]) -> dict[tuple[str, bool], Balances]:
    rows = {g.external_id: g for g in Guarantor.objects.filter(practice__external_id="p1")}
    return {
        (g, flag): guarantor_balances(rows[g], include_new_charges=flag)
        for g in guarantors
        for flag in (False, True)
    }


@pytest.mark.django_db
@db_settings
@given(ledger=ledgers())
def test_random_ledgers_have_the_balances_the_formulas_give(ledger):
    with rolled_back():
        for doc in ledger.imports:
            load(
                guarantors=tuple(ledger.guarantors),
                encounters=doc["encounters"],
                receipts=doc["receipts"],
                statements=doc["statements"],
            )
        practice = Practice.objects.get(external_id="p1")
        found = all_balances(ledger.guarantors)
        currents = current_balances(practice.pk)
        for (g, flag), figures in found.items():
            assert figures == expected_balances(ledger.final, g, include_new_charges=flag)
            assert figures.current_balance >= figures.amount_due >= 0
            assert all(type(v) is int for v in vars(figures).values() if v is not None)
            gid = Guarantor.objects.get(practice=practice, external_id=g).pk
            assert currents.get(gid, 0) == figures.current_balance
        assert differences(practice.pk) == []


@pytest.mark.django_db
@db_settings
@given(ledger=ledgers(), extra=st.lists(st.lists(amounts, min_size=1, max_size=3), max_size=3))
def test_random_ledgers_keep_their_money_rules_and_ignore_collection_lines(ledger, extra):
    with rolled_back():
        for doc in ledger.imports:
            load(
                guarantors=tuple(ledger.guarantors),
                encounters=doc["encounters"],
                receipts=doc["receipts"],
                statements=doc["statements"],
            )
        before = all_balances(ledger.guarantors)
        for (g, _), figures in before.items():
            mine = [r for r in ledger.final["receipts"] if r["guarantor"] == g]
            payments = sum(parse_amount(r["amount"]) for r in mine if r["type"] == "payment")
            refunds = sum(parse_amount(r["amount"]) for r in mine if r["type"] == "refund")
            applications = sum(parse_amount(a["amount"]) for r in mine for a in r["applications"])
            assert payments - refunds == applications + figures.unapplied_funds
            assert figures.unapplied_funds >= 0
        # New collection lines, some dated after every statement, for every guarantor.
        added = {g: sum(sum(billed) for billed in extra) for g in ledger.guarantors}
        load(
            guarantors=tuple(ledger.guarantors),
            encounters=[
                encounter(
                    f"{g}-C{k}",
                    "2026-12-31",
                    *(line(n, billed) for n, billed in enumerate(lines, start=1)),
                    guarantor=g,
                    collections=True,
                )
                for g in ledger.guarantors
                for k, lines in enumerate(extra)
            ],
        )
        after = all_balances(ledger.guarantors)
        for key, figures in after.items():
            assert (figures.current_balance, figures.amount_due) == (
                before[key].current_balance,
                before[key].amount_due,
            )
            assert figures.collection_balance == before[key].collection_balance + added[key[0]]
        assert differences(Practice.objects.get(external_id="p1").pk) == []
