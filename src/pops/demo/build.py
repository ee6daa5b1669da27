"""`build_demo`: the demo practice loaded through the real import, prepared for POPS, with two
Groups of different branding and the published demo API key. Running it again changes nothing."""

import datetime as dt
import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from pops.api.keys import create_key
from pops.api.models import ApiKey, digest
from pops.core import audit
from pops.demo.document import (
    PRACTICE_ID,
    PRACTICE_NAME,
    TIME_ZONE,
    anchor_date,
    build_document,
)
from pops.groups.models import Group
from pops.groups.services import prepare_practice
from pops.ledger.importing.importer import ImportResult, import_document
from pops.ledger.models import Guarantor, Practice
from pops.ledger.services.balances import guarantor_balances

# Where `make demo` serves (its PORT, passed on to `pops demo`), for the commands printed.
PORT = os.environ.get("PORT", "8000")
BASE_URL = f"http://127.0.0.1:{PORT}"
# Published (printed by `pops demo`): it opens the demo practice only, and only where someone
# ran the demo. Never use it for real data.
DEMO_API_KEY = "pops_demo_key_for_local_use_only"
DEMO_KEY_NAME = "Demo key (published; local use only)"
EXAMPLE_GUARANTOR = "1001"
# The Sandbox's approved test card, as the demo's payment commands send it to the Sandbox.
DEMO_CARD = {"card_number": "4111 1111 1111 1111", "exp": "12/30", "cvv": "123"}
NEW_CHARGES_GUARANTOR = "1006"

# The default Group carries the practice's own branding.
PRACTICE_BRANDING: dict[str, Any] = {
    "name": PRACTICE_NAME,
    "background_color": "#f5f7fa",
    "surface_color": "#ffffff",
    "primary_color": "#0f766e",
    "secondary_color": "#334155",
    "accent_color": "#d97706",
    "info_color": "#0369a1",
    "success_color": "#15803d",
    "error_color": "#b91c1c",
    "warning_color": "#b45309",
    "dark": False,
    "footer_phone": "312-555-0100",
    "footer_email": "billing@example.com",
    "footer_text": "Billing office: Monday to Friday, 8 am to 5 pm Central",
    "allow_session_extension": True,
}
SECOND_GROUP_SLUG = "lakeside"
SECOND_GROUP: dict[str, Any] = {
    "name": "Lakeside Clinic",
    "background_color": "#0f172a",
    "surface_color": "#1e293b",
    "primary_color": "#38bdf8",
    "secondary_color": "#a78bfa",
    "accent_color": "#f472b6",
    "info_color": "#60a5fa",
    "success_color": "#4ade80",
    "error_color": "#f87171",
    "warning_color": "#fbbf24",
    "dark": True,
    "footer_phone": "773-555-0142",
    "footer_email": "lakeside.billing@example.com",
    "footer_text": "Lakeside front desk: Monday to Saturday, 7 am to 7 pm Central",
    "show_collections": True,
    "show_escrow": True,
    "include_new_charges": True,
    "landing_page": Group.LandingPage.ACCOUNT,
}


@dataclass(frozen=True)
class GroupSummary:
    slug: str
    name: str
    is_default: bool
    description: str


@dataclass(frozen=True)
class GuarantorHighlight:
    guarantor_id: str
    name: str
    shows: str
    featured: bool
    current_balance: int
    amount_due: int


@dataclass(frozen=True)
class DemoInfo:
    """What `pops demo` built, and what a person needs next."""

    practice_id: str
    practice_name: str
    anchor: dt.date  # the day every demo date counts from
    changed: bool  # False when the demo was already there exactly like this
    guarantors: int
    api_key: str
    api_key_problem: str  # empty when the published key works
    groups: list[GroupSummary]
    highlights: list[GuarantorHighlight] = field(default_factory=list)

    def curl(self, guarantor_id: str = EXAMPLE_GUARANTOR, group: str = "") -> str:
        """A ready-to-paste command for one guarantor's balances (the URL quoted for any shell)."""
        query = f"?group={group}" if group else ""
        return (
            f'curl -H "Authorization: Bearer {self.api_key}" '
            f'"{BASE_URL}/api/v1/guarantors/{guarantor_id}/balances{query}"'
        )

    def pay_commands(self, guarantor_id: str = EXAMPLE_GUARANTOR) -> list[str]:
        """Ready-to-paste commands that pay $10.00 with the Sandbox's approved test card: a token
        from the Sandbox's tokenization endpoint (standing where a processor's hosted card fields
        would), then the payment, under an idempotency key of the caller's choosing."""
        card = json.dumps(DEMO_CARD)
        payment = json.dumps({"guarantor": guarantor_id, "amount": "10.00"})[:-1]
        return [
            f"TOKEN=$(curl -s -X POST {BASE_URL}/sandbox-gateway/tokens "
            f"-H 'Content-Type: application/json' -d '{card}' "
            """| python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')""",
            f'curl -s -X POST -H "Authorization: Bearer {self.api_key}" '
            '-H "Idempotency-Key: demo-$RANDOM" -H "Content-Type: application/json" '
            f"-d '{payment}, \"payment_token\": \"'$TOKEN'\"}}' {BASE_URL}/api/v1/payments",
        ]

    @property
    def next_steps(self) -> list[str]:
        """What a person does next; a step's later lines are commands to paste. Later issues add
        their steps here: the staff login of the back office, and a QuickPay link for one of the
        highlighted guarantors."""
        steps = [
            f"Open {BASE_URL} (`make demo` serves it; else run `pops runserver 127.0.0.1:{PORT}`)",
            f"Ask the API for guarantor {EXAMPLE_GUARANTOR}'s balances:\n{self.curl()}",
            f"See a Group option at work: guarantor {NEW_CHARGES_GUARANTOR} has a visit since "
            f"a paid statement, which the {SECOND_GROUP_SLUG} Group counts in Amount Due:\n"
            f"{self.curl(NEW_CHARGES_GUARANTOR, SECOND_GROUP_SLUG)}",
            f"Pay $10.00 for guarantor {EXAMPLE_GUARANTOR} with the Sandbox's test card "
            "(4000 0000 0000 0002 is declined; docs/payments.md lists the others):\n"
            + "\n".join(self.pay_commands()),
            f"Read the API schema: {BASE_URL}/api/v1/openapi.json",
            "Load your own data: pops import FILE.json (the format is in docs/import.md)",
        ]
        if self.api_key_problem:
            steps.insert(1, self.api_key_problem)
        return steps


