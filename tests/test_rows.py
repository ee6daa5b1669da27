"""core/rows.py answers and writes exactly what the ORM would, on SQLite and PostgreSQL."""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict

from pops.core import rows
from pops.core.models import AuditEvent
from pops.ledger.models import Account, Guarantor, LedgerEntry, Receipt, ReceiptNumber
from tests.conftest import run_import
from tests.test_import_documents import small_document

pytestmark = pytest.mark.django_db


def a_receipt(practice, number="R-1"):
    guarantor = Guarantor.objects.get(practice=practice, external_id="2010")
    return Receipt.objects.create(
        practice=practice,
        guarantor=guarantor,
        number=number,
        date=dt.date(2026, 3, 4),
        amount_cents=2500,
        method="Credit Card",
    )


def another_receipt(receipt, number=None):
    """A new receipt of `receipt`'s guarantor, under `number` (else `receipt`'s own)."""
    return Receipt(
        practice_id=receipt.practice_id,
        guarantor_id=receipt.guarantor_id,
        number=number or receipt.number,
        date=receipt.date,
        amount_cents=100,
    )


def fields(instance):
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_a_row_read_is_the_instance_the_orm_reads():
    practice = run_import(small_document()).practice
    event = AuditEvent.objects.create(
        action="test.read",
        practice=practice,
        actor_type=AuditEvent.ActorType.COMMAND,
        ip="203.0.113.9",
        data={"amount_cents": 1500, "nested": {"ok": True}},
    )
    receipt = a_receipt(practice)
    a_receipt(practice, "R-2")

    for instance in (event, receipt, Guarantor.objects.get(external_id="2010")):
        model = type(instance)
        read = rows.get(model, "id = %s", [instance.pk])
        assert read is not None
        assert fields(read) == fields(model.objects.get(pk=instance.pk))
        assert read._state.adding is False

    assert rows.get(AuditEvent, "id = %s", [event.pk + 10_000]) is None
    dates = rows.select(Receipt, "practice_id = %s", [practice.pk], order_by="date, id")
    assert [r.pk for r in dates] == list(
        Receipt.objects.filter(practice=practice)
        .order_by("date", "id")
        .values_list("pk", flat=True)
    )
    assert all(isinstance(r.date, dt.date) for r in dates)


def test_rows_inserted_read_back_through_the_orm_as_written():
    practice = run_import(small_document()).practice
    guarantor = Guarantor.objects.get(external_id="2010")
    first = AuditEvent(
        action="test.insert",
        practice_id=practice.pk,
        actor_type=AuditEvent.ActorType.SYSTEM,
        guarantor_id=guarantor.external_id,
        data={"attempt": 7, "transactions": ["sbx_1", "sbx_2"]},
    )
    second = AuditEvent(action="test.insert", actor_type=AuditEvent.ActorType.API, ip="")

    rows.insert(first, second)

    assert first.pk is not None
    assert second.pk not in (None, first.pk)
    assert first.at is not None  # auto_now_add, as save() would set it
    stored = AuditEvent.objects.get(pk=first.pk)
    assert model_to_dict(stored) == model_to_dict(first)
    assert stored.data == {"attempt": 7, "transactions": ["sbx_1", "sbx_2"]}
    assert AuditEvent.objects.get(pk=second.pk).ip is None  # an empty address is stored as NULL


def test_an_update_writes_the_named_fields_only_while_its_guard_holds():
    practice = run_import(small_document()).practice
    receipt = a_receipt(practice)
    receipt.status, receipt.void_reason, receipt.amount_cents = "voided", "test", 1

    assert rows.update(receipt, ["status", "void_reason"], where="status = %s", params=["paid"])
    stored = Receipt.objects.get(pk=receipt.pk)
    assert (stored.status, stored.void_reason) == ("voided", "test")
    assert stored.amount_cents != 1  # not named: not written

    receipt.void_reason = "again"
    assert not rows.update(receipt, ["void_reason"], where="status = %s", params=["paid"])
    assert Receipt.objects.get(pk=receipt.pk).void_reason == "test"

    gone = a_receipt(practice, "R-gone")
    Receipt.objects.filter(pk=gone.pk).delete()
    assert not rows.update(gone, ["void_reason"])  # (outside `together`: the real answer)


