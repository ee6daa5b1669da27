"""Import: an upsert by id of everything in one document, all or nothing.

`import_document` reads the document as a stream, validates every item, checks every reference
against the document and the practice's rows, then writes inside one transaction: new rows in
bulk, changed rows in place, and the ledger entries that record what money changed. A problem
found at any point rolls everything back, and all problems found are reported together.
"""

import datetime as dt
import gc
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import IO, Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import F, Model, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from pydantic import ValidationError

from pops.core import audit, clock
from pops.core.money import format_amount
from pops.ledger.importing import bulk
from pops.ledger.importing.reader import MalformedDocument, read_sections
from pops.ledger.importing.schema import (
    SECTIONS,
    EncounterIn,
    GuarantorIn,
    PatientIn,
    PracticeIn,
    ReceiptIn,
    validate_item,
)
from pops.ledger.models import (
    Account,
    Application,
    Appointment,
    CollectionAgency,
    Encounter,
    Facility,
    Guarantor,
    LedgerEntry,
    Patient,
    Practice,
    Provider,
    Receipt,
    ServiceLine,
    Statement,
)

MAX_PROBLEMS = 1000
CHUNK = 5000


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class ImportRejected(Exception):
    """The document was refused; nothing was written."""

    def __init__(self, problems: list[Problem]):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


# What the summary counts, always all of it and in this order: the sections, and the
# encounters' lines after the encounters.
TALLIED = [
    "facilities",
    "providers",
    "collection_agencies",
    "guarantors",
    "patients",
    "encounters",
    "lines",
    "receipts",
    "statements",
    "appointments",
]


@dataclass
class ImportResult:
    practice: Practice
    tallies: dict[str, Tally] = field(
        default_factory=lambda: defaultdict(Tally, {name: Tally() for name in TALLIED})
    )
    entries: int = 0

    @property
    def lines(self) -> int:
        tally = self.tallies.get("lines", Tally())
        return tally.created + tally.updated + tally.unchanged

    def summary(self) -> dict[str, Any]:
        return {
            "practice": self.practice.external_id,
            "ledger_entries": self.entries,
            **{name: vars(tally) for name, tally in self.tallies.items()},
        }


def numeric(number: str) -> int | None:
    """An encounter number as an integer where it is one (for numeric ordering)."""
    return int(number) if number.isdigit() and len(number) <= 18 else None


def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for value in values:
        batch.append(value)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


class _Problems(list[Problem]):
    def add(self, path: str, message: str) -> None:
        if len(self) < MAX_PROBLEMS:
            self.append(Problem(path, message))
        elif len(self) == MAX_PROBLEMS:
            self.append(Problem("", "too many problems; the rest are not listed"))

    def from_validation(self, prefix: str, error: ValidationError) -> None:
        for detail in error.errors(include_url=False):
            path = prefix
            for part in detail["loc"]:
                path += f"[{part}]" if isinstance(part, int) else f".{part}"
            self.add(path, detail["msg"])


@dataclass
class _Document:
    """What reading found: the practice, each section's valid `(index, item)` pairs, and the
    ids of items that were refused (so that references to them are not reported as well)."""

    practice: PracticeIn | None = None
    practice_given: bool = False
    sections: dict[str, list[tuple[int, Any]]] = field(
        default_factory=lambda: {name: [] for name in SECTIONS}
    )
    refused_ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    complete: bool = True


def _key(section: str) -> str:
    return "number" if section == "encounters" else "id"


def _read(stream: IO[bytes], problems: _Problems, streamer: "_Streamer | None" = None) -> _Document:
    """Validate every item of the document (telling `streamer` of each section item read and
    each section ended, if one is given)."""
    document = _Document()
    sections = document.sections
    current = ""
    try:
        for name, index, value, plain in read_sections(stream, SECTIONS):
            if streamer is not None and name != current:
                if current:
                    streamer.section_done(document, current)
                current = name
            if name == "practice":
                if value is None:
                    continue
                document.practice_given = True
                try:
                    document.practice = PracticeIn.model_validate(value)
                except ValidationError as error:
                    problems.from_validation("practice", error)
            elif name not in SECTIONS:
                problems.add(name, "is not a section of the import document")
            elif index is None:
                if value is not None:
                    problems.add(name, "must be a list")
            else:
                try:
                    sections[name].append((index, validate_item(SECTIONS[name], value, plain)))
                except ValidationError as error:
                    problems.from_validation(f"{name}[{index}]", error)
                    key = value.get(_key(name)) if isinstance(value, dict) else None
                    if isinstance(key, str):
                        document.refused_ids[name].add(key.strip())
                else:
                    if streamer is not None:
                        streamer.item(document, name)
        if streamer is not None and current:
            streamer.section_done(document, current)
    except MalformedDocument as error:
        problems.add(error.path, str(error))
        document.complete = False
    for name in SECTIONS:
        key = _key(name)
        seen: dict[str, int] = {}
        for index, item in sections[name]:
            value = getattr(item, key)
            if value in seen:
                problems.add(
                    f"{name}[{index}].{key}",
                    f"{value!r} appears twice (also {name}[{seen[value]}])",
                )
            seen[value] = index
    return document


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the import (as it was before, afterwards).

    An import keeps every validated item until it writes, millions of objects that no cycle
    ties together; left on, the collector scans them again and again as they accumulate (a
    third of the reading time, measured at 75,000 lines). Memory is freed by reference
    counting all the same."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def import_document(
    stream: IO[bytes], *, actor: audit.Actor, practice: Practice | None = None
) -> ImportResult:
    """Import one document. With `practice` (an API key's), the document may only speak of that
    practice. Raises ImportRejected with every problem found; then nothing is written.

    Problems are found in two rounds. Reading checks each item on its own and, unless the JSON
    itself is broken, the references between items and to stored rows are checked too, so one
    answer lists them all. The money rules that need the stored state (no line owing less than
    was paid on it, no refund beyond the money received) are checked as the document is
    written, once it has passed the first round."""
    with _collector_paused():
        return _import_document(stream, actor=actor, practice=practice)


