"""Database helpers that must behave the same on SQLite and PostgreSQL."""

from typing import Any

from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.special import RunPython


def _forbid_changes(table: str, vendor: str) -> list[str]:
    message = f"{table} is append-only"
    if vendor == "postgresql":
        return [
            f"""CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$
                BEGIN RAISE EXCEPTION '{message}'; END; $$ LANGUAGE plpgsql""",
            f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION {table}_append_only()""",
        ]
    if vendor == "sqlite":
        # DELETE stays possible on SQLite only because Django's test flush empties tables with
        # DELETE; the models refuse deletes in Python, and PostgreSQL refuses them here.
        return [
            f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
                BEGIN SELECT RAISE(ABORT, '{message}'); END"""
        ]
    return []


def append_only(table: str) -> RunPython:
    """A migration operation installing a trigger that refuses UPDATE (and DELETE) on `table`."""

    def forwards(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
        for statement in _forbid_changes(table, schema_editor.connection.vendor):
            schema_editor.execute(statement)

    return RunPython(forwards, RunPython.noop)
