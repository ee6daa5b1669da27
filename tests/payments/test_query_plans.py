"""The payment's own reads stay index lookups however many attempts a practice has settled.

psycopg prepares a statement that has run five times on a connection, and PostgreSQL may then
run a generic plan, chosen without the parameters' values. Such a plan once read the money in
flight of a guarantor by intersecting with an index on every attempt's status (dead index
entries of settled attempts included, when vacuum lags): milliseconds per payment, growing
with each one. These tests plan the statements as a generic plan would and read the plan.
"""

import json

import pytest
from django.db import connection

from pops.core.audit import Actor
from pops.groups.services import prepare_practice
from pops.ledger.models import Guarantor
from pops.payments.models import PaymentAttempt
from pops.payments.services.attempts import (
    PaymentRequest,
    _begin_facts_params,
    _begin_facts_sql,
    pay,
)
from tests.conftest import run_import
from tests.payments.conftest import card_token
from tests.test_import_documents import small_document

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner"),
]


def generic_plan(sql: str, values: str) -> str:
    """The generic plan of `sql` (placeholders $1, $2, ...) run with `values` (SQL literals),
    as JSON text."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute("SET LOCAL enable_seqscan = off")  # tiny test tables: plan as if large
        cursor.execute("PREPARE pops_plan_test AS " + sql)
        try:
            cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE pops_plan_test({values})")
            return json.dumps(cursor.fetchone()[0])
        finally:
            cursor.execute("DEALLOCATE pops_plan_test")


def test_a_payment_reads_the_money_in_flight_and_its_key_from_their_own_indexes():
    practice = run_import(small_document()).practice
    prepare_practice(practice, actor=Actor.command("tests"))
    guarantor = Guarantor.objects.get(external_id="2010")
    for number in range(3):  # settled attempts, which the in-flight index leaves out
        request = PaymentRequest(
            guarantor, 100, f"k{number}", "f", Actor.command("t"), payment_token=card_token()
        )
        assert pay(request).status == PaymentAttempt.Status.SUCCEEDED

    sql, params = _begin_facts_sql("postgresql"), _begin_facts_params(request)
    names = list(params)
    for name in names:  # named parameters, numbered in order
        sql = sql.replace(f"%({name})s", f"${names.index(name) + 1}")
    values = ", ".join(repr(v).lower() if isinstance(v, bool) else repr(v) for v in params.values())
    plan = generic_plan(sql, values)

    assert '"Index Name": "attempt_in_flight"' in plan
    assert '"Index Name": "attempt_key_unique"' in plan
    assert "payments_pa_status" not in plan