def _import_document(
    stream: IO[bytes], *, actor: audit.Actor, practice: Practice | None
) -> ImportResult:
    problems = _Problems()
    with ExitStack() as stack:
        streamer = _Streamer(stack, problems) if _Streamer.possible(practice) else None
        document = _read(stream, problems, streamer)
        practice_in = document.practice
        if (
            practice is not None
            and practice_in is not None
            and practice_in.id != practice.external_id
        ):
            problems.add(
                "practice.id",
                f"this API key belongs to practice {practice.external_id!r}, "
                f"not {practice_in.id!r}",
            )
            raise ImportRejected(problems)
        if practice is None and not document.practice_given and document.complete:
            problems.add("practice", 'is required: {"id", "name", "time_zone"}')
        if problems and (not document.complete or (practice is None and practice_in is None)):
            raise ImportRejected(problems)  # rolls back what was streamed, if anything
        run = streamer.finish(document) if streamer is not None else None
        with transaction.atomic() if run is None else nullcontext():
            if run is None:
                target, created = _lock_practice(practice, practice_in)
                run = _Run(target, document.sections, problems, document.refused_ids, new=created)
            run.check_references()
            if problems:
                raise ImportRejected(problems)  # rolls back the practice row, if it was new
            run.write()
            if problems:
                raise ImportRejected(problems)  # rolls back everything written
            audit.record(
                "ledger.import.completed",
                actor=actor,
                practice=run.practice,
                data=run.result.summary(),
            )
            return run.result
    raise AssertionError("unreachable")  # for the type checker: the block returns or raises


class _Streamer:
    """The first import of a practice on PostgreSQL starts writing while the document is still
    being read: the rows of each section (in chunks) as soon as every item they refer to has
    been written, in the background (bulk.background_writes). The server then stores and
    checks rows on one core while the next items are read and validated on the other.

    Nothing changes for the outcome: it all happens in the import's one transaction, which
    any problem found later rolls back, and every problem is still found and reported the
    same way (rows are written ahead only where no problem can arise from writing them).
    Anything unusual, such as a second "practice" key, gives up the rows written ahead (a
    savepoint) and the import goes on the ordinary way."""

    CHUNK = 2000

    @staticmethod
    def possible(practice: Practice | None) -> bool:
        return practice is None and connection.vendor == "postgresql"

    def __init__(self, stack: ExitStack, problems: _Problems):
        self.stack = stack
        self.problems = problems
        self.practice_in: PracticeIn | None = None
        self.run: _Run | None = None
        self.savepoint: str | None = None
        self.abandoned = False
        self.next_at: dict[str, int] = defaultdict(lambda: self.CHUNK)

    def section_done(self, document: _Document, name: str) -> None:
        if name == "practice":
            if self.practice_in is None and not self.abandoned:
                self._start(document)
            elif document.practice is not self.practice_in:
                self._abandon()
        elif self.run is not None:
            self.run.advance()

    def item(self, document: _Document, name: str) -> None:
        if self.run is not None and len(document.sections[name]) >= self.next_at[name]:
            self.next_at[name] = len(document.sections[name]) + self.CHUNK
            self.run.advance()

    def _start(self, document: _Document) -> None:
        practice_in = document.practice
        if practice_in is None or Practice.objects.filter(external_id=practice_in.id).exists():
            self.abandoned = True  # a later import: it looks up stored rows, nothing to gain
            return
        self.practice_in = practice_in
        self.stack.enter_context(transaction.atomic())
        self.stack.enter_context(bulk.background_writes(_Run.WRITTEN))
        self.savepoint = transaction.savepoint()
        target, created = _lock_practice(None, practice_in)
        if created:
            self.run = _Run(
                target, document.sections, self.problems, document.refused_ids, new=True
            )

    def _abandon(self) -> None:
        if self.savepoint is not None:
            bulk.discard_background_writes()
            transaction.savepoint_rollback(self.savepoint)
        self.run, self.savepoint, self.abandoned = None, None, True

    def finish(self, document: _Document) -> "_Run | None":
        """The run to go on with, or None to go the ordinary way (inside the transaction
        opened here, if any: then the ordinary way nests a savepoint in it)."""
        if self.run is None or self.abandoned or document.practice is not self.practice_in:
            if self.savepoint is not None:
                self._abandon()
            return None
        return self.run


