"""Rows read and written by statements built once, for the payment hot path.

The ORM composes every query anew, about a millisecond of CPU each on a small server, and a
payment makes some twenty. The payment path (the payment services, the Sandbox gateway's
charge, posting, the POPS batch, receipt numbers, audit records, the default Group and merchant
account) therefore reads and writes its rows through these helpers: each statement is built once
per model (and `where` clause) from the model's own field list, then run through Django's
cursor, so it takes part in the caller's transaction, in query logging and in the tests' query
counts like any ORM query. Values go through the fields' own conversions both ways
(`get_db_prep_save` in, the backend's and field's converters out), so a row read here is the
same model instance the ORM would have built, on SQLite and PostgreSQL. The writes that close a
transaction can be held and sent together (`together`): one round trip on PostgreSQL.

Everything else keeps the ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, models

M = TypeVar("M", bound=models.Model)
Converter = Callable[[Any, Any, Any], Any]


def _db() -> Any:
    """This thread's connection (`connection` looks it up again on every attribute)."""
    return connections[DEFAULT_DB_ALIAS]


def _cursor() -> Any:
    """Django's cursor wrapper (so statements are logged, counted and their errors are
    Django's), over one driver cursor kept for the connection: opening a cursor costs more
    than running one of these statements. A new connection gets a new cursor."""
    db = _db()
    kept = db.__dict__.get("_pops_rows_cursor")
    if kept is None or kept[0] is not db.connection or db.connection is None:
        db.ensure_connection()
        kept = (db.connection, db.create_cursor())
        db.__dict__["_pops_rows_cursor"] = kept
    return db._prepare_cursor(kept[1])


