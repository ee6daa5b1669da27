"""The statement run: one statement per guarantor who owes something on that date."""

import datetime as dt
import hashlib

from django.db import transaction

from pops.core import audit
from pops.ledger.models import ID_LENGTH, Guarantor, Practice, Statement
from pops.ledger.services.balances import current_balances


def statement_id(statement_date: dt.date, guarantor_external_id: str) -> str:
    """Statements POPS writes carry ids no import can collide with by accident. A Guarantor ID
    too long to fit whole is replaced by a digest of it, so the id stays within ID_LENGTH."""
    prefix = f"pops-{statement_date:%Y%m%d}-"
    if len(prefix) + len(guarantor_external_id) <= ID_LENGTH:
        return prefix + guarantor_external_id
    digest = hashlib.sha256(guarantor_external_id.encode()).hexdigest()
    return f"{prefix}#{digest[: ID_LENGTH - len(prefix) - 1]}"


@transaction.atomic
def run_statements(practice: Practice, statement_date: dt.date, *, actor: audit.Actor) -> int:
    """Write a statement for each guarantor with a positive Current Balance. Running it again
    for the same date writes nothing new. Returns how many statements were written."""
    practice = Practice.objects.select_for_update().get(pk=practice.pk)
    owing = {gid: cents for gid, cents in current_balances(practice.pk).items() if cents > 0}
    already = set(
        Statement.objects.filter(
            practice=practice, statement_date=statement_date, guarantor_id__in=owing
        ).values_list("guarantor_id", flat=True)
    )
    due_date = statement_date + dt.timedelta(days=practice.statement_terms_days)
    external_ids = dict(
        Guarantor.objects.filter(pk__in=owing.keys() - already).values_list("pk", "external_id")
    )
    statements = [
        Statement(
            practice=practice,
            guarantor_id=gid,
            external_id=statement_id(statement_date, external_ids[gid]),
            statement_date=statement_date,
            due_date=due_date,
            statement_balance_cents=owing[gid],
            amount_due_cents=owing[gid],
        )
        for gid in sorted(external_ids)
    ]
    Statement.objects.bulk_create(statements, batch_size=2000)
    audit.record(
        "ledger.statements.run",
        actor=actor,
        practice=practice,
        data={"statement_date": statement_date.isoformat(), "written": len(statements)},
    )
    return len(statements)
