"""Worked examples, in cents, for every clause of the balance formulas (DESIGN.md, "Product
decisions"). Each scenario goes in through the import; each figure is worked out by hand in the
comment beside it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pops.ledger.models import Receipt, ServiceLine
from pops.ledger.services.balances import Balances, guarantor_balances
from tests.ledger.conftest import (
    applied,
    balances,
    encounter,
    guarantor,
    line,
    load,
    receipt,
    refund,
    statement,
)

pytestmark = pytest.mark.django_db


def remaining_of(encounter_number: str, line_number: int) -> int:
    return ServiceLine.objects.get(
        encounter__number=encounter_number, line=line_number
    ).remaining_cents


# --- a line's Remaining Balance --------------------------------------------------------------


def test_line_remaining_is_billed_less_adjusted_insurance_pending_and_patient_payments():
    load(
        encounters=[
            encounter(
                "100",
                "2026-01-10",
                line(
                    1, 20000, adjusted=3000, insurance_paid=10000, pending_insurance=2000
                ),  # owes 20000 - 3000 - 10000 - 2000 = 5000
            )
        ],
        receipts=[receipt("R1", "2026-01-20", 1500, applied("100", 1, 1500))],
    )
    assert remaining_of("100", 1) == 3500  # 5000 - 1500 paid
    assert balances().current_balance == 3500


def test_pending_insurance_is_not_yet_owed_by_the_patient():
    load(encounters=[encounter("100", "2026-01-10", line(1, 10000, pending_insurance=6000))])
    assert remaining_of("100", 1) == 4000
    assert balances().current_balance == 4000


def test_line_remaining_never_goes_below_zero():
    load(
        encounters=[
            encounter(
                "100",
                "2026-01-10",
                line(1, 10000, adjusted=8000, insurance_paid=5000),  # 10000-8000-5000 = -3000 -> 0
                line(2, 4000),
            )
        ]
    )
    assert remaining_of("100", 1) == 0
    # The over-adjusted line does not eat into line 2: 0 + 4000, not -3000 + 4000.
    assert balances().current_balance == 4000


def test_a_line_paid_in_full_remains_zero():
    load(
        encounters=[encounter("100", "2026-01-10", line(1, 5000))],
        receipts=[receipt("R1", "2026-01-11", 5000, applied("100", 1, 5000))],
    )
    assert remaining_of("100", 1) == 0
    assert balances() == Balances(
        statement_balance=None,
        last_statement=None,
        amount_due=0,
        current_balance=0,
        unapplied_funds=0,
        collection_balance=0,
    )


# --- Collection Balance ----------------------------------------------------------------------


def test_collection_balance_is_the_remaining_of_lines_in_collections():
    load(
        encounters=[
            encounter("100", "2026-01-10", line(1, 5000)),
            encounter("200", "2026-01-12", line(1, 12000), line(2, 3000), collections=True),
        ],
        receipts=[receipt("R1", "2026-02-01", 2000, applied("200", 1, 2000))],
    )
    figures = balances()
    assert figures.collection_balance == 13000  # 12000 - 2000 paid + 3000
    assert figures.current_balance == 5000  # only the open encounter


def test_an_over_adjusted_collection_line_counts_as_zero():
    load(
        encounters=[
            encounter(
                "200",
                "2026-01-12",
                line(1, 12000),
                line(2, 3000, adjusted=4000),  # -1000 -> 0, never negative
                collections=True,
            )
        ]
    )
    assert balances().collection_balance == 12000


def test_collection_lines_never_count_in_current_balance_or_amount_due():
    load(
        encounters=[encounter("200", "2026-03-10", line(1, 12000), collections=True)],
        statements=[statement("S1", "2026-03-01", balance=0, amount_due=0)],
    )
    figures = balances(include_new_charges=True)
    assert (figures.collection_balance, figures.current_balance, figures.amount_due) == (
        12000,
        0,
        0,
    )


def test_taking_an_encounter_out_of_collections_moves_it_back_into_current_balance():
    load(encounters=[encounter("200", "2026-01-12", line(1, 12000), collections=True)])
    assert (balances().collection_balance, balances().current_balance) == (12000, 0)
    load(encounters=[encounter("200", "2026-01-12", line(1, 12000), collections=False)])
    assert (balances().collection_balance, balances().current_balance) == (0, 12000)


# --- Unapplied Funds -------------------------------------------------------------------------


def test_a_payment_not_applied_is_unapplied_funds():
    load(
        encounters=[encounter("100", "2026-01-10", line(1, 15000))],
        receipts=[receipt("R1", "2026-01-20", 10000)],
    )
    figures = balances()
    assert figures.unapplied_funds == 10000
    assert figures.current_balance == 5000  # 15000 open - 10000 unapplied


def test_a_partially_applied_payment_leaves_the_rest_unapplied():
    load(
        encounters=[encounter("100", "2026-01-10", line(1, 15000))],
        receipts=[receipt("R1", "2026-01-20", 10000, applied("100", 1, 3000))],
    )
    figures = balances()
    assert figures.unapplied_funds == 7000  # 10000 - 3000 applied
    assert figures.current_balance == 5000  # (15000 - 3000) - 7000


def test_refunds_are_deducted_from_unapplied_funds():
    load(
        encounters=[encounter("100", "2026-01-10", line(1, 15000))],
        receipts=[
            receipt("R1", "2026-01-20", 10000, applied("100", 1, 3000)),
            refund("R2", "2026-01-25", 2500),
        ],
    )
    figures = balances()
    assert figures.unapplied_funds == 4500  # 10000 - 3000 - 2500
    assert figures.current_balance == 7500  # 12000 - 4500


def test_unapplied_funds_belong_to_their_guarantor_only():
    load(
        guarantors=("G1", "G2"),
        encounters=[
            encounter("100", "2026-01-10", line(1, 15000)),
            encounter("200", "2026-01-10", line(1, 9000), guarantor="G2"),
        ],
        receipts=[receipt("R1", "2026-01-20", 4000, guarantor="G2")],
    )
    assert (balances("G1").unapplied_funds, balances("G1").current_balance) == (0, 15000)
    assert (balances("G2").unapplied_funds, balances("G2").current_balance) == (4000, 5000)


# --- Current Balance -------------------------------------------------------------------------


def test_current_balance_is_open_remaining_less_unapplied_funds():
    load(
        encounters=[
            encounter("100", "2026-01-10", line(1, 6000), line(2, 4000, insurance_paid=1000)),
            encounter("101", "2026-02-10", line(1, 2500)),
        ],
        receipts=[receipt("R1", "2026-02-20", 3000, applied("100", 1, 1000))],
    )
    # open remaining = (6000 - 1000) + 3000 + 2500 = 10500; unapplied = 3000 - 1000 = 2000
    assert balances().current_balance == 8500


def test_current_balance_is_zero_when_unapplied_funds_exceed_the_open_lines():
    load(
        encounters=[encounter("100", "2026-01-10", line(1, 5000))],
        receipts=[receipt("R1", "2026-01-20", 8000)],
    )
    figures = balances()
    assert figures.current_balance == 0  # max(0, 5000 - 8000)
    assert figures.unapplied_funds == 8000


def test_current_balance_of_a_guarantor_with_nothing_is_zero():
    load()
    assert balances() == Balances(None, None, 0, 0, 0, 0)


# --- Statement Balance and Last Statement ----------------------------------------------------


def test_statement_balance_and_last_statement_come_from_the_statement():
    load(
        encounters=[encounter("100", "2026-01-10", line(1, 30000))],
        statements=[statement("S1", "2026-02-01", balance=30000, amount_due=12000)],
    )
    figures = balances()
    assert (figures.statement_balance, figures.last_statement) == (30000, 12000)
    assert figures.amount_due == 12000


def test_several_statements_the_latest_statement_date_wins_whatever_the_order_received():
    load(
        encounters=[encounter("100", "2026-01-10", line(1, 30000))],
        statements=[
            statement("S-MAR", "2026-03-01", balance=25000, amount_due=9000),
            statement("S-JAN", "2026-01-01", balance=30000, amount_due=20000),
            statement("S-FEB", "2026-02-01", balance=28000, amount_due=15000),
        ],
    )
    figures = balances()
    assert (figures.statement_balance, figures.last_statement, figures.amount_due) == (
        25000,
        9000,
        9000,
    )


def test_a_statement_moved_to_a_later_date_by_a_new_import_becomes_the_latest():
    statements = [
        statement("S1", "2026-01-01", balance=30000, amount_due=20000),
        statement("S2", "2026-02-01", balance=28000, amount_due=15000),
    ]
    load(encounters=[encounter("100", "2026-01-10", line(1, 30000))], statements=statements)
    assert balances().last_statement == 15000
    statements[0] = statement("S1", "2026-03-01", balance=26000, amount_due=11000)
    load(statements=statements)
    assert (balances().statement_balance, balances().last_statement) == (26000, 11000)


def test_payments_between_two_statements_are_not_subtracted_from_the_latest():
    load(
        encounters=[encounter("100", "2026-01-10", line(1, 30000))],
        receipts=[receipt("R1", "2026-02-15", 5000)],  # after S1, before S2
        statements=[
            statement("S1", "2026-02-01", balance=30000, amount_due=20000),
            statement("S2", "2026-03-01", balance=25000, amount_due=18000),
        ],
    )
    assert balances().amount_due == 18000  # S2's amount due, nothing after it


# --- Amount Due ------------------------------------------------------------------------------


def test_amount_due_subtracts_payments_after_the_statement_date_only():
    load(
        encounters=[encounter("100", "2026-02-01", line(1, 25000))],
        receipts=[
            receipt("BEFORE", "2026-02-20", 1000),  # in the statement already
            receipt("ON", "2026-03-01", 2000),  # on the statement date: not subtracted
            receipt("AFTER", "2026-03-05", 3000),  # after: subtracted
        ],
        statements=[statement("S1", "2026-03-01", balance=25000, amount_due=20000)],
    )
    figures = balances()
    assert figures.current_balance == 19000  # 25000 - 6000 unapplied
    assert figures.amount_due == 17000  # 20000 - 3000


def test_amount_due_subtracts_payments_after_the_statement_whether_applied_or_not():
    load(
        encounters=[encounter("100", "2026-02-01", line(1, 25000))],
        receipts=[
            receipt("APPLIED", "2026-03-02", 4000, applied("100", 1, 4000)),
            receipt("UNAPPLIED", "2026-03-03", 1000),
        ],
        statements=[statement("S1", "2026-03-01", balance=25000, amount_due=20000)],
    )
    figures = balances()
    assert figures.current_balance == 20000  # (25000 - 4000) - 1000
    assert figures.amount_due == 15000  # 20000 - 4000 - 1000


def test_amount_due_subtracts_payments_net_of_refunds_after_the_statement_date():
    """A deliberate reading of DESIGN's "payments": money refunded after the statement date is
    money the guarantor no longer paid, so Amount Due subtracts payments net of those refunds.
    A refund dated on or before the statement date is not counted."""
    load(
        encounters=[encounter("100", "2026-02-01", line(1, 25000))],
        receipts=[
            receipt("OLD", "2026-02-10", 3000),
            refund("OLD-REFUND", "2026-03-01", 1000),  # on the statement date: not counted
            receipt("NEW", "2026-03-05", 5000),
            refund("NEW-REFUND", "2026-03-06", 2000),  # after: deducted from the 5000
        ],
        statements=[statement("S1", "2026-03-01", balance=25000, amount_due=20000)],
    )
    figures = balances()
    assert figures.unapplied_funds == 5000  # 3000 - 1000 + 5000 - 2000
    assert figures.current_balance == 20000  # 25000 - 5000
    assert figures.amount_due == 17000  # 20000 - (5000 - 2000), not 20000 - 5000


def test_refunds_after_the_statement_can_raise_amount_due_back_up_to_the_statement():
    load(
        encounters=[encounter("100", "2026-02-01", line(1, 25000))],
        receipts=[
            receipt("OLD", "2026-02-10", 3000),
            refund("LATER", "2026-03-06", 3000),  # returns money paid before the statement
        ],
        statements=[statement("S1", "2026-03-01", balance=22000, amount_due=20000)],
    )
    figures = balances()
    assert figures.current_balance == 25000
    assert figures.amount_due == 23000  # 20000 - (0 - 3000), within Current Balance


def test_new_charges_are_left_out_of_amount_due_when_the_option_is_off():
    scenario_with_new_charges()
    figures = balances(include_new_charges=False)
    assert figures.current_balance == 29000  # 15000 + 4000 + 10000 (the line on the date)
    assert figures.amount_due == 10000


def test_new_charges_are_added_to_amount_due_when_the_option_is_on():
    scenario_with_new_charges()
    figures = balances(include_new_charges=True)
    # 10000 + 4000: only the open line with a service date after the statement date; the line
    # on the statement date is not new, the collection line never counts.
    assert figures.amount_due == 14000
    assert figures.collection_balance == 7000


def scenario_with_new_charges() -> None:
    load(
        encounters=[
            encounter("100", "2026-02-01", line(1, 15000)),
            encounter("101", "2026-03-01", line(1, 10000)),  # on the statement date
            encounter("102", "2026-03-10", line(1, 4000)),  # after: a new charge
            encounter("103", "2026-03-12", line(1, 7000), collections=True),  # never counts
        ],
        statements=[statement("S1", "2026-03-01", balance=15000, amount_due=10000)],
    )


def test_new_charges_count_their_remaining_not_their_billed_amount():
    load(
        encounters=[
            encounter("100", "2026-02-01", line(1, 15000)),
            encounter("102", "2026-03-10", line(1, 4000, insurance_paid=1500)),
        ],
        receipts=[receipt("R1", "2026-03-11", 500, applied("102", 1, 500))],
        statements=[statement("S1", "2026-03-01", balance=15000, amount_due=10000)],
    )
    figures = balances(include_new_charges=True)
    # 10000 - 500 paid after the statement + (4000 - 1500 - 500) remaining of the new line
    assert figures.amount_due == 11500
    assert figures.current_balance == 17000


def test_without_a_statement_amount_due_is_zero():
    load(encounters=[encounter("100", "2026-02-01", line(1, 15000))])
    figures = balances(include_new_charges=False)
    assert (figures.statement_balance, figures.last_statement) == (None, None)
    assert (figures.amount_due, figures.current_balance) == (0, 15000)


def test_without_a_statement_every_open_line_is_a_new_charge_when_the_option_is_on():
    load(
        encounters=[
            encounter("100", "2026-02-01", line(1, 15000)),
            encounter("101", "2026-02-05", line(1, 2000, pending_insurance=500)),
            encounter("200", "2026-02-10", line(1, 9000), collections=True),
        ]
    )
    figures = balances(include_new_charges=True)
    assert figures.amount_due == 16500  # 15000 + 1500; the collection line never counts
    assert figures.amount_due == figures.current_balance


def test_without_a_statement_new_charges_are_clamped_to_current_balance():
    load(
        encounters=[encounter("100", "2026-02-01", line(1, 8000))],
        receipts=[receipt("R1", "2026-02-02", 3000)],
    )
    figures = balances(include_new_charges=True)
    assert figures.current_balance == 5000  # 8000 - 3000 unapplied
    assert figures.amount_due == 5000  # 8000 of new charges, clamped


def test_amount_due_is_clamped_to_current_balance():
    load(
        encounters=[encounter("100", "2026-02-01", line(1, 30000))],
        receipts=[receipt("R1", "2026-02-20", 20000, applied("100", 1, 20000))],
        statements=[statement("S1", "2026-03-01", balance=50000, amount_due=50000)],
    )
    figures = balances()
    assert figures.current_balance == 10000
    assert figures.amount_due == 10000  # 50000 on the statement, but only 10000 is owed


def test_amount_due_is_clamped_to_zero():
    load(
        encounters=[encounter("100", "2026-02-01", line(1, 30000))],
        receipts=[receipt("R1", "2026-03-02", 15000)],
        statements=[statement("S1", "2026-03-01", balance=30000, amount_due=10000)],
    )
    figures = balances()
    assert figures.current_balance == 15000
    assert figures.amount_due == 0  # 10000 - 15000 = -5000, clamped


def test_amount_due_with_new_charges_is_clamped_to_current_balance():
    load(
        encounters=[
            encounter("100", "2026-02-01", line(1, 5000)),
            encounter("102", "2026-03-10", line(1, 4000)),
        ],
        receipts=[receipt("R1", "2026-02-15", 3000)],
        statements=[statement("S1", "2026-03-01", balance=5000, amount_due=5000)],
    )
    figures = balances(include_new_charges=True)
    assert figures.current_balance == 6000  # 9000 - 3000 unapplied
    assert figures.amount_due == 6000  # 5000 + 4000 = 9000, clamped


def test_balances_take_a_guarantor_or_its_row_id():
    load(encounters=[encounter("100", "2026-02-01", line(1, 5000))])
    row = guarantor()
    assert guarantor_balances(row.pk, include_new_charges=False) == guarantor_balances(
        row, include_new_charges=False
    )


# --- cost ------------------------------------------------------------------------------------


def many_guarantors(count: int, lines_each: int) -> list[str]:
    ids = tuple(f"G{n}" for n in range(2, count + 2))
    load(
        guarantors=ids,
        encounters=[
            encounter(f"E{g}-{k}", "2026-02-01", *(line(n, 1000) for n in range(1, 4)), guarantor=g)
            for g in ids
            for k in range(lines_each)
        ],
        receipts=[receipt(f"R{g}", "2026-03-05", 500, guarantor=g) for g in ids],
        statements=[
            statement(f"S{g}", "2026-03-01", balance=1000, amount_due=1000, guarantor=g)
            for g in ids
        ],
    )
    return list(ids)


def test_one_guarantors_balances_take_one_query(django_assert_num_queries):
    load(
        encounters=[encounter("100", "2026-02-01", line(1, 5000))],
        receipts=[receipt("R1", "2026-03-05", 1000)],
        statements=[statement("S1", "2026-03-01", balance=5000, amount_due=5000)],
    )
    row = guarantor()
    with django_assert_num_queries(1):
        guarantor_balances(row, include_new_charges=True)


def test_the_number_of_queries_does_not_grow_with_the_practice():
    load(
        encounters=[encounter("100", "2026-02-01", line(1, 5000))],
        receipts=[receipt("R1", "2026-03-05", 1000)],
        statements=[statement("S1", "2026-03-01", balance=5000, amount_due=5000)],
    )
    row = guarantor()
    with CaptureQueriesContext(connection) as small:
        before = guarantor_balances(row, include_new_charges=True)
    many_guarantors(40, lines_each=3)
    load(encounters=[encounter(f"G1-{n}", "2026-02-01", line(1, 100)) for n in range(20)])
    with CaptureQueriesContext(connection) as large:
        after = guarantor_balances(row, include_new_charges=False)
    assert len(large) == len(small)
    # The other guarantors' rows are not counted in this one's figures.
    assert (before.current_balance, before.amount_due) == (4000, 4000)
    assert (after.current_balance, after.amount_due) == (4000 + 20 * 100, 4000)


def test_a_voided_receipt_is_not_money_received():
    """What a void leaves behind (the receipt Voided, its applications gone, its entries
    reversed) counts for nothing, before or after the statement date."""
    load(
        encounters=[encounter("100", "2026-02-01", line(1, 25000))],
        receipts=[receipt("R1", "2026-02-10", 3000)],
        statements=[statement("S1", "2026-03-01", balance=25000, amount_due=20000)],
    )
    row = guarantor()
    for number, date in (("V1", "2026-02-11"), ("V2", "2026-03-05")):
        Receipt.objects.create(
            practice=row.practice,
            guarantor=row,
            number=number,
            date=date,
            amount_cents=4000,
            status=Receipt.Status.VOIDED,
        )
    figures = balances()
    assert figures.unapplied_funds == 3000
    assert figures.current_balance == 22000
    assert figures.amount_due == 20000
