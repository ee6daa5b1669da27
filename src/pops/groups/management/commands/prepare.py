from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from pops.core.audit import Actor
from pops.groups.services import prepare_practice
from pops.ledger.models import Practice


class Command(BaseCommand):
    help = 'Prepare a practice for POPS: its system user "POPS" and a default Group.'

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--practice", required=True, help="the practice's id")

    def handle(self, *args: Any, practice: str, **options: Any) -> None:
        found = Practice.objects.filter(external_id=practice).first()
        if found is None:
            raise CommandError(f"No practice with id {practice!r}. Import it first.")
        group = prepare_practice(found, actor=Actor.command("prepare"))
        self.stdout.write(f"Practice {found.external_id} is prepared; default Group: {group.slug}")