def fetch_one(sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> tuple[Any, ...] | None:
    _send_pending()
    cursor = _cursor()
    cursor.execute(sql, params)
    return cursor.fetchone()


def fetch_all(sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
    _send_pending()
    cursor = _cursor()
    cursor.execute(sql, params)
    return cursor.fetchall()


def execute(sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
    """Run one statement; answers the number of rows it changed."""
    _send_pending()
    cursor = _cursor()
    cursor.execute(sql, params)
    return cursor.rowcount


def row_lock(strength: str = "update", *, of: str = "") -> str:
    """` FOR UPDATE [OF table]` (or another strength: "key share") on PostgreSQL; nothing on
    SQLite, where the write lock every (IMMEDIATE) transaction takes when it begins already
    serializes the writers."""
    if connection.vendor != "postgresql":
        return ""
    return f" FOR {strength.upper()}" + (f" OF {of}" if of else "")


# psycopg keeps the parse of a statement's placeholders (%s to $1) in a cache, but only for a
# statement of at most 4,096 characters and 50 parameters (psycopg/_queries.py: to keep an ORM's
# one-off bulk INSERTs out of it). The payment path's statements are built once and run on every
# payment, and two are larger: the begin statement (some 5,000 characters) and the settling
# transaction's held writes (some 80 parameters). Parsed anew they cost 0.4 ms of CPU a payment,
# so POPS raises those limits when it starts (`CoreConfig.ready`).
CACHED_STATEMENT_LENGTH = 8192
CACHED_STATEMENT_PARAMS = 120


def let_psycopg_cache_the_hot_statements() -> None:
    try:
        from psycopg import _queries
    except ImportError:  # pragma: no cover - (SQLite only, without psycopg)
        return
    _queries.MAX_CACHED_STATEMENT_LENGTH = max(
        _queries.MAX_CACHED_STATEMENT_LENGTH, CACHED_STATEMENT_LENGTH
    )
    _queries.MAX_CACHED_STATEMENT_PARAMS = max(
        _queries.MAX_CACHED_STATEMENT_PARAMS, CACHED_STATEMENT_PARAMS
    )


# --- writes sent together ---------------------------------------------------------------------


@dataclass
class _Write:
    sql: str
    params: list[Any]
    inserted: tuple[models.Model, ...] = ()  # the new objects it writes
    numbered: bool = False  # whether their primary keys come back (RETURNING)


_pending: ContextVar[list[_Write] | None] = ContextVar("pops_rows_pending", default=None)


@contextmanager
def together() -> Iterator[None]:
    """Inside the block, `insert`, `update` and `write` are held, and sent when it ends: on
    PostgreSQL as one statement (each write a data-modifying WITH query), so a transaction's
    closing writes cost one round trip instead of one each; on SQLite one after the other.

    For writes nothing reads back before the block ends, inside one transaction (neither open
    nor close one inside the block): a statement that answers something (`fetch_one`,
    `fetch_all`, `execute`) sends what is held first, so reads always see the writes before
    them. New objects get their primary keys when the writes are sent, so an object whose key
    a later write needs (as a foreign key) is inserted before the block, or keyed ahead
    (`next_key`). The held writes of one block must not change one row twice. A block inside
    a block joins it. What is still held when the block raises is dropped, and the raise rolls
    the transaction back with what was sent."""
    if _pending.get() is not None:
        yield
        return
    token = _pending.set([])
    try:
        yield
        _send_pending()
    finally:
        _pending.reset(token)


def holding() -> bool:
    """Whether writes are being held (inside `together`)."""
    return _pending.get() is not None


def write(sql: str, params: Sequence[Any] = ()) -> None:
    """Run one INSERT, UPDATE or DELETE whose answer nobody needs (held inside `together`)."""
    _hold_or_send(_Write(sql, list(params)))


def _hold_or_send(item: _Write) -> None:
    held = _pending.get()
    if held is None:
        _send([item])
    else:
        held.append(item)


def _send_pending() -> None:
    held = _pending.get()
    if held:
        writes = held[:]
        held.clear()
        _send(writes)


def _send(writes: list[_Write]) -> None:
    if len(writes) == 1 or _db().vendor != "postgresql":
        cursor = _cursor()
        for item in writes:
            cursor.execute(item.sql, item.params)
            if item.numbered:  # (keys are numbered in the order of the VALUES rows)
                _number(item.inserted, sorted(pk for (pk,) in cursor.fetchall()))
            elif item.inserted:
                _number(item.inserted, [obj.pk for obj in item.inserted])
        return
    # One statement: WITH w0 AS (INSERT ... RETURNING id), w1 AS (UPDATE ...) SELECT the new
    # ids of each INSERT. Identity values are drawn in the order of the VALUES rows, so the
    # ids in ascending order are the rows' in order.
    queries, params, answers = [], [], []
    for index, item in enumerate(writes):
        queries.append(f"w{index} AS ({item.sql})")
        params.extend(item.params)
        if item.numbered:
            pk = _quote(item.inserted[0]._meta.pk.column)
            answers.append(f"(SELECT array_agg({pk} ORDER BY {pk}) FROM w{index})")  # noqa: S608
    cursor = _cursor()
    cursor.execute(f"WITH {', '.join(queries)} SELECT {', '.join(answers) or 'NULL'}", params)
    row = iter(cursor.fetchone() if answers else ())
    for item in writes:
        if item.inserted:
            _number(item.inserted, next(row) if item.numbered else [o.pk for o in item.inserted])


def _number(objects: Sequence[models.Model], pks: Sequence[Any]) -> None:
    alias = _db().alias
    for obj, pk in zip(objects, pks, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = alias


# --- model rows -------------------------------------------------------------------------------


def _fields(model: type[models.Model]) -> list[models.Field]:
    return list(model._meta.concrete_fields)


def _field(model: type[models.Model], name: str) -> models.Field:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)  # a concrete field, not a reverse relation
    return field


def _quote(name: str | None) -> str:
    assert name is not None
    return connection.ops.quote_name(name)


@cache
def _select_sql(model: type[models.Model], where: str, suffix: str) -> str:
    table = _quote(model._meta.db_table)
    columns = ", ".join(f"{table}.{_quote(f.column)}" for f in _fields(model))
    return f"SELECT {columns} FROM {table} WHERE {where}{suffix}"  # noqa: S608 (our own names)


@cache
def _converters(model: type[models.Model], vendor: str) -> list[tuple[int, Any, list[Converter]]]:
    """(column index, column, converters) of the columns whose values need converting."""
    out = []
    for index, field in enumerate(_fields(model)):
        column = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if found:
            out.append((index, column, found))
    return out


@cache
def _attnames(model: type[models.Model]) -> tuple[str, ...]:
    return tuple(f.attname for f in _fields(model))


def from_row(model: type[M], row: Sequence[Any]) -> M:
    """A model instance from a row of `_select_sql`'s columns, converted as the ORM would."""
    db = _db()
    values = list(row)
    for index, column, converters in _converters(model, db.vendor):
        for converter in converters:
            values[index] = converter(values[index], column, db)
    return model.from_db(db.alias, _attnames(model), values)


def columns(model: type[models.Model], alias: str) -> str:
    """The model's columns under a table alias, for a statement that reads its row along with
    others (split the answer with `split_row`)."""
    return ", ".join(f"{alias}.{_quote(f.column)}" for f in _fields(model))


def split_row(row: Sequence[Any], *parts: type[models.Model]) -> tuple[Any, ...]:
    """Split a row that starts with the columns of each model in `parts` (in order, as from
    `columns`): an instance for each (None where a LEFT JOIN found no row: its primary key,
    the first column, is NULL), then the rest of the row's values."""
    out: list[Any] = []
    start = 0
    for model in parts:
        end = start + len(_fields(model))
        values = row[start:end]
        out.append(None if values[0] is None else from_row(model, values))
        start = end
    return (*out, *row[start:])


def get(model: type[M], where: str, params: Sequence[Any], *, lock: str = "") -> M | None:
    """The first row of `model` matching `where` (SQL over its own columns, %s placeholders),
    row-locked with the strength `lock` names ("update", "key share"; see `row_lock`)."""
    suffix = " LIMIT 1"
    if lock:
        suffix += row_lock(lock)
    row = fetch_one(_select_sql(model, where, suffix), params)
    return None if row is None else from_row(model, row)


def related(instance: models.Model, name: str) -> Any:
    """`instance.<name>` (a foreign key that is set), read with `get` the first time and kept
    on the instance, as the ORM would keep it."""
    relation = getattr(type(instance), name)
    if not relation.is_cached(instance):
        target = get(relation.field.related_model, "id = %s", [getattr(instance, f"{name}_id")])
        assert target is not None  # a foreign key
        setattr(instance, name, target)
    return getattr(instance, name)


def select(model: type[M], where: str, params: Sequence[Any], *, order_by: str = "") -> list[M]:
    """The rows of `model` matching `where`, in `order_by` (SQL over its columns)."""
    suffix = f" ORDER BY {order_by}" if order_by else ""
    return [from_row(model, row) for row in fetch_all(_select_sql(model, where, suffix), params)]


# Fields whose Python value is already what the database takes (text, whole numbers, booleans,
# foreign keys): their value is passed as it is. Every other field (dates and times, JSON, an
# IP address...) goes through its own `pre_save` and `get_db_prep_save`, as the ORM's would.
_AS_IS = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.BooleanField,
    models.ForeignKey,
)


@cache
def _insert_sql(
    model: type[models.Model], rows: int, keyed: bool = False
) -> tuple[str, list[tuple[str, Any]], bool]:
    """The statement, its values' (attribute name, field to convert it with, or None), and
    whether the database numbers the rows (an auto-incremented primary key the objects do not
    carry, `keyed` False: the statement answers the new keys); any other key (a UUID, or one
    drawn by `next_key`) is the object's own."""
    numbered = isinstance(model._meta.pk, models.AutoField) and not keyed
    fields = [f for f in _fields(model) if not (f.primary_key and numbered)]
    table = _quote(model._meta.db_table)
    if fields:
        columns = ", ".join(_quote(f.column) for f in fields)
        one = "(" + ", ".join(["%s"] * len(fields)) + ")"
        values = ", ".join([one] * rows)
        sql = f"INSERT INTO {table} ({columns}) VALUES {values}"  # noqa: S608 (our own names)
    else:  # (a row of nothing but its numbered key)
        assert rows == 1
        sql = f"INSERT INTO {table} DEFAULT VALUES"
    if numbered:
        sql += f" RETURNING {_quote(model._meta.pk.column)}"
    return sql, [(f.attname, None if isinstance(f, _AS_IS) else f) for f in fields], numbered


def next_key(model: type[models.Model]) -> str:
    """An SQL expression to put in a statement that runs anyway, before `model`'s new row is
    written: on PostgreSQL it draws the row's primary key from the key's sequence, so that the
    row's INSERT, and those of rows that refer to it, can be held together (`insert_keyed`);
    on SQLite it is NULL, and the INSERT numbers the row."""
    if _db().vendor != "postgresql":
        return "NULL"
    return f"nextval('{_key_sequence(model)}'::regclass)"


@cache
def _key_sequence(model: type[models.Model]) -> str:
    """The sequence of `model`'s primary key (PostgreSQL), looked up once per process."""
    row = fetch_one(
        "SELECT pg_get_serial_sequence(%s, %s)", [model._meta.db_table, model._meta.pk.column]
    )
    assert row is not None
    assert row[0], "an auto-incremented key has its sequence"
    return str(row[0])


def insert_keyed(obj: models.Model, key: int | None) -> None:
    """INSERT `obj` with the primary key `next_key` drew (held inside `together`); with none
    (SQLite), at once, numbered by the database. Either way `obj.pk` is set on return, for
    the rows that refer to it."""
    if key is None:
        _send_pending()
        sql, fields, numbered = _insert_sql(type(obj), 1)
        _send([_Write(sql, _insert_params([obj], fields), (obj,), numbered)])
        return
    obj.pk = key
    sql, fields, _ = _insert_sql(type(obj), 1, keyed=True)
    _hold_or_send(_Write(sql, _insert_params([obj], fields), (obj,)))


def insert(*objects: M) -> None:
    """INSERT new instances of one model in one statement, setting their primary keys (or
    writing their own, when the key is not numbered by the database). Held inside
    `together`: the keys are set when the writes are sent."""
    if not objects:
        return
    sql, fields, numbered = _insert_sql(type(objects[0]), len(objects))
    _hold_or_send(_Write(sql, _insert_params(objects, fields), objects, numbered))


def insert_once(obj: models.Model, unique: tuple[str, ...]) -> bool:
    """INSERT `obj` unless its row would break the unique constraint over the fields `unique`
    (ON CONFLICT DO NOTHING); answers whether it was written. Sent at once, never held: a
    concurrent insert of the same values waits for the first one's transaction, then writes
    nothing."""
    sql, fields = _insert_once_sql(type(obj), unique)
    row = fetch_one(sql, _insert_params([obj], fields))
    if row is None:
        return False
    _number([obj], row)
    return True


@cache
def _insert_once_sql(
    model: type[models.Model], unique: tuple[str, ...]
) -> tuple[str, list[tuple[str, Any]]]:
    sql, fields, numbered = _insert_sql(model, 1)
    assert numbered  # (its RETURNING answers whether a row was written)
    target = ", ".join(_quote(_field(model, name).column) for name in unique)
    returning = sql.rindex(" RETURNING ")
    return f"{sql[:returning]} ON CONFLICT ({target}) DO NOTHING{sql[returning:]}", fields


def _insert_params(objects: Sequence[models.Model], fields: list[tuple[str, Any]]) -> list[Any]:
    """The values of new `objects` for their INSERT, converted as the ORM's would be."""
    db = _db()
    return [
        getattr(obj, attname)
        if field is None
        else field.get_db_prep_save(field.pre_save(obj, True), db)
        for obj in objects
        for attname, field in fields
    ]


def update(
    obj: models.Model,
    fields: Iterable[str],
    *,
    where: str = "",
    params: Sequence[Any] = (),
    answer: bool = True,
) -> bool:
    """UPDATE the named fields of `obj`'s row to its attribute values (plus `where`, e.g. a
    status guard); answers whether the row was changed. Held inside `together` when no answer
    is needed (`answer` False, or no `where`: the row is `obj`'s own), and answers True."""
    model = type(obj)
    chosen = [_field(model, name) for name in fields]
    sql = _update_sql(model, tuple(f.name for f in chosen), where)
    db = _db()
    values = [f.get_db_prep_save(f.pre_save(obj, False), db) for f in chosen]
    if _pending.get() is None or (where and answer):
        return execute(sql, [*values, obj.pk, *params]) > 0
    write(sql, [*values, obj.pk, *params])
    return True


@cache
def _update_sql(model: type[models.Model], names: tuple[str, ...], where: str) -> str:
    table = _quote(model._meta.db_table)
    sets = ", ".join(f"{_quote(_field(model, n).column)} = %s" for n in names)
    pk = _quote(model._meta.pk.column)
    extra = f" AND ({where})" if where else ""
    return f"UPDATE {table} SET {sets} WHERE {pk} = %s{extra}"  # noqa: S608 (our own names)
