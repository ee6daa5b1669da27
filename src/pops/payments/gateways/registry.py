"""The explicit registry of gateway adapters: a name stored on a merchant account -> a class.

A new adapter is added here by hand; nothing is discovered or loaded by dotted path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pops.payments.gateways.base import Gateway, GatewayMisconfigured
from pops.payments.gateways.sandbox.adapter import SandboxGateway

if TYPE_CHECKING:
    from pops.payments.models import MerchantAccount

GATEWAYS: Mapping[str, type[Gateway]] = {
    SandboxGateway.name: SandboxGateway,
}


def gateway_class(name: str) -> type[Gateway]:
    try:
        return GATEWAYS[name]
    except KeyError:
        raise GatewayMisconfigured(f"Unknown gateway {name!r}.") from None


def get_gateway(
    name: str, credentials: Mapping[str, Any], config: Mapping[str, Any] | None = None
) -> Gateway:
    """An adapter for one merchant account; raises `GatewayMisconfigured` if it cannot be made."""
    return gateway_class(name)(credentials, config)


def gateway_for(account: MerchantAccount) -> Gateway:
    """The adapter of a merchant account: the one place its secret credentials are read."""
    if not account.is_active:
        raise GatewayMisconfigured(f"Merchant account {account.pk} is not active.")
    return get_gateway(account.gateway, account.credentials(), account.config)
