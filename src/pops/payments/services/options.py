"""What a guarantor can pay now, and how: what a payment page or an API client (a kiosk, the
practice's phone line) shows before a payment, from the same rules the payment is checked by
(`amounts.amount_range`, `methods.offered_for`)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Sum

from pops.groups.models import Group
from pops.ledger.models import Guarantor
from pops.ledger.services.balances import Balances, guarantor_balances
from pops.payments.models import IN_FLIGHT, PaymentAttempt, StoredCard
from pops.payments.services import methods
from pops.payments.services.amounts import AmountRange, amount_range
from pops.payments.services.stored_cards import list_cards


@dataclass(frozen=True)
class PaymentOptions:
    balances: Balances
    in_flight_cents: int  # paid a moment ago, the gateway's answer not in yet
    amounts: AmountRange | None  # None: nothing can be paid now
    offer: methods.Offer
    stored_cards: list[StoredCard]  # the cards that can pay, when stored cards are offered

    @property
    def payable_cents(self) -> int:
        return max(self.balances.current_balance - self.in_flight_cents, 0)


def payment_options(guarantor: Guarantor, group: Group) -> PaymentOptions:
    figures = guarantor_balances(guarantor, include_new_charges=group.include_new_charges)
    in_flight = (
        PaymentAttempt.objects.filter(IN_FLIGHT, guarantor=guarantor).aggregate(
            total=Sum("amount_cents")
        )["total"]
        or 0
    )
    offer = methods.offered_for(group)
    return PaymentOptions(
        balances=figures,
        in_flight_cents=in_flight,
        amounts=amount_range(figures.current_balance - in_flight, group),
        offer=offer,
        stored_cards=list_cards(guarantor) if offer.stored_cards else [],
    )
