"""What a receipt shows (spec §9): the payment summary, the summary of the lines it was applied
to, and Visit Details grouped by Facility + Provider + Patient."""

import pytest

from pops.core import clock
from pops.core.audit import Actor
from pops.groups.models import Group
from pops.groups.services import prepare_practice
from pops.ledger.models import Guarantor, Practice, Receipt, ReceiptNumber
from pops.ledger.services.posting import post_refund, reverse_receipt
from pops.payments.gateways.base import WalletKind
from pops.payments.gateways.sandbox.models import Transaction
from pops.payments.services.attempts import PaymentRequest, pay
from pops.payments.services.receipts import Figures, ReceiptContent, Visit, receipt_content
from tests.conftest import run_import
from tests.ledger import example
from tests.payments.conftest import APPROVED, DECLINED, card_token, wallet_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def northside() -> Practice:
    practice = run_import(example()).practice
    prepare_practice(practice, actor=Actor.command("tests"))
    return practice


def pay_for(guarantor_id: str, cents: int, token: str | None = None, **fields) -> Receipt:
    guarantor = Guarantor.objects.get(external_id=guarantor_id)
    attempt = pay(
        PaymentRequest(
            guarantor,
            cents,
            f"key-{Receipt.objects.count()}",
            "fingerprint",
            Actor.command("tests"),
            payment_token=token or card_token(APPROVED),
            **fields,
        )
    )
    assert attempt.receipt is not None
    return attempt.receipt


def test_a_paid_receipt_shows_the_payment_and_the_lines_it_paid(northside):
    # 2010 owes $30.00 on 1002-1 (Jamie, Lakeview, Dr. Bose) and $80.00 on 1003-1 (Patricia,
    # Lakeview, NP Chen), less $5.00 unapplied: Current Balance $105.00, paid oldest first.
    receipt = pay_for("2010", 10_500)

    content = receipt_content(receipt)

    assert content == ReceiptContent(
        receipt_number=receipt.number,
        payment_date=clock.local_date(northside.time_zone),
        payment_status="Paid",
        type="Patient Payment",
        paid_with="Visa ending 1111",
        amount_cents=10_500,
        guarantor="Patricia Lee",
        account_number="2010",
        transaction_numbers=(Transaction.objects.get().transaction_id,),
        refund_of=None,
        summary=Figures(30_500, 19_500, 0, 10_500, 500),
        visits=(
            Visit(
                facility="Lakeview Clinic",
                provider="Ravi Bose, DO",
                patient="Jamie Lee",
                lines=content.visits[0].lines,
            ),
            Visit(
                facility="Lakeview Clinic",
                provider="Lin Chen, NP",
                patient="Patricia Lee",
                lines=content.visits[1].lines,
            ),
        ),
    )
    [well_child] = content.visits[0].lines
    assert (well_child.service_id, str(well_child.service_date)) == ("1002-1", "2026-09-15")
    assert well_child.description == "Well child visit, age 1-4"
    assert well_child.figures == Figures(21_000, 18_000, 0, 3_000, 0)
    assert well_child.paid_by_receipt_cents == 3_000
    [short_visit] = content.visits[1].lines
    assert short_visit.service_id == "1003-1"
    assert short_visit.figures == Figures(9_500, 1_500, 0, 7_500, 500)
    assert short_visit.paid_by_receipt_cents == 7_500


def test_the_summary_adds_up_to_the_remaining_balance(northside):
    content = receipt_content(pay_for("2010", 4_000))
    s = content.summary
    assert s.billed_cents - s.adjusted_or_pending_cents - s.insurance_paid_cents == (
        s.patient_paid_cents + s.remaining_cents
    )
    assert s == sum((line.figures for v in content.visits for line in v.lines), Figures())


def test_lines_of_one_facility_provider_and_patient_are_one_visit(northside):
    imported = Receipt.objects.get(number="R-5004")  # two lines of encounter 1005

    content = receipt_content(imported)

    [visit] = content.visits
    assert (visit.facility, visit.provider, visit.patient) == (
        "Northside Main Street Clinic",
        "Ravi Bose, DO",
        "Helen Brooks",
    )
    assert [line.service_id for line in visit.lines] == ["1005-1", "1005-2"]
    assert [line.paid_by_receipt_cents for line in visit.lines] == [4_000, 1_200]
    assert content.paid_with == "check"
    assert content.transaction_numbers == ()


def test_a_decline_shows_an_unsuccessful_receipt_of_nothing(northside):
    content = receipt_content(pay_for("2010", 2_000, card_token(DECLINED)))

    assert (content.payment_status, content.amount_cents) == ("Unsuccessful", 0)
    assert content.transaction_numbers == ()
    assert content.visits == ()
    assert content.summary == Figures()


def test_a_wallet_payment_is_paid_with_the_wallet(northside):
    Group.objects.filter(practice=northside).update(enable_apple_pay=True)
    receipt = pay_for(
        "2010", 1_000, wallet_payload(WalletKind.APPLE_PAY), wallet=WalletKind.APPLE_PAY
    )
    assert receipt_content(receipt).paid_with == "Apple Pay"


def test_a_voided_receipt_still_lists_its_lines_with_nothing_left_on_them(northside):
    receipt = pay_for("2010", 3_000)
    reverse_receipt(receipt)
    receipt.status = Receipt.Status.VOIDED
    receipt.save()

    content = receipt_content(receipt)

    assert content.payment_status == "Voided"
    [visit] = content.visits
    [line] = visit.lines
    assert (line.service_id, line.paid_by_receipt_cents) == ("1002-1", 0)
    assert line.figures.remaining_cents == 3_000


def test_a_refund_shows_the_lines_of_the_payment_it_gives_back_from(northside):
    payment = pay_for("2010", 10_500)
    refund = Receipt.objects.create(
        practice=northside,
        guarantor=payment.guarantor,
        number=ReceiptNumber.next(),
        type=Receipt.Type.REFUND,
        date=payment.date,
        amount_cents=1_000,
        method=payment.method,
        card_brand=payment.card_brand,
        card_last4=payment.card_last4,
        refund_of=payment,
    )
    post_refund(refund, payment)

    content = receipt_content(refund)

    assert (content.type, content.refund_of, content.amount_cents) == (
        "Patient Refund",
        payment.number,
        1_000,
    )
    assert [line.service_id for v in content.visits for line in v.lines] == ["1002-1", "1003-1"]
    assert content.summary.patient_paid_cents == 9_500


def test_it_reads_the_same_few_queries_whatever_the_number_of_lines(
    northside, django_assert_max_num_queries
):
    document = example()
    document["encounters"] = [
        {
            "number": str(2000 + n),
            "patient": "P-100" if n % 2 else "P-101",
            "facility": "F-MAIN" if n % 3 else "F-LAKE",
            "provider": "DR-AMES",
            "service_date": f"2026-0{1 + n % 9}-01",
            "lines": [{"line": i, "billed": "10.00"} for i in range(1, 6)],
        }
        for n in range(12)
    ]
    document["receipts"] = document["statements"] = document["appointments"] = []
    run_import(document, northside)
    small = Receipt.objects.get(number="R-5001")
    large = pay_for("2010", 60_000)
    small = Receipt.objects.select_related("guarantor").get(pk=small.pk)
    large = Receipt.objects.select_related("guarantor").get(pk=large.pk)

    with django_assert_max_num_queries(4):
        assert len(receipt_content(small).visits) == 1
    with django_assert_max_num_queries(4):
        assert sum(len(v.lines) for v in receipt_content(large).visits) > 40