class _NothingChanged(Exception):
    """Raised to roll back an import that changed nothing."""


def _changed(result: ImportResult) -> bool:
    return bool(result.entries) or any(
        tally.created or tally.updated for tally in result.tallies.values()
    )


def _import(document: dict[str, Any], *, actor: audit.Actor) -> bool:
    """Import through the real import path. An import that changes nothing is rolled back, so
    re-running the demo leaves no trace, not even an audit event. Returns whether it changed."""
    before = (
        Practice.objects.filter(external_id=PRACTICE_ID).values_list("name", "time_zone").first()
    )
    stream = io.BytesIO(json.dumps(document).encode())
    try:
        with transaction.atomic():
            result = import_document(stream, actor=actor)
            if before == (PRACTICE_NAME, TIME_ZONE) and not _changed(result):
                raise _NothingChanged
    except _NothingChanged:
        return False
    return True


def _configure(group: Group, settings: dict[str, Any], *, actor: audit.Actor) -> bool:
    """Give a Group these settings, saving (and auditing) only what differs. Returns whether
    anything was written."""
    creating = group.pk is None
    changed = sorted(name for name, value in settings.items() if getattr(group, name) != value)
    if not creating and not changed:
        return False
    for name in changed:
        setattr(group, name, settings[name])
    group.full_clean()
    if creating:
        group.save()
    else:
        group.save(update_fields=[*changed, "updated_at"])
    audit.record(
        "groups.group.created" if creating else "groups.group.updated",
        actor=actor,
        practice=group.practice,
        resource=("group", group.slug),
        data={"changed": changed},
    )
    return True


def _ensure_key(practice: Practice, *, actor: audit.Actor) -> tuple[bool, str]:
    """Create the published demo key unless its digest is stored already. Returns whether it
    was created, and what is wrong with it (empty when it works)."""
    found = ApiKey.objects.filter(key_digest=digest(DEMO_API_KEY)).first()
    if found is None:
        create_key(practice, DEMO_KEY_NAME, actor=actor, key=DEMO_API_KEY)
        return True, ""
    if found.practice_id != practice.pk or found.revoked_at is not None:
        return False, (
            "The published demo key is revoked or belongs to another practice here; make a key "
            "with: "
            f"pops apikey create --practice {PRACTICE_ID}"
        )
    return False, ""


def _describe(group: Group) -> str:
    shows = []
    if group.show_collections:
        shows.append("collections")
    if group.show_escrow:
        shows.append("escrow")
    parts = ["dark theme" if group.dark else "light theme"]
    if shows:
        parts.append("shows " + " and ".join(shows))
    parts.append(
        "new charges count in Amount Due" if group.include_new_charges else "Amount Due as billed"
    )
    return "; ".join(parts)


@transaction.atomic
def build_demo(actor: audit.Actor) -> DemoInfo:
    """Load (or confirm) the demo practice. Idempotent: a second run writes nothing."""
    demo = build_document(anchor_date(Practice.objects.filter(external_id=PRACTICE_ID).first()))
    changed = _import(demo.data, actor=actor)
    practice = Practice.objects.get(external_id=PRACTICE_ID)

    changed |= not practice.is_prepared
    default = prepare_practice(practice, actor=actor)
    changed |= _configure(default, PRACTICE_BRANDING, actor=actor)
    second = Group.objects.filter(practice=practice, slug=SECOND_GROUP_SLUG).first()
    changed |= _configure(
        second or Group(practice=practice, slug=SECOND_GROUP_SLUG), SECOND_GROUP, actor=actor
    )
    key_created, key_problem = _ensure_key(practice, actor=actor)
    changed |= key_created

    groups = Group.objects.filter(practice=practice).order_by("-is_default", "slug")
    names = {
        g.external_id: g
        for g in Guarantor.objects.filter(
            practice=practice, external_id__in=[h.guarantor_id for h in demo.highlights]
        )
    }
    highlights = []
    for item in demo.highlights:
        guarantor = names[item.guarantor_id]
        figures = guarantor_balances(guarantor, include_new_charges=default.include_new_charges)
        highlights.append(
            GuarantorHighlight(
                item.guarantor_id,
                f"{guarantor.preferred_name or guarantor.first_name} {guarantor.last_name}",
                item.shows,
                item.featured,
                figures.current_balance,
                figures.amount_due,
            )
        )
    return DemoInfo(
        practice_id=practice.external_id,
        practice_name=practice.name,
        anchor=demo.anchor,
        changed=changed,
        guarantors=len(demo.data["guarantors"]),
        api_key=DEMO_API_KEY,
        api_key_problem=key_problem,
        groups=[GroupSummary(g.slug, g.name, g.is_default, _describe(g)) for g in groups],
        highlights=highlights,
    )
