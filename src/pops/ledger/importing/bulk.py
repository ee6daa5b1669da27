"""Fast inserts and updates by rows of values, the same on SQLite and PostgreSQL.

PostgreSQL takes new rows through COPY with ids drawn from the table's sequence beforehand, so
the caller knows every new id without reading them back. SQLite takes them through executemany:
an import runs in an IMMEDIATE transaction, which holds the database's write lock, so ids past
the current maximum are free. Values go to SQLite in the form Django's own queries store and
compare (a date or time column is text there: see `_for_sqlite`).
"""

import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, cast

import psycopg
from psycopg.adapt import Transformer

try:  # psycopg's formatter of COPY rows (its C version with psycopg[binary])
    from psycopg._copy_base import format_row_text as _format_row_text
except ImportError:  # pragma: no cover - another psycopg: the writing thread formats
    _format_row_text = None
from django.db import connection, models


def _for_sqlite(
    model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Iterable[Sequence[Any]]:
    """Rows with their date and time values as Django's SQLite backend stores them.

    Left to the sqlite3 module, an aware datetime would be stored as "2026-11-26 09:30:00+00:00"
    where the ORM stores (and compares against) "2026-11-26 09:30:00", so the same instant
    would compare unequal. Only the date/time columns are converted; a value repeated in every
    row (an import's one `created_at`) is converted once."""
    fields = {field.column: field for field in model._meta.concrete_fields}
    adapters: dict[int, Callable[[Any], Any]] = {}
    for index, column in enumerate(columns):
        field = fields.get(column)
        if isinstance(field, models.DateTimeField):
            adapters[index] = connection.ops.adapt_datetimefield_value
        elif isinstance(field, models.DateField):
            adapters[index] = connection.ops.adapt_datefield_value
        elif isinstance(field, models.TimeField):
            adapters[index] = connection.ops.adapt_timefield_value
    if not adapters:
        return rows
    return _adapted(rows, adapters)


def _sequence(rows: Iterable[Sequence[Any]]) -> Sequence[Sequence[Any]]:
    """For the type checker only: Django's executemany takes any iterable of rows (so a large
    load is not copied into a second list), though its stubs ask for a sequence."""
    return cast(Sequence[Sequence[Any]], rows)


def _adapted(
    rows: Iterable[Sequence[Any]], adapters: dict[int, Callable[[Any], Any]]
) -> Iterable[Sequence[Any]]:
    seen: dict[tuple[int, Any], Any] = {}
    for row in rows:
        values = list(row)
        for index, adapt in adapters.items():
            value = values[index]
            if value is None or isinstance(value, str):
                continue
            key = (index, value)
            if key not in seen:
                if len(seen) > 10_000:
                    seen.clear()
                seen[key] = adapt(value)
            values[index] = seen[key]
        yield values


class _Background:
    """PostgreSQL: the COPYs of an import run on a thread of their own, on the import's
    connection, one after another in the order they were asked for, while the import goes on
    preparing the next rows. With the foreign keys of the written tables checked at the end of
    each statement (SET CONSTRAINTS ... IMMEDIATE) instead of all at COMMIT, the server checks
    one table's keys while Python builds the next table's rows: the two use both cores.

    Every other query of the import (Django's, on the same connection) first waits for the
    queued writes (`connection.execute_wrapper`), so it sees them, and the connection never
    has two statements at once. New ids come from the sequences through a second connection
    (sequences are not transactional), so drawing them never waits for a write."""

    def __init__(self) -> None:
        self.raw = connection.connection
        self.jobs: queue.Queue[Callable[[Any], None] | None] = queue.Queue()
        self.error: BaseException | None = None
        self.sequences: Any = None
        self.transformer: Any = None
        self.thread = threading.Thread(target=self._run, name="import-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            if self.error is None:
                try:
                    job(self.raw)
                except BaseException as error:  # re-raised by the importing thread
                    self.error = error
            self.jobs.task_done()

    def submit(self, job: Callable[[Any], None]) -> None:
        self.jobs.put(job)

    def drain(self) -> None:
        """Wait until every queued write is done; raise the first one's error, if any."""
        self.jobs.join()
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def format(self, rows: Sequence[Sequence[Any]]) -> bytearray | None:
        if _format_row_text is None:
            return None
        if self.transformer is None:
            self.transformer = Transformer(self.raw)
        data = bytearray()
        for row in rows:
            _format_row_text(row, self.transformer, data)
        return data

    def cancel(self) -> None:
        """Skip the writes still queued (the transaction is being rolled back)."""
        if self.error is None:
            self.error = _Cancelled()

    def waiting(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.drain()
        return execute(sql, params, many, context)

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join()
        if self.sequences is not None:
            self.sequences.close()

    def sequence_connection(self) -> Any:
        if self.sequences is None:
            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            self.sequences = psycopg.connect(**params, autocommit=True)
        return self.sequences


class _Cancelled(Exception):
    pass


# Per thread, as Django's connections are: imports in other threads (the API's) have their own.
_local = threading.local()


def _current() -> _Background | None:
    return getattr(_local, "background", None)


def discard_background_writes() -> None:
    """Wait for the queued writes and forget their error: the caller rolls them back."""
    background = _current()
    if background is not None:
        with suppress(Exception):
            background.drain()


# The writing thread takes Python's lock back after each send to the server; while the
# importing thread computes, it would wait up to the switch interval (5 ms) every time. The
# interval is shortened while any import writes in the background (it is process-wide).
_interval_lock = threading.Lock()
_interval_users = 0
_interval_saved = 0.0


def _short_switch_interval(enter: bool) -> None:
    global _interval_users, _interval_saved
    with _interval_lock:
        if enter:
            if _interval_users == 0:
                _interval_saved = sys.getswitchinterval()
                sys.setswitchinterval(min(_interval_saved, 0.001))
            _interval_users += 1
        else:
            _interval_users -= 1
            if _interval_users == 0:
                sys.setswitchinterval(_interval_saved)


@contextmanager
def background_writes(written: Sequence[type[models.Model]]) -> Iterator[None]:
    """Inside, on PostgreSQL, `insert_rows` and `update_rows` return at once and write on a
    thread of their own (see `_Background`); nothing to do elsewhere. Leaving waits for every
    write. The deferred foreign keys of the `written` tables are checked per statement inside,
    as they are deferred again afterwards."""
    if connection.vendor != "postgresql" or _current() is not None:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.conname) "
            "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE c.contype = 'f' AND c.condeferrable AND c.condeferred "
            "AND c.conrelid = ANY(%s::regclass[]) ORDER BY 1",
            [[model._meta.db_table for model in written]],
        )
        constraints = [row[0] for row in cursor.fetchall()]
        if constraints:
            cursor.execute(f"SET CONSTRAINTS {', '.join(constraints)} IMMEDIATE")
    background = _local.background = _Background()
    failed = True
    _short_switch_interval(True)
    try:
        with connection.execute_wrapper(background.waiting):
            yield
            background.drain()
        failed = False
    finally:
        _short_switch_interval(False)
        _local.background = None
        if failed:
            background.cancel()
        background.close()
    if not failed and constraints:
        with connection.cursor() as cursor:
            cursor.execute(f"SET CONSTRAINTS {', '.join(constraints)} DEFERRED")


def _copy(table: str, names: str, rows: Sequence[Sequence[Any]]) -> Callable[[Any], None]:
    """The COPY of `rows` into `table`, as a job for a psycopg connection. In the background,
    the rows are put in COPY's text format by the caller's thread (psycopg's own formatter),
    so the job only sends bytes: the writing thread needs Python's lock only to send."""
    background = _current()
    data = background.format(rows) if background is not None else None

    def job(raw: Any) -> None:
        with raw.cursor() as cursor, cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
            if data is not None:
                copy.write(data)
            else:
                for row in rows:
                    copy.write_row(row)

    return job


def allocate_ids(model: type[models.Model], count: int) -> list[int]:
    """`count` new ids for `model`'s table (concurrency-safe on PostgreSQL: drawn from the
    sequence; on SQLite the caller holds the write lock)."""
    if count == 0:
        return []
    table = model._meta.db_table
    background = _current()
    if background is not None:
        with background.sequence_connection().cursor() as cursor:
            return _draw(cursor, table, count)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            return _draw(cursor, table, count)
        cursor.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"')  # noqa: S608
        start = cursor.fetchone()[0] + 1
        return list(range(start, start + count))


def _draw(cursor: Any, table: str, count: int) -> list[int]:
    # The sequence's name first: inside nextval() below, pg_get_serial_sequence would run once
    # per row (measured 5-8x slower: 0.8-1.0 s instead of 0.1 s for 93,000).
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    sequence = cursor.fetchone()[0]
    cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, count])
    return [row[0] for row in cursor.fetchall()]


