"""Database helpers that must behave the same on SQLite and PostgreSQL."""

import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import OperationalError
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.special import RunPython

T = TypeVar("T")


def _forbid_changes(table: str, vendor: str) -> list[str]:
    message = f"{table} is append-only"
    if vendor == "postgresql":
        return [
            f"""CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$
                BEGIN RAISE EXCEPTION '{message}'; END; $$ LANGUAGE plpgsql""",
            f"""CREATE OR REPLACE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION {table}_append_only()""",
        ]
    if vendor == "sqlite":
        # DELETE stays possible on SQLite only because Django's test flush empties tables with
        # DELETE; the models refuse deletes in Python, and PostgreSQL refuses them here.
        return [
            f"""CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
                BEGIN SELECT RAISE(ABORT, '{message}'); END"""
        ]
    return []


def append_only(table: str) -> RunPython:
    """A migration operation installing a trigger that refuses UPDATE (and DELETE) on `table`.
    Safe to run again: a migration that makes SQLite rebuild the table (altering a column or an
    index does) loses the table's triggers, and must end with this operation once more."""

    def forwards(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
        for statement in _forbid_changes(table, schema_editor.connection.vendor):
            schema_editor.execute(statement)

    return RunPython(forwards, RunPython.noop)


def retry_on_conflict(work: Callable[[], T], attempts: int = 5) -> T:
    """Run `work` (which opens its own transaction) again when the database reports a deadlock
    or a serialization failure, so concurrency never turns into an error for the caller."""
    for attempt in range(attempts):
        try:
            return work()
        except OperationalError as error:
            if attempt == attempts - 1 or not _is_conflict(error):
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _is_conflict(error: OperationalError) -> bool:
    cause = error.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate in ("40P01", "40001"):  # deadlock_detected, serialization_failure
        return True
    return "database is locked" in str(error)
