"""The statement run: `pops statements run --practice ID --date YYYY-MM-DD`."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from pops.core.models import AuditEvent
from pops.ledger.models import Practice, Statement
from tests.ledger.conftest import (
    applied,
    balances,
    encounter,
    guarantor,
    line,
    load,
    receipt,
    statement,
)

pytestmark = pytest.mark.django_db


def run(practice: str = "p1", date: str = "2026-04-01") -> str:
    out = io.StringIO()
    call_command("statements", "run", "--practice", practice, "--date", date, stdout=out)
    return out.getvalue()


def mixed_practice(practice: str = "p1") -> None:
    """OWES owes 10000; PAID owes nothing; COLL has only a collection line; CREDIT has more
    unapplied money than open lines; EMPTY has no lines at all."""
    load(
        practice=practice,
        guarantors=("OWES", "PAID", "COLL", "CREDIT", "EMPTY"),
        encounters=[
            encounter("1", "2026-03-01", line(1, 12000), guarantor="OWES"),
            encounter("2", "2026-03-01", line(1, 5000), guarantor="PAID"),
            encounter("3", "2026-03-01", line(1, 9000), guarantor="COLL", collections=True),
            encounter("4", "2026-03-01", line(1, 3000), guarantor="CREDIT"),
        ],
        receipts=[
            receipt("R1", "2026-03-10", 2000, guarantor="OWES"),
            receipt("R2", "2026-03-10", 5000, applied("2", 1, 5000), guarantor="PAID"),
            receipt("R3", "2026-03-10", 4000, guarantor="CREDIT"),
        ],
    )


def test_one_statement_for_each_guarantor_with_a_positive_current_balance():
    mixed_practice()
    assert run() == "1 statement(s) written for 2026-04-01.\n"
    written = Statement.objects.get()
    assert written.guarantor == guarantor("OWES")
    assert (written.statement_date, written.due_date) == (dt.date(2026, 4, 1), dt.date(2026, 4, 22))
    assert (written.statement_balance_cents, written.amount_due_cents) == (10000, 10000)
    assert written.external_id == "pops-20260401-OWES"


def test_no_statement_for_zero_balance_collection_only_or_credit_guarantors():
    mixed_practice()
    run()
    for nobody in ("PAID", "COLL", "CREDIT", "EMPTY"):
        assert not Statement.objects.filter(guarantor=guarantor(nobody)).exists(), nobody


def test_the_written_statement_becomes_the_guarantors_latest():
    mixed_practice()
    run()
    figures = balances("OWES")
    assert (figures.statement_balance, figures.last_statement, figures.amount_due) == (
        10000,
        10000,
        10000,
    )


def test_due_date_follows_the_practices_terms():
    mixed_practice()
    Practice.objects.filter(external_id="p1").update(statement_terms_days=30)
    run(date="2026-04-15")
    assert Statement.objects.get().due_date == dt.date(2026, 5, 15)


def test_running_twice_for_the_same_date_writes_nothing_new():
    mixed_practice()
    run()
    first = list(Statement.objects.values_list("id", "external_id", "amount_due_cents"))
    # Money moves between the runs; the second run still writes nothing for that date.
    load(
        guarantors=("OWES",),
        receipts=[receipt("R9", "2026-04-01", 1000, guarantor="OWES")],
    )
    assert run() == "0 statement(s) written for 2026-04-01.\n"
    assert list(Statement.objects.values_list("id", "external_id", "amount_due_cents")) == first


def test_a_guarantor_who_starts_owing_gets_a_statement_on_a_second_run_that_day():
    mixed_practice()
    run()
    load(
        guarantors=("PAID",),
        encounters=[encounter("5", "2026-04-01", line(1, 700), guarantor="PAID")],
    )
    assert run() == "1 statement(s) written for 2026-04-01.\n"
    assert Statement.objects.get(guarantor=guarantor("PAID")).amount_due_cents == 700
    assert Statement.objects.filter(guarantor=guarantor("OWES")).count() == 1


def test_a_later_date_writes_a_new_statement():
    mixed_practice()
    run(date="2026-04-01")
    run(date="2026-05-01")
    dates = Statement.objects.filter(guarantor=guarantor("OWES")).values_list(
        "statement_date", flat=True
    )
    assert sorted(dates) == [dt.date(2026, 4, 1), dt.date(2026, 5, 1)]


def test_an_imported_statement_of_that_date_counts_as_already_written():
    mixed_practice()
    load(
        guarantors=("OWES",),
        statements=[
            statement("EXT-1", "2026-04-01", balance=9000, amount_due=9000, guarantor="OWES")
        ],
    )
    assert run() == "0 statement(s) written for 2026-04-01.\n"
    assert Statement.objects.get().external_id == "EXT-1"


def test_the_run_only_writes_for_its_own_practice():
    mixed_practice("p1")
    mixed_practice("p2")
    run(practice="p2")
    assert list(Statement.objects.values_list("practice__external_id", flat=True)) == ["p2"]


def test_the_run_is_audited():
    mixed_practice()
    run()
    event = AuditEvent.objects.get(action="ledger.statements.run")
    assert event.practice == Practice.objects.get(external_id="p1")
    assert event.data == {"statement_date": "2026-04-01", "written": 1}


def test_a_bad_date_is_a_clear_error_and_writes_nothing():
    mixed_practice()
    with pytest.raises(CommandError, match=r"'2026-13-01' is not a date like"):
        run(date="2026-13-01")
    assert not Statement.objects.exists()


def test_an_unknown_practice_is_a_clear_error():
    mixed_practice()
    with pytest.raises(CommandError, match=r"No practice with id 'nope'"):
        run(practice="nope")
    assert not Statement.objects.exists()


def test_guarantors_with_the_longest_ids_get_statements_with_valid_distinct_ids():
    ids = ("G" * 64, "G" * 63 + "H")
    load(
        guarantors=ids,
        encounters=[
            encounter(f"E{n}", "2026-03-01", line(1, 500), guarantor=g) for n, g in enumerate(ids)
        ],
    )
    run()
    run()
    written = {s.guarantor.external_id: s.external_id for s in Statement.objects.all()}
    assert set(written) == set(ids)
    assert len(set(written.values())) == 2
    for statement_id in written.values():
        assert len(statement_id) <= 64
        assert statement_id.startswith("pops-20260401-")