def _lock_practice(
    practice: Practice | None, practice_in: PracticeIn | None
) -> tuple[Practice, bool]:
    """The practice row, locked so imports of one practice run one at a time, and whether this
    import created it (then it has no other rows yet)."""
    created = False
    if practice is not None:
        locked = Practice.objects.select_for_update().get(pk=practice.pk)
    else:
        assert practice_in is not None
        _, created = Practice.objects.get_or_create(
            external_id=practice_in.id,
            defaults={"name": practice_in.name, "time_zone": practice_in.time_zone},
        )
        locked = Practice.objects.select_for_update().get(external_id=practice_in.id)
    if practice_in is not None and (locked.name, locked.time_zone) != (
        practice_in.name,
        practice_in.time_zone,
    ):
        locked.name, locked.time_zone = practice_in.name, practice_in.time_zone
        locked.save(update_fields=["name", "time_zone"])
    return locked, created


class _Run:
    """One import's write phase. Maps turn the document's ids into row ids.

    `new`: the practice was created by this import, so it has no stored rows to look up (the
    first, bulk load of a practice skips every lookup of existing rows)."""

    def __init__(
        self,
        practice: Practice,
        sections: dict[str, list],
        problems: _Problems,
        refused_ids: dict[str, set[str]],
        *,
        new: bool = False,
    ):
        self.practice = practice
        self.new = new
        self.sections = sections
        self.problems = problems
        self.refused_ids = refused_ids
        self.result = ImportResult(practice)
        self.zone = ZoneInfo(practice.time_zone)
        self.now = clock.now()
        self.ids: dict[type[Model], dict[Any, int]] = defaultdict(dict)
        self.patient_guarantor: dict[int, int] = {}  # patient row id -> guarantor row id
        self.encounter_guarantor: dict[int, int] = {}  # encounter row id -> guarantor row id
        self.line_paths: dict[tuple[int, int], str] = {}
        self.touched_lines: set[int] = set()
        self.new_lines: set[int] = set()  # row ids of the lines this import created
        self.created: dict[type[Model], set[Any]] = defaultdict(set)  # keys of created rows
        self.application_lines: dict[tuple[str, int], int] = {}
        self.application_paths: dict[int, str] = {}  # line row id -> a new application's path
        self.entries: list[tuple] = []
        self.written: dict[str, int] = defaultdict(int)  # items of each section written

    # --- references -------------------------------------------------------------------------

    def _existing(self, model: type[Model], key: str, values: set[str], *extra: str) -> dict:
        found: dict[str, Any] = {}
        if self.new:
            return found
        for chunk in _chunks(sorted(values)):
            rows = model._default_manager.filter(
                practice=self.practice, **{f"{key}__in": chunk}
            ).values_list(key, "id", *extra)
            for row in rows:
                found[row[0]] = row[1] if not extra else row[1:]
        return found

    def _require(
        self, model: type[Model], section: str, references: list[tuple[str, str]], what: str
    ) -> None:
        """Every `(path, id)` must name an item of `section` or an existing row."""
        in_document = {getattr(item, _key(section)) for _, item in self.sections[section]}
        in_document |= self.refused_ids.get(section, set())
        outside = {value for _, value in references if value not in in_document}
        key = "number" if model is Encounter else "external_id"
        extra = ("guarantor_id",) if model is Patient else ()
        found = self._existing(model, key, outside, *extra)
        for path, value in references:
            if value not in in_document and value not in found:
                self.problems.add(
                    path,
                    f"no {what} {value!r} in this document or in practice "
                    f"{self.practice.external_id!r}",
                )
        if model is Patient:
            for external_id, (pk, guarantor_id) in found.items():
                self.ids[Patient][external_id] = pk
                self.patient_guarantor[pk] = guarantor_id
        else:
            self.ids[model].update(found)

    def check_references(self) -> None:
        s = self.sections
        self._require(
            Guarantor,
            "guarantors",
            [
                *((f"patients[{i}].guarantor", p.guarantor) for i, p in s["patients"]),
                *((f"receipts[{i}].guarantor", r.guarantor) for i, r in s["receipts"]),
                *((f"statements[{i}].guarantor", t.guarantor) for i, t in s["statements"]),
            ],
            "guarantor",
        )
        self._require(
            Patient,
            "patients",
            [
                *((f"encounters[{i}].patient", e.patient) for i, e in s["encounters"]),
                *((f"appointments[{i}].patient", a.patient) for i, a in s["appointments"]),
            ],
            "patient",
        )
        for model, section, what, attr in [
            (Facility, "facilities", "facility", "facility"),
            (Provider, "providers", "provider", "provider"),
        ]:
            self._require(
                model,
                section,
                [
                    *((f"encounters[{i}].{attr}", getattr(e, attr)) for i, e in s["encounters"]),
                    *(
                        (f"appointments[{i}].{attr}", getattr(a, attr))
                        for i, a in s["appointments"]
                    ),
                ],
                what,
            )
        self._require(
            CollectionAgency,
            "collection_agencies",
            [
                (f"encounters[{i}].collections.agency", e.collections.agency)
                for i, e in s["encounters"]
                if e.collections
            ],
            "collection agency",
        )
        self._require(
            Encounter,
            "encounters",
            [
                (f"receipts[{i}].applications[{j}].encounter", a.encounter)
                for i, r in s["receipts"]
                for j, a in enumerate(r.applications)
            ],
            "encounter",
        )
        self._check_application_lines()
        for i, receipt in s["receipts"]:
            self._check_receipt(f"receipts[{i}]", receipt)
        for i, statement in s["statements"]:
            if statement.due_date < statement.statement_date:
                self.problems.add(
                    f"statements[{i}].due_date", "must not be before the statement date"
                )

    def _check_application_lines(self) -> None:
        """Every application names a line of the document's encounter or a stored line."""
        in_document = {
            e.number: {line.line for line in e.lines} for _, e in self.sections["encounters"]
        }
        refused = self.refused_ids.get("encounters", set())
        applications = [
            (f"receipts[{i}].applications[{j}].line", a.encounter, a.line)
            for i, r in self.sections["receipts"]
            for j, a in enumerate(r.applications)
            if a.encounter not in refused
        ]
        stored: set[tuple[str, int]] = set()
        for chunk in _chunks([] if self.new else sorted({number for _, number, _ in applications})):
            stored.update(
                ServiceLine.objects.filter(
                    practice=self.practice, encounter__number__in=chunk
                ).values_list("encounter__number", "line")
            )
        known = self.ids[Encounter].keys() | in_document.keys()
        for path, number, line in applications:
            if number not in known:
                continue  # reported as an unknown encounter
            if line not in in_document.get(number, ()) and (number, line) not in stored:
                self.problems.add(path, f"encounter {number!r} has no line {line}")

    def _check_receipt(self, path: str, receipt: ReceiptIn) -> None:
        if receipt.type == "refund" and receipt.applications:
            self.problems.add(
                f"{path}.applications", "a refund takes no applications; leave the list empty"
            )
        applied = sum(a.amount for a in receipt.applications)
        if applied > receipt.amount:
            self.problems.add(
                f"{path}.applications",
                f"apply {format_amount(applied)} in all, more than the receipt's "
                f"{format_amount(receipt.amount)}",
            )
        seen: set[tuple[str, int]] = set()
        for j, application in enumerate(receipt.applications):
            target = (application.encounter, application.line)
            if target in seen:
                self.problems.add(f"{path}.applications[{j}]", "applies to the same line twice")
            seen.add(target)

    # --- writing ------------------------------------------------------------------------------

    def _upsert(
        self,
        model: type[Model],
        section: str,
        wanted: dict[Any, tuple],
        columns: list[str],
        existing: dict[Any, tuple[int, tuple]],
        insert_extra: dict[str, Any] | None = None,
        key_columns: tuple[str, ...] = ("external_id",),
    ) -> tuple[list[Any], list[tuple[int, tuple, tuple]]]:
        """Insert new keys, update changed rows. Returns (created keys, [(id, old, new)])."""
        tally = self.result.tallies[section]
        created = [key for key in wanted if key not in existing]
        changed = [
            (existing[key][0], existing[key][1], values)
            for key, values in wanted.items()
            if key in existing and existing[key][1] != values
        ]
        tally.created += len(created)
        tally.updated += len(changed)
        tally.unchanged += len(wanted) - len(created) - len(changed)
        new_ids = bulk.allocate_ids(model, len(created))
        extra = insert_extra or {}
        keyed = [key if isinstance(key, tuple) else (key,) for key in created]
        bulk.insert_rows(
            model,
            ["id", "practice_id", *key_columns, *columns, *extra],
            [
                (pk, self.practice.pk, *key, *wanted[raw], *extra.values())
                for pk, key, raw in zip(new_ids, keyed, created, strict=True)
            ],
        )
        bulk.update_rows(model, columns, [(pk, *new) for pk, _, new in changed])
        ids = self.ids[model]
        ids.update({key: existing[key][0] for key in wanted if key in existing})
        ids.update(zip(created, new_ids, strict=True))
        self.created[model].update(created)
        return created, changed

    def _load(
        self, model: type[Model], keys: Iterable[str], columns: list[str], key: str = "external_id"
    ) -> dict[str, tuple[int, tuple]]:
        loaded: dict[str, tuple[int, tuple]] = {}
        if self.new:
            return loaded
        for chunk in _chunks(keys):
            rows = model._default_manager.filter(
                practice=self.practice, **{f"{key}__in": chunk}
            ).values_list(key, "id", *columns)
            for row in rows:
                loaded[row[0]] = (row[1], tuple(row[2:]))
        return loaded

    def _simple(
        self,
        model: type[Model],
        section: str,
        columns: list[str],
        values: Callable[[Any], tuple],
        items: list[tuple[int, Any]],
        key: str = "external_id",
    ) -> list:
        attr = "number" if key == "number" else "id"
        wanted = {getattr(item, attr): values(item) for _, item in items}
        existing = self._load(model, wanted, columns, key)
        _, changed = self._upsert(model, section, wanted, columns, existing, key_columns=(key,))
        return changed

    # Every model an import writes (bulk.background_writes checks their keys per statement).
    WRITTEN = [
        Facility,
        Provider,
        CollectionAgency,
        Guarantor,
        Patient,
        Encounter,
        ServiceLine,
        Receipt,
        Application,
        Statement,
        Appointment,
        LedgerEntry,
    ]

    # The sections written item by item, in this order: none adds a problem by being written.
    # Receipts come after them, once every reference is checked.
    STEPS = [
        "facilities",
        "providers",
        "collection_agencies",
        "guarantors",
        "patients",
        "encounters",
        "statements",
        "appointments",
    ]

    def advance(self) -> None:
        """While the document is read (see _Streamer): write every section's items not written
        yet whose references all name rows already written."""
        for section in self.STEPS:
            items, start = self.sections[section], self.written[section]
            if start < len(items) and all(
                self._resolved(section, items[k][1]) for k in range(start, len(items))
            ):
                self._step(section, items[start:])

    def _resolved(self, section: str, item: Any) -> bool:
        ids = self.ids
        if section in ("patients", "statements"):
            return item.guarantor in ids[Guarantor]
        if section in ("encounters", "appointments"):
            return (
                item.patient in ids[Patient]
                and item.facility in ids[Facility]
                and item.provider in ids[Provider]
                and (
                    section == "appointments"
                    or item.collections is None
                    or item.collections.agency in ids[CollectionAgency]
                )
            )
        return True

    def _step(self, section: str, items: list[tuple[int, Any]]) -> None:
        self.written[section] += len(items)
        if section in ("facilities", "providers", "collection_agencies"):
            model = {
                "facilities": Facility,
                "providers": Provider,
                "collection_agencies": CollectionAgency,
            }[section]
            self._simple(model, section, ["name"], lambda item: (item.name,), items)
        elif section == "guarantors":
            self._simple(
                Guarantor,
                "guarantors",
                ["first_name", "preferred_name", "last_name", "email", "mobile", "text_opt_out"],
                self._guarantor_row,
                items,
            )
        elif section == "patients":
            self._write_patients(items)
        elif section == "encounters":
            self._write_encounters(items)
            self._write_lines(items)
            self._flush_entries()  # the charges, while the rest is prepared
        elif section == "statements":
            g = self.ids[Guarantor]
            self._simple(
                Statement,
                "statements",
                [
                    "guarantor_id",
                    "statement_date",
                    "due_date",
                    "statement_balance_cents",
                    "amount_due_cents",
                ],
                lambda t: (
                    g[t.guarantor],
                    t.statement_date,
                    t.due_date,
                    t.statement_balance,
                    t.amount_due,
                ),
                items,
            )
        else:
            p, f, v = self.ids[Patient], self.ids[Facility], self.ids[Provider]
            self._simple(
                Appointment,
                "appointments",
                ["patient_id", "facility_id", "provider_id", "starts_at", "status"],
                lambda a: (
                    p[a.patient],
                    f[a.facility],
                    v[a.provider],
                    self._instant(a.starts_at),
                    a.status,
                ),
                items,
            )

    def write(self) -> None:
        # The first load of a practice writes in the background (see bulk.background_writes);
        # a later import reads stored rows at every step, so it would only wait.
        with bulk.background_writes(self.WRITTEN) if self.new else nullcontext():
            # Statements and appointments (no money, no problems of their own) before the
            # receipts, whose checks wait for everything written so far.
            for section in self.STEPS:
                items = self.sections[section][self.written[section] :]
                if items:
                    self._step(section, items)
            self._write_receipts()
            self._check_lines()
            self._flush_entries()

    @staticmethod
    def _guarantor_row(item: GuarantorIn) -> tuple:
        return (
            item.first_name,
            item.preferred_name,
            item.last_name,
            item.email,
            item.mobile,
            item.text_opt_out,
        )

    def _instant(self, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        return value.astimezone(dt.UTC)

    def _write_patients(self, items: list[tuple[int, PatientIn]]) -> None:
        g = self.ids[Guarantor]
        changed = self._simple(
            Patient,
            "patients",
            ["guarantor_id", "first_name", "last_name", "birth_date"],
            lambda item: (g[item.guarantor], item.first_name, item.last_name, item.birth_date),
            items,
        )
        ids = self.ids[Patient]
        for _, item in items:
            self.patient_guarantor[ids[item.id]] = g[item.guarantor]
        moved = {pk: new[0] for pk, old, new in changed if old[0] != new[0]}
        for patient_id, guarantor_id in moved.items():
            # A patient's visits follow the patient to the new guarantor.
            Encounter.objects.filter(patient_id=patient_id).update(guarantor_id=guarantor_id)

    def _write_encounters(self, items: list[tuple[int, EncounterIn]]) -> None:
        p, f, v = self.ids[Patient], self.ids[Facility], self.ids[Provider]
        a = self.ids[CollectionAgency]
        guarantors: dict[str, int] = {}

        def row(e: EncounterIn) -> tuple:
            patient = p[e.patient]
            guarantors[e.number] = self.patient_guarantor[patient]
            return (
                numeric(e.number),
                patient,
                self.patient_guarantor[patient],
                f[e.facility],
                v[e.provider],
                e.service_date,
                a[e.collections.agency] if e.collections else None,
                e.collections.sent_on if e.collections else None,
            )

        self._simple(
            Encounter,
            "encounters",
            [
                "number_numeric",
                "patient_id",
                "guarantor_id",
                "facility_id",
                "provider_id",
                "service_date",
                "collection_agency_id",
                "collections_sent_on",
            ],
            row,
            items,
            key="number",
        )
        ids = self.ids[Encounter]
        self.encounter_guarantor.update((ids[number], g) for number, g in guarantors.items())

    LINE_COLUMNS = [
        "code",
        "description",
        "billed_cents",
        "adjusted_cents",
        "insurance_paid_cents",
        "pending_insurance_cents",
    ]

    def _write_lines(self, items: list[tuple[int, EncounterIn]]) -> None:
        encounters = self.ids[Encounter]
        wanted: dict[tuple[int, int], tuple] = {}
        for i, encounter in items:
            encounter_id = encounters[encounter.number]
            for j, line in enumerate(encounter.lines):
                key = (encounter_id, line.line)
                wanted[key] = (
                    line.code,
                    line.description,
                    line.billed,
                    line.adjusted,
                    line.insurance_paid,
                    line.pending_insurance,
                )
                self.line_paths[key] = f"encounters[{i}].lines[{j}]"
        existing: dict[tuple[int, int], tuple[int, tuple]] = {}
        # An encounter this import created has no stored lines to compare with.
        new_encounters = (
            set() if self.new else {encounters[number] for number in self.created[Encounter]}
        )
        stored = set() if self.new else {key[0] for key in wanted} - new_encounters
        for chunk in _chunks(sorted(stored)):
            for row in ServiceLine.objects.filter(encounter_id__in=chunk).values_list(
                "encounter_id", "line", "id", *self.LINE_COLUMNS
            ):
                existing[(row[0], row[1])] = (row[2], tuple(row[3:]))
        created, changed = self._upsert(
            ServiceLine,
            "lines",
            wanted,
            self.LINE_COLUMNS,
            existing,
            insert_extra={"patient_paid_cents": 0},
            key_columns=("encounter_id", "line"),
        )
        guarantor_of = self.encounter_guarantor
        ids = self.ids[ServiceLine]
        for key in created:
            self._charge(ids[key], guarantor_of[key[0]], self._owed(wanted[key]))
        by_id = {pk: key for key, pk in ids.items()} if changed else {}
        for pk, old, new in changed:
            self._charge(pk, guarantor_of[by_id[pk][0]], self._owed(new) - self._owed(old))
        self.touched_lines.update(ids[key] for key in wanted)
        self.new_lines.update(ids[key] for key in created)

    @staticmethod
    def _owed(values: tuple) -> int:
        return int(values[2] - values[3] - values[4] - values[5])

    # --- ledger entries -----------------------------------------------------------------------

    def _entry(
        self,
        kind: str,
        debit: str,
        credit: str,
        amount: int,
        guarantor_id: int,
        line_id: int | None = None,
        receipt_id: int | None = None,
        reverses: int | None = None,
    ) -> None:
        if amount < 0:
            debit, credit, amount = credit, debit, -amount
        if amount:
            self.entries.append(
                (
                    self.practice.pk,
                    guarantor_id,
                    line_id,
                    receipt_id,
                    kind,
                    debit,
                    credit,
                    amount,
                    reverses,
                    self.now,
                )
            )

    def _charge(self, line_id: int, guarantor_id: int, amount: int) -> None:
        self._entry(
            LedgerEntry.Kind.CHARGE,
            Account.PATIENT_AR,
            Account.CHARGES,
            amount,
            guarantor_id,
            line_id=line_id,
        )

    def _post_receipt(
        self,
        receipt_id: int,
        guarantor_id: int,
        receipt: ReceiptIn,
        applications: list[tuple[int, int]],
    ) -> None:
        if receipt.type == "refund":
            self._entry(
                LedgerEntry.Kind.REFUND,
                Account.UNAPPLIED,
                Account.CASH,
                receipt.amount,
                guarantor_id,
                receipt_id=receipt_id,
            )
            return
        self._entry(
            LedgerEntry.Kind.PAYMENT,
            Account.CASH,
            Account.UNAPPLIED,
            receipt.amount,
            guarantor_id,
            receipt_id=receipt_id,
        )
        for line_id, amount in applications:
            self._entry(
                LedgerEntry.Kind.APPLICATION,
                Account.UNAPPLIED,
                Account.PATIENT_AR,
                amount,
                guarantor_id,
                line_id=line_id,
                receipt_id=receipt_id,
            )

    def _reverse_receipts(self, receipt_ids: list[int]) -> None:
        """Reverse every entry of these receipts that is not already reversed."""
        for chunk in _chunks(receipt_ids):
            entries = list(
                LedgerEntry.objects.filter(receipt_id__in=chunk).values_list(
                    "id",
                    "guarantor_id",
                    "line_id",
                    "receipt_id",
                    "kind",
                    "debit",
                    "credit",
                    "amount_cents",
                    "reverses_id",
                )
            )
            reversed_ids = {e[8] for e in entries if e[8] is not None}
            for pk, guarantor, line, receipt, kind, debit, credit, amount, reverses in entries:
                if reverses is None and pk not in reversed_ids:
                    self._entry(kind, credit, debit, amount, guarantor, line, receipt, pk)

    def _flush_entries(self) -> None:
        """Write the entries made so far."""
        entries, self.entries = self.entries, []
        ids = bulk.allocate_ids(LedgerEntry, len(entries))
        bulk.insert_rows(
            LedgerEntry,
            [
                "id",
                "practice_id",
                "guarantor_id",
                "line_id",
                "receipt_id",
                "kind",
                "debit",
                "credit",
                "amount_cents",
                "reverses_id",
                "created_at",
            ],
            [(pk, *row) for pk, row in zip(ids, entries, strict=True)],
        )
        self.result.entries += len(entries)

    # --- receipts -----------------------------------------------------------------------------

    RECEIPT_COLUMNS = ["guarantor_id", "type", "date", "amount_cents", "method", "source"]

    def _write_receipts(self) -> None:
        items: list[tuple[int, ReceiptIn]] = self.sections["receipts"]
        if not items:
            return
        g = self.ids[Guarantor]
        line_ids = self.application_lines = self._application_lines(items)
        wanted: dict[str, tuple] = {}
        applications: dict[str, list[tuple[int, int]]] = {}
        paths: dict[str, str] = {}
        for i, r in items:
            wanted[r.id] = (g[r.guarantor], r.type, r.date, r.amount, r.method, r.source)
            applications[r.id] = sorted(
                (line_ids[(a.encounter, a.line)], a.amount) for a in r.applications
            )
            paths[r.id] = f"receipts[{i}]"
        existing = self._load(
            Receipt, wanted, [*self.RECEIPT_COLUMNS, "made_in_pops", "status"], key="number"
        )
        current = defaultdict(list)
        for chunk in _chunks([pk for pk, _ in existing.values()]):
            for receipt_id, line_id, amount in Application.objects.filter(
                receipt_id__in=chunk
            ).values_list("receipt_id", "line_id", "amount_cents"):
                current[receipt_id].append((line_id, amount))
        same: dict[str, tuple[int, tuple]] = {}
        replaced: list[tuple[int, str]] = []
        for number, (pk, stored) in existing.items():
            *values, made_in_pops, status = stored
            unchanged = (
                tuple(values) == wanted[number] and sorted(current[pk]) == applications[number]
            )
            if unchanged:
                same[number] = (pk, wanted[number])
            elif made_in_pops:
                self.problems.add(
                    f"{paths[number]}.id",
                    f"receipt {number!r} was made through POPS and cannot be changed by an import",
                )
            elif status != Receipt.Status.PAID:
                # Its entries were reversed in POPS; posting a new version would revive it.
                self.problems.add(
                    f"{paths[number]}.id",
                    f"receipt {number!r} is {status} in POPS and cannot be changed by an import",
                )
            else:
                replaced.append((pk, number))
                same[number] = (pk, tuple(values))
        if self.problems:
            return
        created, _ = self._upsert(
            Receipt,
            "receipts",
            wanted,
            self.RECEIPT_COLUMNS,
            same,
            insert_extra={
                "status": Receipt.Status.PAID,
                "made_in_pops": False,
                "card_brand": "",
                "card_last4": "",
                "void_reason": "",
                "voided_at": None,
                "refund_of_id": None,
                "reference_batch_id": None,
                "created_at": self.now,
            },
            key_columns=("number",),
        )
        self.result.tallies["receipts"].updated = len(replaced)
        self.result.tallies["receipts"].unchanged = len(wanted) - len(created) - len(replaced)
        ids = self.ids[Receipt]
        old_ids = [pk for pk, _ in replaced]
        self._reverse_receipts(old_ids)
        touched_guarantors = {existing[number][1][0] for _, number in replaced}
        for pk in old_ids:
            self.touched_lines.update(line for line, _ in current[pk])
        for chunk in _chunks(old_ids):
            Application.objects.filter(receipt_id__in=chunk).delete()
        fresh = set(created) | {number for _, number in replaced}
        new_applications = []
        for i, r in items:
            if r.id not in fresh:
                continue
            receipt_id, guarantor_id = ids[r.id], g[r.guarantor]
            touched_guarantors.add(guarantor_id)
            self._post_receipt(receipt_id, guarantor_id, r, applications[r.id])
            for line_id, amount in applications[r.id]:
                new_applications.append((receipt_id, line_id, guarantor_id, amount))
                self.touched_lines.add(line_id)
            for j, a in enumerate(r.applications):
                line_id = line_ids[(a.encounter, a.line)]
                self.application_paths.setdefault(line_id, f"receipts[{i}].applications[{j}]")
        app_ids = bulk.allocate_ids(Application, len(new_applications))
        bulk.insert_rows(
            Application,
            ["id", "practice_id", "receipt_id", "line_id", "guarantor_id", "amount_cents"],
            [
                (pk, self.practice.pk, *row)
                for pk, row in zip(app_ids, new_applications, strict=True)
            ],
        )
        self._refresh_patient_paid(new_applications)
        self._check_money(items, paths, touched_guarantors, fresh)

    def _application_lines(self, items: list[tuple[int, ReceiptIn]]) -> dict[tuple[str, int], int]:
        """Row ids of every line the receipts apply to; a missing line is a problem."""
        encounters = self.ids[Encounter]
        wanted = {(a.encounter, a.line) for _, r in items for a in r.applications}
        found: dict[tuple[str, int], int] = {}
        lines = self.ids[ServiceLine]  # the document's lines, written a moment ago
        for number, line in wanted:
            pk = lines.get((encounters[number], line))
            if pk is not None:
                found[(number, line)] = pk
        by_id = {pk: number for number, pk in encounters.items()}
        stored = {encounters[e] for e, line in wanted if (e, line) not in found}
        for chunk in _chunks(sorted(stored)):
            for encounter_id, line, pk in ServiceLine.objects.filter(
                encounter_id__in=chunk
            ).values_list("encounter_id", "line", "id"):
                found[(by_id[encounter_id], line)] = pk
        for i, r in items:
            for j, a in enumerate(r.applications):
                if (a.encounter, a.line) not in found:
                    self.problems.add(
                        f"receipts[{i}].applications[{j}].line",
                        f"encounter {a.encounter!r} has no line {a.line}",
                    )
        return defaultdict(int, found)

    def _refresh_patient_paid(self, new_applications: list[tuple[int, int, int, int]]) -> None:
        """Set each touched line's patient_paid to the sum of its applications.

        A line this import created can only have the applications it just wrote (no stored
        one can name it), so its sum is known here: only those with any are written. The
        other touched lines are summed by the database."""
        paid_new: dict[int, int] = defaultdict(int)
        for _, line_id, _, amount in new_applications:
            if line_id in self.new_lines:
                paid_new[line_id] += amount
        bulk.update_rows(ServiceLine, ["patient_paid_cents"], sorted(paid_new.items()))
        applied = (
            Application.objects.filter(line_id=OuterRef("pk"))
            .values("line_id")
            .annotate(total=Sum("amount_cents"))
            .values("total")
        )
        for chunk in _chunks(sorted(self.touched_lines - self.new_lines)):
            ServiceLine.objects.filter(pk__in=chunk).update(
                patient_paid_cents=Coalesce(Subquery(applied), 0)
            )

    def _check_lines(self) -> None:
        """No line may owe less than the patient money applied to it: a line cut below its
        payments, or an application larger than what its line can take. The problem is
        reported at the new application when there is one, else at the line."""
        line_paths = {self.ids[ServiceLine][key]: path for key, path in self.line_paths.items()}
        owed = (
            F("billed_cents")
            - F("adjusted_cents")
            - F("insurance_paid_cents")
            - F("pending_insurance_cents")
        )
        # A line this import created without applications has nothing paid on it.
        lines = self.touched_lines - (self.new_lines - self.application_paths.keys())
        for chunk in _chunks(sorted(lines)):
            for pk, encounter, line, responsibility, paid in (
                ServiceLine.objects.filter(pk__in=chunk, patient_paid_cents__gt=0)
                .annotate(owed=owed)
                .filter(owed__lt=F("patient_paid_cents"))
                .values_list("id", "encounter__number", "line", "owed", "patient_paid_cents")
            ):
                path = self.application_paths.get(pk) or line_paths.get(pk, "encounters")
                self.problems.add(
                    path,
                    f"line {encounter}-{line} would owe {format_amount(responsibility)}, less "
                    f"than the {format_amount(paid)} of patient payments applied to it",
                )

    def _check_money(
        self,
        items: list[tuple[int, ReceiptIn]],
        paths: dict[str, str],
        guarantors: set[int],
        fresh: set[str],
    ) -> None:
        """The money rules of receipts that need the final state: applications stay within
        their guarantor, refunds never exceed unapplied money."""
        app_paths: dict[tuple[int, int], str] = {}
        for i, r in items:
            for j, a in enumerate(r.applications):
                line_id = self.application_lines[(a.encounter, a.line)]
                app_paths[(self.ids[Receipt][r.id], line_id)] = f"receipts[{i}].applications[{j}]"
        receipt_ids = [self.ids[Receipt][number] for number in fresh]
        for chunk in _chunks(receipt_ids):
            for receipt_id, line_id in (
                Application.objects.filter(receipt_id__in=chunk)
                .exclude(line__encounter__guarantor_id=F("guarantor_id"))
                .values_list("receipt_id", "line_id")
            ):
                self.problems.add(
                    app_paths.get((receipt_id, line_id), "receipts"),
                    "applies to a visit of another guarantor",
                )
        self._check_unapplied(guarantors, items, paths)

    def _check_unapplied(
        self, guarantors: set[int], items: list[tuple[int, ReceiptIn]], paths: dict[str, str]
    ) -> None:
        balance: dict[int, int] = defaultdict(int)
        for chunk in _chunks(sorted(guarantors)):
            for gid, kind, total in (
                Receipt.objects.filter(guarantor_id__in=chunk, status=Receipt.Status.PAID)
                .values_list("guarantor_id", "type")
                .annotate(total=Sum("amount_cents"))
                .values_list("guarantor_id", "type", "total")
            ):
                balance[gid] += total if kind == Receipt.Type.PAYMENT else -total
            for gid, total in (
                Application.objects.filter(guarantor_id__in=chunk)
                .values_list("guarantor_id")
                .annotate(total=Sum("amount_cents"))
                .values_list("guarantor_id", "total")
            ):
                balance[gid] -= total
        g = self.ids[Guarantor]
        for gid, unapplied in balance.items():
            if unapplied < 0:
                refund = next(
                    (paths[r.id] for _, r in items if r.type == "refund" and g[r.guarantor] == gid),
                    next((paths[r.id] for _, r in items if g[r.guarantor] == gid), "receipts"),
                )
                self.problems.add(
                    refund,
                    f"refunds and applications would exceed the guarantor's payments by "
                    f"{format_amount(-unapplied)}",
                )