def test_a_refused_insert_raises_djangos_error_and_writes_nothing():
    practice = run_import(small_document()).practice
    receipt = a_receipt(practice)
    twin = another_receipt(receipt)  # the practice's receipt numbers are unique
    before = Receipt.objects.count()

    with pytest.raises(IntegrityError), transaction.atomic():
        rows.insert(twin)

    assert Receipt.objects.count() == before


def test_a_row_of_two_models_splits_into_both_and_the_rest():
    practice = run_import(small_document()).practice
    receipt = a_receipt(practice)
    both = f"{rows.columns(Receipt, 'r')}, {rows.columns(AuditEvent, 'a')}"
    joined = "FROM ledger_receipt r LEFT JOIN core_auditevent a ON a.id = %s WHERE r.id = %s"
    sql = f"SELECT {both}, 41 + 1 {joined}"
    row = rows.fetch_one(sql, [-1, receipt.pk])  # no audit event has id -1
    assert row is not None

    found, missing, rest = rows.split_row(row, Receipt, AuditEvent)

    assert fields(found) == fields(Receipt.objects.get(pk=receipt.pk))
    assert missing is None
    assert rest == 42


def test_a_related_row_is_read_once_and_kept(django_assert_num_queries):
    run_import(small_document())
    guarantor = rows.get(Guarantor, "external_id = %s", ["2010"])
    assert guarantor is not None

    with django_assert_num_queries(1):
        first = rows.related(guarantor, "practice")
        again = rows.related(guarantor, "practice")

    assert again is first
    assert fields(first) == fields(Guarantor.objects.get(pk=guarantor.pk).practice)


def an_event(action, **fields):
    return AuditEvent(action=action, actor_type=AuditEvent.ActorType.SYSTEM, **fields)


def test_writes_held_together_go_as_one_statement_on_postgresql(django_assert_num_queries):
    """Inserts (numbered in the order of their rows), an update and a raw write, held by the
    block and sent when it ends: one statement on PostgreSQL, one each on SQLite."""
    practice = run_import(small_document()).practice
    receipt, other = a_receipt(practice), a_receipt(practice, "R-2")
    first, second, third = an_event("t.1"), an_event("t.2"), an_event("t.3")
    receipt.void_reason = "together"
    one_statement = rows._db().vendor == "postgresql"

    with django_assert_num_queries(1 if one_statement else 4), rows.together():
        rows.insert(first, second)
        rows.update(receipt, ["void_reason"])
        rows.insert(third)
        rows.write("UPDATE ledger_receipt SET amount_cents = %s WHERE id = %s", [7, other.pk])
        assert first.pk is None  # held: nothing is sent yet

    stored = {e.pk: e.action for e in AuditEvent.objects.filter(action__startswith="t.")}
    assert stored == {first.pk: "t.1", second.pk: "t.2", third.pk: "t.3"}
    assert first.pk < second.pk < third.pk
    assert first._state.adding is False
    assert Receipt.objects.get(pk=receipt.pk).void_reason == "together"
    assert Receipt.objects.get(pk=other.pk).amount_cents == 7


def test_a_read_inside_the_block_sends_the_held_writes_first():
    practice = run_import(small_document()).practice
    receipt = a_receipt(practice)

    with rows.together():
        rows.write("UPDATE ledger_receipt SET amount_cents = %s WHERE id = %s", [9, receipt.pk])
        inner = an_event("t.inner")
        with rows.together():  # joins the outer block: sent when the outer one ends
            rows.insert(inner)
        assert inner.pk is None  # still held after the inner block
        row = rows.fetch_one("SELECT amount_cents FROM ledger_receipt WHERE id = %s", [receipt.pk])
        assert row == (9,)
        assert AuditEvent.objects.filter(action="t.inner").exists()
        rows.insert(an_event("t.after"))
        assert not AuditEvent.objects.filter(action="t.after").exists()  # (the ORM's read)

    assert AuditEvent.objects.filter(action="t.after").exists()


