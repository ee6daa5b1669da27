"""Finding and creating merchant accounts."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from pops.core import audit, rows
from pops.core.audit import Actor
from pops.ledger.models import Facility, Practice, Provider
from pops.payments.gateways.sandbox.adapter import SandboxGateway
from pops.payments.models import MerchantAccount


def default_account(practice: Practice | int) -> MerchantAccount | None:
    """The practice's own active account (not a facility's or provider's)."""
    return rows.get(
        MerchantAccount,
        "practice_id = %s AND facility_id IS NULL AND provider_id IS NULL AND is_active = %s",
        [practice if isinstance(practice, int) else practice.pk, True],
    )


def account_for(
    practice: Practice, *, facility: Facility | None = None, provider: Provider | None = None
) -> MerchantAccount | None:
    """The account that takes money for a facility or provider (split payments): its own active
    account if it has one, else the practice's default."""
    scoped = MerchantAccount.objects.filter(practice=practice, is_active=True)
    if facility is not None and (found := scoped.filter(facility=facility).first()):
        return found
    if provider is not None and (found := scoped.filter(provider=provider).first()):
        return found
    return default_account(practice)


def ensure_sandbox_account(
    practice: Practice, *, actor: Actor | None = None
) -> MerchantAccount | None:
    """The practice's default merchant account, creating a Sandbox one if it has none.

    Idempotent and safe under concurrency (a unique constraint allows one active default per
    practice). An existing account of any gateway is kept as it is. Creates nothing, and answers
    None if the practice has no account, while `SANDBOX_GATEWAY_ENABLED` is off.
    """
    existing = default_account(practice)
    if existing is not None or not settings.SANDBOX_GATEWAY_ENABLED:
        return existing
    account = MerchantAccount(practice=practice, name="Sandbox", gateway=SandboxGateway.name)
    account.set_credentials(SandboxGateway.sign_up(f"practice-{practice.pk}"))
    try:
        with transaction.atomic():
            account.save()
            audit.record(
                "payments.merchant_account.created",
                actor=actor or Actor.system(),
                practice=practice,
                resource=("merchant_account", str(account.pk)),
                data={"gateway": account.gateway, "name": account.name},
            )
    except IntegrityError:
        return default_account(practice)
    return account
