from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from pops.core.audit import Actor
from pops.core.models import User
from pops.groups.models import Group
from pops.groups.services import prepare_practice
from pops.ledger.models import Practice
from pops.payments.models import MerchantAccount


class Command(BaseCommand):
    help = (
        'Prepare a practice for POPS: its system user "POPS", a default Group and, when it has '
        "no merchant account yet, a Sandbox merchant account, so it can take payments at once. "
        "Safe to run again: it changes nothing then."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--practice", required=True, help="the practice's id")

    def handle(self, *args: Any, practice: str, **options: Any) -> None:
        found = Practice.objects.filter(external_id=practice).first()
        if found is None:
            raise CommandError(f"No practice with id {practice!r}. Import it first.")
        before = _made_for(found)
        group = prepare_practice(found, actor=Actor.command("prepare"))
        made = [
            f"{count - before.get(what, 0)} {what}"
            for what, count in _made_for(found).items()
            if count > before.get(what, 0)
        ]
        if made:
            self.stdout.write(f"Prepared practice {found.external_id} for POPS: {', '.join(made)}.")
        else:
            self.stdout.write(
                f"Practice {found.external_id} was prepared already; nothing changed."
            )
        accounts = ", ".join(
            f"{account.name} ({account.gateway})"
            for account in MerchantAccount.objects.filter(practice=found, is_active=True)
        )
        self.stdout.write(f"Default Group: {group.slug}; merchant accounts: {accounts or 'none'}")


def _made_for(practice: Practice) -> dict[str, int]:
    """What preparing makes for a practice, counted."""
    return {
        "system user": User.objects.filter(practice=practice, is_system=True).count(),
        "Group": Group.objects.filter(practice=practice).count(),
        "merchant account": MerchantAccount.objects.filter(practice=practice).count(),
    }
