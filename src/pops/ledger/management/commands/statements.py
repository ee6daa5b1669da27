import datetime as dt
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from pops.core.audit import Actor
from pops.ledger.models import Practice
from pops.ledger.services.statements import run_statements


def iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date like 2026-11-26") from None


class Command(BaseCommand):
    help = "Statements. `pops statements run --practice ID --date YYYY-MM-DD`"

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="write this date's statements")
        run.add_argument("--practice", required=True, help="the practice's id")
        run.add_argument("--date", required=True, help="the statement date, YYYY-MM-DD")

    def handle(self, *args: Any, action: str, practice: str, date: str, **options: Any) -> None:
        statement_date = iso_date(date)
        found = Practice.objects.filter(external_id=practice).first()
        if found is None:
            raise CommandError(f"No practice with id {practice!r}.")
        written = run_statements(found, statement_date, actor=Actor.command("statements run"))
        self.stdout.write(f"{written} statement(s) written for {statement_date}.")