def test_a_block_that_raises_sends_nothing_it_held():
    practice = run_import(small_document()).practice
    receipt = a_receipt(practice)

    def fails_inside():
        with rows.together():
            rows.insert(an_event("t.lost"))
            rows.write("UPDATE ledger_receipt SET amount_cents = %s WHERE id = %s", [1, receipt.pk])
            raise ValueError("the transaction fails")

    with pytest.raises(ValueError, match="transaction fails"):
        fails_inside()

    assert not AuditEvent.objects.filter(action="t.lost").exists()
    assert Receipt.objects.get(pk=receipt.pk).amount_cents == 2500
    rows.insert(an_event("t.next"))  # the block is over: writes go at once again
    assert AuditEvent.objects.filter(action="t.next").exists()


def test_a_held_write_that_fails_raises_djangos_error_when_the_block_ends():
    practice = run_import(small_document()).practice
    receipt = a_receipt(practice)
    twin = another_receipt(receipt)

    def both():
        with transaction.atomic(), rows.together():
            event = an_event("t.with-the-twin")
            rows.insert(event)
            rows.insert(twin)
            assert event.pk is None  # held: the twin's error comes when the block ends

    with pytest.raises(IntegrityError):
        both()

    assert not AuditEvent.objects.filter(action="t.with-the-twin").exists()


def test_insert_once_writes_a_row_only_while_its_unique_values_are_free():
    practice = run_import(small_document()).practice
    receipt = a_receipt(practice)
    twin = another_receipt(receipt)
    fresh = another_receipt(receipt, "R-new")

    assert not rows.insert_once(twin, ("practice", "number"))
    assert twin.pk is None
    assert rows.insert_once(fresh, ("practice", "number"))
    assert Receipt.objects.get(pk=fresh.pk).number == "R-new"
    assert Receipt.objects.filter(practice=practice).count() == 2


def test_a_key_drawn_ahead_lets_a_row_and_those_that_refer_to_it_go_together(
    django_assert_num_queries,
):
    """On PostgreSQL a statement that runs anyway draws the new row's key (`next_key`), so the
    row and the rows that refer to it are held and go as one statement; on SQLite there is no
    key drawn, and the row is written at once, numbered by the database."""
    practice = run_import(small_document()).practice
    guarantor = Guarantor.objects.get(practice=practice, external_id="2010")
    postgres = rows._db().vendor == "postgresql"
    (key,) = rows.fetch_one(f"SELECT {rows.next_key(Receipt)}") or (None,)
    assert (key is not None) == postgres
    receipt = Receipt(
        practice_id=practice.pk, guarantor=guarantor, number="R-k", date=dt.date(2026, 3, 4)
    )
    receipt.amount_cents = 300

    with django_assert_num_queries(1 if postgres else 2), rows.together():
        rows.insert_keyed(receipt, key)
        assert receipt.pk is not None  # drawn, or numbered at once: later rows can refer to it
        entry = LedgerEntry(
            practice_id=practice.pk,
            guarantor=guarantor,
            receipt=receipt,
            kind=LedgerEntry.Kind.PAYMENT,
            debit=Account.CASH,
            credit=Account.UNAPPLIED,
            amount_cents=300,
        )
        rows.insert(entry)

    if postgres:
        assert receipt.pk == key
    assert Receipt.objects.get(pk=receipt.pk).number == "R-k"
    assert LedgerEntry.objects.get(pk=entry.pk).receipt_id == receipt.pk


def test_a_receipt_number_drawn_ahead_is_written_with_its_row():
    (key,) = rows.fetch_one(f"SELECT {rows.next_key(ReceiptNumber)}") or (None,)

    with rows.together():
        drawn = ReceiptNumber.next(key)
    at_once = ReceiptNumber.next()

    numbers = sorted(ReceiptNumber.objects.values_list("pk", flat=True))
    assert [drawn, at_once] == [f"P{pk:07d}" for pk in numbers]
    if key is not None:
        assert drawn == f"P{key:07d}"
