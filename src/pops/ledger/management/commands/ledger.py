from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from pops.ledger.models import Practice
from pops.ledger.services.replay import differences


class Command(BaseCommand):
    help = (
        "The practice ledger. `pops ledger verify [--practice ID]` replays the ledger entries, "
        "prints every stored figure that differs from the replay, and exits 1 if any does."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        verify = sub.add_parser("verify", help="compare the stored figures with a replay")
        verify.add_argument("--practice", help="the practice's id (default: every practice)")

    def handle(self, *args: Any, action: str, practice: str | None, **options: Any) -> None:
        practices = Practice.objects.order_by("external_id")
        if practice is not None:
            practices = practices.filter(external_id=practice)
            if not practices.exists():
                raise CommandError(f"No practice with id {practice!r}.")
        total = checked = 0
        for found in list(practices):
            checked += 1
            for difference in differences(found.pk):
                total += 1
                self.stdout.write(f"{found.external_id}: {difference}")
        if total:
            raise CommandError(
                f"{total} difference(s) between the stored figures and the ledger entries.",
                returncode=1,
            )
        self.stdout.write(
            f"The stored figures of {checked} practice(s) equal a replay of the ledger entries."
        )
