from django.http import HttpRequest
from ninja import Router, Schema, Status

from pops.api.auth import actor_of, practice_of
from pops.api.errors import ApiError
from pops.api.lookups import group_of, guarantor_of
from pops.api.schemas import with_errors
from pops.core import audit
from pops.core.money import format_amount
from pops.groups.models import Group
from pops.ledger.models import Guarantor
from pops.ledger.services.balances import guarantor_balances
from pops.payments.services.errors import PaymentsUnavailable
from pops.payments.services.options import payment_options
from pops.payments.services.stored_cards import find_card, remove_card

router = Router(tags=["guarantors"])


class BalancesOut(Schema):
    statement_balance: str | None
    last_statement: str | None
    amount_due: str
    current_balance: str
    unapplied_funds: str
    collection_balance: str


class MethodsOut(Schema):
    card: bool
    apple_pay: bool
    google_pay: bool
    store_card: bool
    stored_cards: bool


class StoredCardOut(Schema):
    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


class PaymentOptionsOut(Schema):
    group: str
    amount_due: str
    current_balance: str
    in_flight: str
    payable: str
    minimum: str | None
    maximum: str | None
    methods: MethodsOut
    stored_cards: list[StoredCardOut]


def _money(cents: int | None) -> str | None:
    return None if cents is None else format_amount(cents)


def _viewed(request: HttpRequest, guarantor_id: str, group: str | None) -> tuple[Guarantor, Group]:
    """The guarantor and the Group asked for (the default one without `group`), with the
    viewing of the guarantor's balances audited."""
    practice = practice_of(request)
    guarantor = guarantor_of(practice, guarantor_id, "guarantor_id")
    pops_group = group_of(practice, group)
    audit.record(
        "ledger.balances.viewed",
        actor=actor_of(request),
        practice=guarantor.practice,
        resource=("guarantor", guarantor.external_id),
        guarantor_id=guarantor.external_id,
        request=request,
    )
    return guarantor, pops_group


@router.get("/guarantors/{guarantor_id}/balances", response=with_errors({200: BalancesOut}, 404))
def balances(request: HttpRequest, guarantor_id: str, group: str | None = None) -> dict:
    """A guarantor's balances as decimal strings, under the Group named by `group` (its slug)
    or the practice's default Group. The statement figures are null with no statement."""
    guarantor, pops_group = _viewed(request, guarantor_id, group)
    figures = guarantor_balances(guarantor, include_new_charges=pops_group.include_new_charges)
    return {name: _money(value) for name, value in vars(figures).items()}


@router.get(
    "/guarantors/{guarantor_id}/payment-options",
    response=with_errors({200: PaymentOptionsOut}, 404),
    summary="What a guarantor can pay now, and how",
)
def options(request: HttpRequest, guarantor_id: str, group: str | None = None) -> dict:
    """What to show before a payment, under the Group named by `group` (else the default):
    the Amount Due to suggest, what is `payable` (the Current Balance less payments whose
    gateway answer is not in yet, `in_flight`), the `minimum` and `maximum` a payment may take
    (both null when nothing can be paid now; `maximum` null when the Group allows prepayment),
    the ways to pay the Group and the practice's gateways offer, and the guarantor's stored
    cards (when stored cards are offered; pay with one by its `id` as `stored_card`)."""
    guarantor, pops_group = _viewed(request, guarantor_id, group)
    found = payment_options(guarantor, pops_group)
    return {
        "group": pops_group.slug,
        "amount_due": format_amount(found.balances.amount_due),
        "current_balance": format_amount(found.balances.current_balance),
        "in_flight": format_amount(found.in_flight_cents),
        "payable": format_amount(found.payable_cents),
        "minimum": _money(found.amounts.minimum if found.amounts else None),
        "maximum": _money(found.amounts.maximum if found.amounts else None),
        "methods": vars(found.offer),
        "stored_cards": [
            {
                "id": str(card.pk),
                "brand": card.brand,
                "last4": card.last4,
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
            }
            for card in found.stored_cards
        ],
    }


@router.delete(
    "/guarantors/{guarantor_id}/stored-cards/{card_id}",
    response=with_errors({204: None}, 404, 503),
    summary="Remove a stored card",
)
def remove_stored_card(request: HttpRequest, guarantor_id: str, card_id: str) -> Status:
    """Removes the card from the gateway's vault (each vault it is in) and from the
    guarantor's stored cards: 204. A card removed already, or not the guarantor's, is 404;
    503 means a gateway could not be reached and the card is kept: send the request again."""
    guarantor = guarantor_of(practice_of(request), guarantor_id, "guarantor_id")
    card = find_card(guarantor, card_id)
    if card is None:
        raise ApiError(404, f"no stored card {card_id!r} of this guarantor", "card_id")
    try:
        remove_card(card, actor=actor_of(request))
    except PaymentsUnavailable as error:
        raise ApiError(503, f"{error}: it is kept; send the request again") from None
    return Status(204, None)
