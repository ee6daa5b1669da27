from django.http import HttpRequest
from ninja import Router, Schema

from pops.api.auth import actor_of, practice_of
from pops.api.errors import ApiError
from pops.api.schemas import with_errors
from pops.core import audit
from pops.core.money import format_amount
from pops.groups.services import GroupNotFound, resolve_group
from pops.ledger.models import Guarantor
from pops.ledger.services.balances import guarantor_balances

router = Router(tags=["guarantors"])


class BalancesOut(Schema):
    statement_balance: str | None
    last_statement: str | None
    amount_due: str
    current_balance: str
    unapplied_funds: str
    collection_balance: str


def _money(cents: int | None) -> str | None:
    return None if cents is None else format_amount(cents)


@router.get("/guarantors/{guarantor_id}/balances", response=with_errors({200: BalancesOut}, 404))
def balances(request: HttpRequest, guarantor_id: str, group: str | None = None) -> dict:
    """A guarantor's balances as decimal strings, under the Group named by `group` (its slug)
    or the practice's default Group. The statement figures are null with no statement."""
    practice = practice_of(request)
    guarantor = Guarantor.objects.filter(practice=practice, external_id=guarantor_id).first()
    if guarantor is None:
        raise ApiError(404, f"no guarantor {guarantor_id!r}", "guarantor_id")
    try:
        pops_group = resolve_group(practice, group)
    except GroupNotFound:
        raise ApiError(422, f"no Group {group!r} in this practice", "group") from None
    figures = guarantor_balances(guarantor, include_new_charges=pops_group.include_new_charges)
    audit.record(
        "ledger.balances.viewed",
        actor=actor_of(request),
        practice=practice,
        resource=("guarantor", guarantor.external_id),
        guarantor_id=guarantor.external_id,
        request=request,
    )
    return {name: _money(value) for name, value in vars(figures).items()}
