from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from pops.core.audit import Actor
from pops.core.money import display_amount
from pops.demo.build import DemoInfo, build_demo
from pops.ledger.importing.importer import ImportRejected


class Command(BaseCommand):
    help = (
        'Load the demo practice "demo" (idempotent: a second run changes nothing) and print '
        "what to do next: the URL, the demo API key, the Groups and guarantors worth a look."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="list every showcase guarantor, not only five"
        )

    def handle(self, *args: Any, all: bool, **options: Any) -> None:
        try:
            info = build_demo(Actor.command("demo"))
        except ImportRejected as rejected:  # a bug in the demo document, never the user's
            details = "; ".join(f"{p.path}: {p.message}" for p in rejected.problems[:5])
            raise CommandError(f"The demo document was refused: {details}") from None
        for line in render(info, show_all=all):
            self.stdout.write(line)


def render(info: DemoInfo, *, show_all: bool = False) -> list[str]:
    """The report `pops demo` prints, as lines."""
    state = "is loaded" if info.changed else "was already loaded; nothing changed"
    lines = [
        f'Demo practice "{info.practice_name}" (id {info.practice_id}) {state}.',
        f"{info.guarantors} guarantors; their dates are relative to {info.anchor:%Y-%m-%d}.",
        "",
        f"API key: {info.api_key}  (published, for this local demo only)",
        "",
        "POPS Groups (pick one with ?group=SLUG)",
    ]
    slug_width = max(len(g.slug) for g in info.groups)
    name_width = max(len(g.name) + (10 if g.is_default else 0) for g in info.groups)
    for group in info.groups:
        name = f"{group.name} (default)" if group.is_default else group.name
        lines.append(f"  {group.slug:<{slug_width}}  {name:<{name_width}}  {group.description}")
    shown = [h for h in info.highlights if show_all or h.featured]
    names, width = max(len(h.name) for h in shown), max(len(h.shows) for h in shown)
    lines += [
        "",
        "Guarantors worth a look (balances under the default Group)",
        f"  {'ID':<5} {'Name':<{names}} {'What it shows':<{width}} "
        f"{'Current':>9} {'Amount due':>10}",
    ]
    for h in shown:
        lines.append(
            f"  {h.guarantor_id:<5} {h.name:<{names}} {h.shows:<{width}} "
            f"{display_amount(h.current_balance):>9} {display_amount(h.amount_due):>10}"
        )
    if len(shown) < len(info.highlights):
        lines.append(f"  ({len(info.highlights) - len(shown)} more: pops demo --all)")
    lines += ["", "Next steps"]
    for step in info.next_steps:
        first, *commands = step.split("\n")
        lines.append(f"  - {first}")
        lines += [f"      {command}" for command in commands]
    return lines
