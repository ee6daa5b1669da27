"""The amount rules of a payment (DESIGN.md, "Other Amount"), checked under the guarantor's
lock in the same transaction that reserves the amount."""

from pops.core.money import display_amount
from pops.groups.models import Group
from pops.payments.services.errors import PaymentRefused


def check_amount(amount_cents: int, payable_cents: int, group: Group) -> None:
    """`payable_cents` is the Current Balance less payments still in flight. The amount must be
    more than 0, at least the lower of the Group minimum and what is payable, and at most what is
    payable unless the Group allows prepayment (the excess is then kept as unapplied funds).
    Collection balances never count: they are not in the Current Balance."""
    if amount_cents <= 0:
        raise PaymentRefused("amount", "The amount must be more than $0.00.")
    if payable_cents <= 0 and not group.allow_prepayment:
        raise PaymentRefused("amount", "There is no balance to pay on this account right now.")
    minimum = group.minimum_payment_cents
    if payable_cents > 0:
        minimum = min(minimum, payable_cents)
    if amount_cents < minimum:
        raise PaymentRefused("amount", f"The amount must be at least {display_amount(minimum)}.")
    if amount_cents > payable_cents and not group.allow_prepayment:
        raise PaymentRefused(
            "amount",
            f"The amount cannot be more than the balance of {display_amount(payable_cents)}.",
        )
