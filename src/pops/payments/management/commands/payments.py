import argparse
import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter

from pops.payments.services.reconcile import reconcile

RECONCILE_HELP = """\
Settle payment attempts whose outcome is unknown (a gateway timeout, a 5xx, a reset
connection) or that were left `processing` for 10 minutes by a process that died, by asking
the gateway what it holds under each merchant reference. Found approved: one paid receipt dated
the practice-local day the gateway approved it. Declined, voided or not found: declined, with a
$0.00 Unsuccessful receipt. Gateway unreachable: left for the next run. It never charges, and
two runs side by side settle each attempt once. Attempts unknown for more than 24 hours are
reported as an ALERT (and logged as errors).

Run it every minute, from cron:

  * * * * *  cd /srv/pops && flock -n var/reconcile.lock .venv/bin/pops payments reconcile

or from a worker loop (a systemd service or a container next to the task worker):

  while true; do pops payments reconcile; sleep 60; done
"""


class Formatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the help's own line breaks (the cron line stays on one line)."""


def seconds(text: str) -> dt.timedelta:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 10 * 365 * 86400:
        raise argparse.ArgumentTypeError("give between 0 and 315360000 seconds")
    return dt.timedelta(seconds=value)


class Command(BaseCommand):
    help = "Payments. `pops payments reconcile [--older-than SECONDS]`\n\n" + RECONCILE_HELP

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        kwargs.setdefault("formatter_class", Formatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser(
            "reconcile",
            help="settle unknown payment attempts by asking the gateway",
            description=RECONCILE_HELP,
            formatter_class=Formatter,
        )
        run.add_argument(
            "--older-than",
            type=seconds,
            default=dt.timedelta(seconds=30),
            metavar="SECONDS",
            help="only attempts begun at least this long ago (default: 30)",
        )

    def handle(self, *args: Any, action: str, older_than: dt.timedelta, **options: Any) -> None:
        if action != "reconcile":  # pragma: no cover - argparse allows only the above
            raise CommandError(f"Unknown action {action!r}.")
        report = reconcile(older_than=older_than)
        for line in report.lines():
            self.stdout.write(line)
        if report.overdue:
            self.stderr.write(report.lines()[-1])
