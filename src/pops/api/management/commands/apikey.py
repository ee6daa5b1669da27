from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from pops.api.keys import create_key
from pops.core.audit import Actor
from pops.ledger.models import Practice


class Command(BaseCommand):
    help = "API keys. `pops apikey create --practice ID [--name NAME]` prints a new key once."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="make a key and print it (only this once)")
        create.add_argument("--practice", required=True, help="the practice's id")
        create.add_argument("--name", default="", help="what the key is for")

    def handle(self, *args: Any, action: str, practice: str, name: str, **options: Any) -> None:
        found = Practice.objects.filter(external_id=practice).first()
        if found is None:
            raise CommandError(f"No practice with id {practice!r}.")
        key = create_key(found, name or "API key", actor=Actor.command("apikey create"))
        self.stdout.write(key)
        self.stderr.write(
            "Store this key now: POPS keeps only its digest and cannot show it again."
        )
