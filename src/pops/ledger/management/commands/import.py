import json
import sys
import time
from argparse import ArgumentParser
from contextlib import AbstractContextManager, nullcontext
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError

from pops.core.audit import Actor
from pops.ledger.importing.importer import ImportRejected, import_document


class Command(BaseCommand):
    help = (
        "Import a JSON document (see docs/import.md): an all-or-nothing upsert by id. "
        "Use - to read standard input. Exits 2 with the list of problems if it is refused."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", help="the document's path, or - for standard input")

    def handle(self, *args: Any, file: str, **options: Any) -> None:
        started = time.perf_counter()
        opened: AbstractContextManager[IO[bytes]]
        if file == "-":
            opened = nullcontext(sys.stdin.buffer)  # read, but not ours to close
        else:
            try:
                opened = open(file, "rb")  # noqa: SIM115
            except OSError as error:
                raise CommandError(f"Cannot read {file}: {error.strerror}") from None
        try:
            with opened as stream:
                result = import_document(stream, actor=Actor.command("import"))
        except ImportRejected as rejected:
            self.stdout.write(
                json.dumps({"errors": [p.as_dict() for p in rejected.problems]}, indent=2)
            )
            self.stderr.write(
                f"Import refused: {len(rejected.problems)} problem(s); nothing written."
            )
            sys.exit(2)
        seconds = time.perf_counter() - started
        summary = result.summary()
        self.stdout.write(f"Imported into practice {summary.pop('practice')} in {seconds:.2f}s")
        entries = summary.pop("ledger_entries")
        for section, tally in summary.items():
            self.stdout.write(
                f"  {section:<20} {tally['created']:>8} created {tally['updated']:>8} updated "
                f"{tally['unchanged']:>8} unchanged"
            )
        self.stdout.write(f"  {'ledger entries':<20} {entries:>8} written")