def insert_rows(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert rows whose values follow `columns` (which include "id")."""
    if not rows:
        return
    table = model._meta.db_table
    names = ", ".join(f'"{name}"' for name in columns)
    background = _current()
    if background is not None:
        background.submit(_copy(table, names, rows))
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _copy(table, names, rows)(cursor.connection)
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(
                f'INSERT INTO "{table}" ({names}) VALUES ({marks})',  # noqa: S608
                _sequence(_for_sqlite(model, columns, rows)),
            )


def update_rows(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Update rows by id: each row is `(id, *values)` with values following `columns`."""
    if not rows:
        return
    background = _current()
    if background is not None:
        background.submit(lambda raw: _update(raw, model, columns, rows))
        return
    with connection.cursor() as cursor:
        _update(cursor, model, columns, rows)


def _update(
    cursor: Any, model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """`update_rows` with `cursor` (a Django cursor, or on PostgreSQL a psycopg connection)."""
    table = model._meta.db_table
    if isinstance(cursor, psycopg.Connection):
        with cursor.cursor() as raw:
            _update(raw, model, columns, rows)
        return
    if connection.vendor == "postgresql" and len(rows) > 200:
        names = ", ".join(f'"{c}"' for c in ["id", *columns])
        cursor.execute(
            f'CREATE TEMP TABLE "_upd" ON COMMIT DROP AS '  # noqa: S608
            f'SELECT {names} FROM "{table}" LIMIT 0'
        )
        with cursor.copy(f'COPY "_upd" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
        assignments = ", ".join(f'"{c}" = "_upd"."{c}"' for c in columns)
        cursor.execute(
            f'UPDATE "{table}" SET {assignments} FROM "_upd" '  # noqa: S608
            f'WHERE "{table}"."id" = "_upd"."id"'
        )
        cursor.execute('DROP TABLE "_upd"')
    else:
        assignments = ", ".join(f'"{c}" = %s' for c in columns)
        values: Iterable[Sequence[Any]] = [(*row[1:], row[0]) for row in rows]
        if connection.vendor == "sqlite":
            values = _for_sqlite(model, [*columns, "id"], values)
        cursor.executemany(
            f'UPDATE "{table}" SET {assignments} WHERE "id" = %s',  # noqa: S608
            _sequence(values),
        )
