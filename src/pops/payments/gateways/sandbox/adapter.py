"""The Sandbox adapter: the gateway contract, served in-process by the Sandbox's own code.

It never calls the Sandbox over HTTP. Instead every call is one durable database transaction of
the Sandbox's own (`transaction.atomic(durable=True)`; a charge is a single INSERT, a
transaction by itself), which stands for the gateway's side of a network round trip: what was
committed there stays committed whatever POPS does next. Calling it inside a POPS transaction
is therefore refused (RuntimeError), exactly the rule every real gateway call follows.

Credentials: {"merchant_id": "...", "api_key": "sk_sandbox_..."}. The merchant id scopes every
transaction, vault card and token use. The Sandbox is refused altogether when the
`SANDBOX_GATEWAY_ENABLED` setting is off.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from pops.core import rows
from pops.payments.gateways.base import (
    Capabilities,
    CardInfo,
    ChargeRequest,
    ChargeResult,
    ClientSetup,
    DeclineCode,
    Declined,
    Gateway,
    GatewayMisconfigured,
    GatewayUnavailable,
    QueryResult,
    RefundRequest,
    RefundResult,
    TransactionStatus,
    VoidResult,
    WalletKind,
)
from pops.payments.gateways.sandbox import processing
from pops.payments.gateways.sandbox.cards import Outcome
from pops.payments.gateways.sandbox.faults import Fault, Operation, current
from pops.payments.gateways.sandbox.models import Transaction

T = TypeVar("T")
API_KEY_PREFIX = "sk_sandbox_"
_ATTEMPTS = 3  # a unique-constraint race is settled by running the call again


class SandboxGateway(Gateway):
    name = "sandbox"
    capabilities = Capabilities(
        stored_cards=True,
        void=True,
        refund=True,
        partial_refund=True,
        apple_pay=True,
        google_pay=True,
        query_by_reference=True,
    )

    def __init__(self, credentials: Mapping[str, Any], config: Mapping[str, Any] | None = None):
        super().__init__(credentials, config)
        if not settings.SANDBOX_GATEWAY_ENABLED:
            raise GatewayMisconfigured("The Sandbox gateway is switched off on this server.")
        merchant_id = credentials.get("merchant_id")
        api_key = credentials.get("api_key")
        if not isinstance(merchant_id, str) or not 0 < len(merchant_id) <= 64:
            raise GatewayMisconfigured("Sandbox credentials need a merchant_id.")
        if not isinstance(api_key, str) or not api_key.startswith(API_KEY_PREFIX):
            raise GatewayMisconfigured(f"Sandbox credentials need an api_key {API_KEY_PREFIX}...")
        self.merchant_id = merchant_id

    @staticmethod
    def sign_up(merchant_id: str) -> dict[str, str]:
        """Credentials for a new Sandbox merchant (what signing up at a gateway gives you)."""
        return {"merchant_id": merchant_id, "api_key": API_KEY_PREFIX + secrets.token_urlsafe(24)}

    def client_setup(self) -> ClientSetup:
        return ClientSetup(
            hosted_fields_url=reverse("sandbox_gateway:hosted_fields"),
            wallet_sheet_urls={
                kind: reverse("sandbox_gateway:wallet_sheet", args=[kind.value.replace("_", "-")])
                for kind in WalletKind
            },
        )

    def charge(self, request: ChargeRequest) -> ChargeResult:
        tries = itertools.count()  # a try after the first looks for the reference first
        txn, duplicate = self._call(
            Operation.CHARGE,
            lambda: processing.charge(self.merchant_id, request, again=next(tries) > 0),
            atomic=False,  # (it commits its writes itself: one INSERT, or its own block)
        )
        if txn.status == Transaction.Status.DECLINED:
            raise Declined(
                DeclineCode(txn.decline_code),
                transaction_id=txn.transaction_id,
                card=_card(txn),
            )
        if not duplicate and txn.outcome == Outcome.APPROVED_THEN_TIMEOUT:
            raise GatewayUnavailable(
                "The Sandbox did not answer in time (test card 0341).",
                charge_may_have_happened=True,
            )
        return ChargeResult(
            transaction_id=txn.transaction_id,
            merchant_reference=txn.merchant_reference,
            amount_cents=txn.amount_cents,
            card=_card(txn),
            approved_at=txn.created_at,
            wallet=WalletKind(txn.wallet) if txn.wallet else None,
            vault_token=txn.vault_token,
            duplicate=duplicate,
        )

    def query_by_reference(self, merchant_reference: str) -> QueryResult | None:
        txn = self._call(
            Operation.QUERY, lambda: processing.query(self.merchant_id, merchant_reference)
        )
        if txn is None:
            return None
        return QueryResult(
            transaction_id=txn.transaction_id,
            merchant_reference=txn.merchant_reference,
            status=TransactionStatus(txn.status),
            amount_cents=txn.amount_cents,
            refunded_cents=txn.refunded_cents,
            card=_card(txn),
            created_at=txn.created_at,
            wallet=WalletKind(txn.wallet) if txn.wallet else None,
            decline_code=DeclineCode(txn.decline_code) if txn.decline_code else None,
            vault_token=txn.vault_token,
        )

    def void(self, transaction_id: str) -> VoidResult:
        txn = self._call(Operation.VOID, lambda: processing.void(self.merchant_id, transaction_id))
        assert txn.voided_at is not None
        return VoidResult(transaction_id=txn.transaction_id, voided_at=txn.voided_at)

    def refund(self, request: RefundRequest) -> RefundResult:
        refund, txn, duplicate = self._call(
            Operation.REFUND, lambda: processing.refund(self.merchant_id, request)
        )
        return RefundResult(
            refund_id=refund.refund_id,
            transaction_id=txn.transaction_id,
            amount_cents=refund.amount_cents,
            refunded_total_cents=txn.refunded_cents,
            refunded_at=refund.created_at,
            duplicate=duplicate,
        )

    def remove_stored_card(self, vault_token: str) -> None:
        self._call(
            Operation.REMOVE_STORED_CARD,
            lambda: processing.remove_vault_card(self.merchant_id, vault_token),
        )

    def _call(self, operation: Operation, work: Callable[[], T], *, atomic: bool = True) -> T:
        """Run `work` as one gateway round trip, with the fault switch applied around it: in
        a durable transaction of its own, unless it commits its writes itself (`atomic`
        False). Either way it refuses to run inside a POPS transaction."""
        # The gateway's side commits its own writes: none may be held for a POPS transaction.
        assert not rows.holding(), "a gateway call inside rows.together()"
        fault = current(operation)
        if fault in (Fault.CONNECTION_REFUSED, Fault.CONNECTION_RESET):
            raise GatewayUnavailable(
                f"Sandbox connection failed ({fault}).",
                charge_may_have_happened=fault == Fault.CONNECTION_RESET,
            )
        # A fault that strikes before the commit needs a transaction to roll back; and inside
        # a transaction, the durable block raises RuntimeError (only a test case's is let by).
        durable = (
            atomic
            or fault == Fault.TIMEOUT_BEFORE_COMMIT
            or transaction.get_connection().in_atomic_block
        )
        for attempt in range(_ATTEMPTS):
            try:
                with transaction.atomic(durable=True) if durable else nullcontext():
                    result = work()
                    if fault == Fault.TIMEOUT_BEFORE_COMMIT:
                        transaction.set_rollback(True)
                break
            except IntegrityError:
                if attempt == _ATTEMPTS - 1:
                    raise GatewayUnavailable(
                        "The Sandbox could not settle a concurrent request.",
                        charge_may_have_happened=False,
                    ) from None
        if fault is not None:
            raise GatewayUnavailable(f"Sandbox fault: {fault}.", charge_may_have_happened=True)
        return result


def _card(txn: Transaction) -> CardInfo:
    return CardInfo(
        brand=txn.brand, last4=txn.last4, exp_month=txn.exp_month, exp_year=txn.exp_year
    )
