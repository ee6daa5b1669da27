"""The amount rules of a payment (DESIGN.md, "Other Amount"), checked under the guarantor's
lock in the same transaction that reserves the amount, and shown to a payer beforehand."""

from __future__ import annotations

from dataclasses import dataclass

from pops.core.money import display_amount
from pops.groups.models import Group
from pops.payments.services.errors import PaymentRefused


@dataclass(frozen=True)
class AmountRange:
    """The amounts a payment may take, in cents: `maximum` None when the Group allows
    prepayment (what is paid beyond the balance is kept as unapplied funds)."""

    minimum: int
    maximum: int | None


def amount_range(payable_cents: int, group: Group) -> AmountRange | None:
    """What may be paid when `payable_cents` (the Current Balance less payments still in
    flight) is payable: at least the lower of the Group minimum and what is payable (and more
    than 0), at most what is payable unless the Group allows prepayment. None when nothing can
    be paid. Collection balances never count: they are not in the Current Balance."""
    if payable_cents <= 0 and not group.allow_prepayment:
        return None
    minimum = group.minimum_payment_cents
    if payable_cents > 0:
        minimum = min(minimum, payable_cents)
    return AmountRange(
        minimum=max(minimum, 1), maximum=None if group.allow_prepayment else payable_cents
    )


def check_amount(amount_cents: int, payable_cents: int, group: Group) -> None:
    """Refuse an amount outside `amount_range` with words a payer may read."""
    if amount_cents <= 0:
        raise PaymentRefused("amount", "The amount must be more than $0.00.")
    allowed = amount_range(payable_cents, group)
    if allowed is None:
        raise PaymentRefused("amount", "There is no balance to pay on this account right now.")
    if amount_cents < allowed.minimum:
        raise PaymentRefused(
            "amount", f"The amount must be at least {display_amount(allowed.minimum)}."
        )
    if allowed.maximum is not None and amount_cents > allowed.maximum:
        raise PaymentRefused(
            "amount",
            f"The amount cannot be more than the balance of {display_amount(allowed.maximum)}.",
        )
