"""How a POPS payment is posted (DESIGN.md, "Auto-Post" and "Other Amount"): never onto a line
placed with a collection agency; oldest first by service date, then encounter number (as a
number where it is one), then line; and the minimum payment is the lower of the Group minimum
and the Current Balance."""

import uuid
from typing import Any

import pytest

from pops.core.audit import Actor
from pops.groups.models import Group
from pops.groups.services import prepare_practice
from pops.ledger.models import Practice, ServiceLine
from pops.payments.models import PaymentAttempt
from pops.payments.services.attempts import PaymentRequest, pay
from pops.payments.services.errors import PaymentRefused
from tests.conftest import run_import
from tests.ledger import row_counts
from tests.ledger.conftest import balances, document, encounter, guarantor, line
from tests.payments.conftest import card_token

pytestmark = pytest.mark.django_db

ACTOR = Actor.command("tests")


def prepared(*encounters: dict[str, Any], **group_options: Any) -> Practice:
    """Guarantor G1 with these encounters, prepared for POPS, its default Group so set."""
    practice = run_import(document(encounters=encounters)).practice
    prepare_practice(practice, actor=ACTOR)
    Group.objects.filter(practice=practice, is_default=True).update(**group_options)
    return practice


def pay_cents(cents: int) -> PaymentAttempt:
    request = PaymentRequest(
        guarantor(), cents, uuid.uuid4().hex, "f", ACTOR, payment_token=card_token()
    )
    attempt = pay(request)
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    return attempt


def patient_paid() -> dict[str, int]:
    """Patient paid on each line, by Service ID ("<encounter>-<line>")."""
    return {
        f"{number}-{line_number}": cents
        for number, line_number, cents in ServiceLine.objects.values_list(
            "encounter__number", "line", "patient_paid_cents"
        )
    }


# --- Collection lines ----------------------------------------------------------------------------


def test_auto_post_never_pays_a_line_placed_with_a_collection_agency():
    prepared(
        encounter("1", "2026-01-05", line(1, 4_000), collections=True),  # older
        encounter("2", "2026-02-05", line(1, 3_000)),
    )

    pay_cents(3_000)

    assert patient_paid() == {"1-1": 0, "2-1": 3_000}
    after = balances()
    assert (after.current_balance, after.collection_balance) == (0, 4_000)


def test_what_the_open_lines_do_not_take_stays_unapplied_not_on_a_collection_line():
    prepared(
        encounter("1", "2026-01-05", line(1, 4_000), collections=True),
        encounter("2", "2026-02-05", line(1, 3_000)),
        allow_prepayment=True,
    )

    pay_cents(5_000)

    assert patient_paid() == {"1-1": 0, "2-1": 3_000}
    after = balances()
    assert (after.unapplied_funds, after.collection_balance) == (2_000, 4_000)


# --- Oldest first --------------------------------------------------------------------------------


def test_oldest_first_is_service_date_then_encounter_number_as_a_number_then_line():
    prepared(
        encounter("1", "2026-03-01", line(1, 2_000)),  # the lowest number, but the latest date
        encounter("10", "2026-02-01", line(1, 2_000)),
        encounter("9", "2026-02-01", line(2, 2_000), line(1, 2_000)),
    )

    pay_cents(3_000)
    assert patient_paid() == {"9-1": 2_000, "9-2": 1_000, "10-1": 0, "1-1": 0}

    pay_cents(3_000)
    assert patient_paid() == {"9-1": 2_000, "9-2": 2_000, "10-1": 2_000, "1-1": 0}

    pay_cents(2_000)
    assert patient_paid() == {"9-1": 2_000, "9-2": 2_000, "10-1": 2_000, "1-1": 2_000}


def test_a_number_that_is_not_a_number_comes_after_the_numbers_of_its_date():
    prepared(
        encounter("A7", "2026-02-01", line(1, 2_000)),
        encounter("10", "2026-02-01", line(1, 2_000)),
    )

    pay_cents(2_000)

    assert patient_paid() == {"10-1": 2_000, "A7-1": 0}


# --- Minimum payment -----------------------------------------------------------------------------


def test_a_balance_below_the_group_minimum_can_be_paid_in_full():
    prepared(encounter("1", "2026-02-01", line(1, 3_000)), minimum_payment_cents=5_000)

    pay_cents(3_000)

    assert patient_paid() == {"1-1": 3_000}
    assert balances().current_balance == 0


def test_less_than_the_group_minimum_is_refused_at_amount_and_writes_nothing():
    prepared(encounter("1", "2026-02-01", line(1, 10_000)), minimum_payment_cents=5_000)
    request = PaymentRequest(guarantor(), 2_000, "key-1", "f", ACTOR, payment_token=card_token())
    before = row_counts()

    with pytest.raises(PaymentRefused) as refused:
        pay(request)

    assert (refused.value.path, refused.value.message) == (
        "amount",
        "The amount must be at least $50.00.",
    )
    assert row_counts() == before
    assert balances().current_balance == 10_000
    pay_cents(5_000)  # the minimum itself is taken
