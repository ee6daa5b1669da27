"""Which ways to pay a payment may use: the Group's options, narrowed to what the gateway of
every merchant account the payment goes to can do (its `Capabilities`).

A payment page asks `offered_for` what to show (no Apple Pay button when a gateway cannot take
it, no "Store Card for Future Use" box when a vault is missing); the payment service checks each
payment against the same `offer`, so nothing a page shows is then refused for want of a
capability, and nothing a page hides can be asked for through the API.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pops.groups.models import Group
from pops.payments.gateways.base import Capabilities, WalletKind
from pops.payments.gateways.registry import GATEWAYS
from pops.payments.merchant_accounts import default_account
from pops.payments.models import MerchantAccount

NOTHING = Capabilities()


@dataclass(frozen=True)
class Offer:
    """What a payment may use: a card typed into the hosted fields, a wallet, storing the card
    typed in, or paying with a card stored before."""

    card: bool = False
    apple_pay: bool = False
    google_pay: bool = False
    store_card: bool = False
    stored_cards: bool = False

    def wallet(self, wallet: WalletKind) -> bool:
        return self.apple_pay if wallet == WalletKind.APPLE_PAY else self.google_pay


def capabilities_of(account: MerchantAccount) -> Capabilities:
    """What the account's gateway can do: nothing, for a gateway POPS does not know (a payment
    through it is refused as misconfigured when it is charged)."""
    adapter = GATEWAYS.get(account.gateway)
    return adapter.capabilities if adapter is not None else NOTHING


def can_all(accounts: Iterable[MerchantAccount], capability: str) -> bool:
    """Whether the gateway of every one of `accounts` (at least one) has `capability`."""
    found = [getattr(capabilities_of(account), capability) for account in accounts]
    return bool(found) and all(found)


def offer(group: Group, accounts: Iterable[MerchantAccount]) -> Offer:
    """What a payment under `group` through `accounts` may use. Apple Pay takes one merchant
    at a time, so a Group that splits payments never offers it."""
    accounts = list(accounts)
    if not accounts:
        return Offer()
    return Offer(
        card=group.enable_credit_card,
        apple_pay=group.enable_apple_pay
        and not group.split_payments
        and can_all(accounts, "apple_pay"),
        google_pay=group.enable_google_pay and can_all(accounts, "google_pay"),
        store_card=group.enable_credit_card
        and group.enable_payment_method_storage
        and can_all(accounts, "stored_cards"),
        stored_cards=can_all(accounts, "stored_cards"),
    )


def offered_for(group: Group) -> Offer:
    """What a payment page of `group`'s practice may show: through the practice's account, or,
    when the Group splits payments, through any of its active accounts (a page cannot know
    before the amount is chosen which of them a payment will reach)."""
    if group.split_payments:
        accounts = list(
            MerchantAccount.objects.filter(practice_id=group.practice_id, is_active=True)
        )
    else:
        account = default_account(group.practice_id)
        accounts = [account] if account is not None else []
    return offer(group, accounts)
