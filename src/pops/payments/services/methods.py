"""Which ways to pay a payment may use: the Group's options (`by_group`), narrowed to what the
gateway of every merchant account it reaches can do (`common`, from each adapter's
`Capabilities`).

A payment page asks `offered_for` what to show (no Apple Pay button under split payments or a
gateway without it, no "Store Card for Future Use" box without a vault). The payment service
checks each payment against the same two rules, over the accounts that payment actually reaches;
a page of a Group that splits payments cannot know those before the amount is chosen, so it
offers only what every account of the practice can do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from pops.groups.models import Group
from pops.payments.gateways.base import Capabilities, GatewayMisconfigured
from pops.payments.gateways.registry import gateway_class
from pops.payments.merchant_accounts import default_account
from pops.payments.models import MerchantAccount
from pops.payments.services.errors import PaymentsUnavailable


@dataclass(frozen=True)
class Offer:
    """What a payment may use: a card typed into the hosted fields, a wallet, storing the card
    typed in, or paying with a card stored before."""

    card: bool = False
    apple_pay: bool = False
    google_pay: bool = False
    store_card: bool = False
    stored_cards: bool = False


def by_group(group: Group) -> Offer:
    """What `group` allows, whatever the gateways. Apple Pay takes one merchant at a time, so a
    Group that splits payments never allows it; a stored card is a card, stored and used only
    where the Group enables payment method storage."""
    storage = group.enable_credit_card and group.enable_payment_method_storage
    return Offer(
        card=group.enable_credit_card,
        apple_pay=group.enable_apple_pay and not group.split_payments,
        google_pay=group.enable_google_pay,
        store_card=storage,
        stored_cards=storage,
    )


def capabilities_of(account: MerchantAccount) -> Capabilities:
    """What the account's gateway can do. A gateway POPS does not know makes payments through
    the account unavailable (PaymentsUnavailable), as a charge through it would."""
    try:
        return gateway_class(account.gateway).capabilities
    except GatewayMisconfigured as error:
        raise PaymentsUnavailable(str(error)) from None


def common(accounts: Iterable[MerchantAccount]) -> Capabilities:
    """What the gateway of every one of `accounts` can do (nothing, for no account)."""
    found = [capabilities_of(account) for account in accounts]
    if not found:
        return Capabilities()
    return Capabilities(
        **{
            flag.name: all(getattr(can, flag.name) for can in found)
            for flag in fields(Capabilities)
        }
    )


def offer(group: Group, accounts: Iterable[MerchantAccount]) -> Offer:
    """What a payment under `group` through `accounts` may use."""
    accounts = list(accounts)
    if not accounts:
        return Offer()
    allowed, can = by_group(group), common(accounts)
    return Offer(
        card=allowed.card,
        apple_pay=allowed.apple_pay and can.apple_pay,
        google_pay=allowed.google_pay and can.google_pay,
        store_card=allowed.store_card and can.stored_cards,
        stored_cards=allowed.stored_cards and can.stored_cards,
    )


def offered_for(group: Group) -> Offer:
    """What a payment page of `group`'s practice may show: nothing without the practice's own
    merchant account (every payment needs it), else what it can take, and, when the Group
    splits payments, what every other active account of the practice can take too."""
    default = default_account(group.practice_id)
    if default is None:
        return Offer()
    accounts = [default]
    if group.split_payments:
        others = MerchantAccount.objects.filter(practice_id=group.practice_id, is_active=True)
        accounts += list(others.exclude(pk=default.pk))
    try:
        return offer(group, accounts)
    except PaymentsUnavailable:
        return Offer()
