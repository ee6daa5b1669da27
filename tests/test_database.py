"""The database behaves as the ledger needs on both engines."""

import pytest
from django.db import DatabaseError, connection, transaction

from pops.core.audit import Actor, record
from pops.core.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite settings")
def test_sqlite_runs_as_a_real_embedded_database():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] >= 5000
        cursor.execute("PRAGMA foreign_keys")
        assert cursor.fetchone()[0] == 1
    assert connection.transaction_mode == "IMMEDIATE"


def test_audit_events_cannot_be_changed_through_the_models():
    event = record("test.happened", actor=Actor.command("tests"))
    event.action = "test.rewritten"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.happened"


def test_audit_events_cannot_be_changed_in_sql():
    event = record("test.happened", actor=Actor.command("tests"))
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE core_auditevent SET action = 'x' WHERE id = %s", [event.pk])
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM core_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "test.happened"


def test_audit_masks_secret_looking_values():
    event = record(
        "test.happened",
        actor=Actor.command("tests"),
        data={"api_key": "pops_abc", "nested": {"card_number": "4111"}, "count": 3},
    )
    assert event.data == {"api_key": "***", "nested": {"card_number": "***"}, "count": 3}


def test_audit_keeps_values_whose_keys_only_look_like_secrets():
    data = {
        "decline_code": "insufficient_funds",
        "idempotency_key": "k-1",
        "card_last4": "1111",
        "one_time_code": "123456",
        "payment_token": "tok",
        "password_hash": "x",
    }
    event = record("test.happened", actor=Actor.command("tests"), data=data)
    assert event.data == {
        "decline_code": "insufficient_funds",
        "idempotency_key": "k-1",
        "card_last4": "1111",
        "one_time_code": "***",
        "payment_token": "***",
        "password_hash": "***",
    }
