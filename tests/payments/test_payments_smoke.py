import pytest
from django.db import connection

from pops.core.audit import Actor
from pops.groups.services import prepare_practice
from pops.ledger.models import Guarantor, Receipt
from pops.ledger.services.balances import guarantor_balances
from pops.payments.models import IN_FLIGHT_SQL, IN_FLIGHT_STATUSES, PaymentAttempt
from pops.payments.services.attempts import PaymentRequest, pay
from tests.conftest import run_import, run_queued_tasks
from tests.payments.conftest import APPROVED, DECLINED, card_token
from tests.test_import_documents import small_document

pytestmark = pytest.mark.django_db


def _request(guarantor, key, fingerprint, token):
    actor = Actor.command("t")
    return PaymentRequest(guarantor, 2000, key, fingerprint, actor, payment_token=token)


def test_a_payment_posts_and_a_decline_leaves_a_zero_receipt():
    practice = run_import(small_document()).practice
    prepare_practice(practice, actor=Actor.command("tests"))
    g = Guarantor.objects.get(external_id="2010")

    a = pay(_request(g, "k1", "f1", card_token(APPROVED)))
    assert a.status == "succeeded", a.status
    assert a.receipt.amount_cents == 2000
    assert a.receipt.reference_batch.description == "API Payments"
    assert guarantor_balances(g, include_new_charges=False).current_balance == 3000

    b = pay(_request(g, "k2", "f2", card_token(DECLINED)))
    assert b.status == "declined"
    assert b.receipt.amount_cents == 0
    assert b.receipt.status == Receipt.Status.UNSUCCESSFUL
    assert b.receipt.reference_batch is None

    again = pay(_request(g, "k1", "f1", "x"))
    assert again.pk == a.pk


def test_a_payment_takes_a_bounded_number_of_statements(django_assert_max_num_queries, mailoutbox):
    """The hot path is hand-written (core/rows.py): a card payment with an emailed receipt, not
    the first of its day, is 9 statements on PostgreSQL and 18 on SQLite: a begin
    transaction, the Sandbox's charge and the settling transaction (the test's own transaction
    turns their BEGIN and COMMIT into savepoints: 6 statements more). On PostgreSQL each
    transaction's writes go as one statement (rows.together), with the keys they need drawn
    ahead by a statement that runs anyway (rows.next_key), and the part's answer is one of the
    settling writes. More means a query crept back in;
    the benchmark's payments per second rest on it."""
    practice = run_import(small_document()).practice
    prepare_practice(practice, actor=Actor.command("tests"))
    g = Guarantor.objects.get(external_id="2010")
    pay(_request(g, "k1", "f1", card_token(APPROVED)))  # opens the day's batch
    request = PaymentRequest(
        g, 1000, "k2", "f2", Actor.command("t"), payment_token=card_token(APPROVED), email="a@b.c"
    )

    statements = 9 if connection.vendor == "postgresql" else 18
    with django_assert_max_num_queries(statements + 6):
        attempt = pay(request)
    run_queued_tasks()

    assert attempt.status == "succeeded"
    assert attempt.receipt.reference_batch.description == "API Payments"
    assert len(mailoutbox) == 1
    assert attempt.receipt.number in mailoutbox[0].subject


def test_the_in_flight_statuses_are_exactly_the_unsettled_ones():
    """The partial indexes and IN_FLIGHT_SQL name the statuses as literals: they must stay the
    statuses of an attempt whose outcome is not written yet."""
    unsettled = {s for s in PaymentAttempt.Status if not PaymentAttempt(status=s).is_settled}
    assert set(IN_FLIGHT_STATUSES) == unsettled == {"processing", "unknown"}
    assert IN_FLIGHT_SQL == "status IN ('processing', 'unknown')"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's statement cache")
def test_psycopg_parses_no_statement_of_a_payment_anew(monkeypatch, mailoutbox):
    """psycopg caches the parse of a statement's placeholders only up to some length and
    number of parameters; POPS raises both (core/rows.py) so that the payment path's larger
    statements, run on every payment, are parsed once per process, not on each run."""
    from psycopg import _queries

    practice = run_import(small_document()).practice
    prepare_practice(practice, actor=Actor.command("tests"))
    g = Guarantor.objects.get(external_id="2010")
    parsed_anew: list[bytes] = []
    parse = _queries._query2pg_nocache

    def counted(query, encoding):
        parsed_anew.append(query)
        return parse(query, encoding)

    monkeypatch.setattr(_queries, "_query2pg_nocache", counted)
    request = PaymentRequest(
        g, 1000, "k2", "f2", Actor.command("t"), payment_token=card_token(APPROVED), email="a@b.c"
    )

    assert pay(request).status == "succeeded"
    assert parsed_anew == []
