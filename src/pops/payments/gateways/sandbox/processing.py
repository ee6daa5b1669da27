"""The Sandbox's server side: charges, queries, voids, refunds and the vault.

Each function runs inside the transaction the adapter opens for one gateway call, and works on
the Sandbox's own tables only. Errors are the gateway contract's: nothing here raises
`Declined` (the adapter does, after the declined transaction is committed).
"""

from __future__ import annotations

from django.db import transaction

from pops.core import clock, rows
from pops.payments.gateways.base import ChargeRequest, InvalidRequest, RefundRequest
from pops.payments.gateways.sandbox import cards, tokens
from pops.payments.gateways.sandbox.cards import Outcome
from pops.payments.gateways.sandbox.models import (
    CardFields,
    Refund,
    Token,
    Transaction,
    VaultCard,
)


def charge(
    merchant_id: str, request: ChargeRequest, *, again: bool = False
) -> tuple[Transaction, bool]:
    """The transaction for `request` and whether it already existed under its reference.

    A charge is idempotent by its merchant reference, and a token pays a merchant once. A
    token charge is one INSERT of its transaction (durable on its own), which the unique
    (token, merchant) index lets through once: a second charge with the token (a retry, a
    twin) waits for the first to commit, writes nothing, and finds the first one's
    transaction under its reference. Two charges with one reference and different tokens
    meet on the reference's unique constraint; the adapter runs the loser `again`, which
    looks the reference up first. A first try does not: it cannot have a transaction yet.
    """
    if again and (existing := _existing(merchant_id, request)) is not None:
        return existing, True
    if request.store_card and request.wallet:
        raise InvalidRequest("cannot_store_wallet", "Wallet payments cannot be stored.")
    token: Token | None = None
    source: CardFields
    if request.vault_token:
        source = _vault_card(merchant_id, request.vault_token, request.customer_id)
    else:
        try:
            token = source = tokens.usable(tokens.find(request.payment_token, request.wallet))
        except InvalidRequest:
            # Unknown, tampered or expired: a charge made before under this reference (with
            # a token since expired) answers; anything else is refused.
            if (existing := _existing(merchant_id, request)) is not None:
                return existing, True
            raise

    outcome = Outcome(source.outcome)
    if outcome.approves and cards.has_expired(source.exp_month, source.exp_year, clock.now()):
        outcome = Outcome.EXPIRED_CARD
    approved = outcome.approves
    created = Transaction(
        transaction_id=tokens.random_id("sbx_", 16),
        merchant_id=merchant_id,
        token=token,
        merchant_reference=request.merchant_reference,
        amount_cents=request.amount_cents,
        status=Transaction.Status.APPROVED if approved else Transaction.Status.DECLINED,
        decline_code="" if approved else outcome.decline_code,
        wallet=str(request.wallet or ""),
        wallet_payload=request.payment_token if request.wallet else "",
        customer_id=request.customer_id,
        vault_token=request.vault_token,
        **_card_fields(source),
    )
    if token is None:
        rows.insert(created)
    elif approved and request.store_card:
        created.vault_token = tokens.random_id("vlt_")
        with transaction.atomic():  # the vault card and the charge, together or not at all
            if not rows.insert_once(created, TOKEN_ONCE):
                return _token_used(merchant_id, request)
            VaultCard.objects.create(
                vault_token=created.vault_token,
                merchant_id=merchant_id,
                customer_id=request.customer_id,
                **_card_fields(source),
            )
    elif not rows.insert_once(created, TOKEN_ONCE):
        return _token_used(merchant_id, request)
    return created, False


TOKEN_ONCE = ("token", "merchant_id")  # (the sandbox_token_once constraint)


def _token_used(merchant_id: str, request: ChargeRequest) -> tuple[Transaction, bool]:
    """The token has paid this merchant already: by a charge made before under this
    reference (a retry's first try, say), which answers; else the charge is refused."""
    if (existing := _existing(merchant_id, request)) is not None:
        return existing, True
    raise InvalidRequest("token_used", "The payment token has already been used.")


def _existing(merchant_id: str, request: ChargeRequest) -> Transaction | None:
    """The transaction already made under the request's reference, if any (for its amount)."""
    existing = query(merchant_id, request.merchant_reference)
    if existing is not None and existing.amount_cents != request.amount_cents:
        raise InvalidRequest(
            "reference_conflict", "This merchant reference was already used for another amount."
        )
    return existing


def query(merchant_id: str, merchant_reference: str) -> Transaction | None:
    where = "merchant_id = %s AND merchant_reference = %s"
    return rows.get(Transaction, where, [merchant_id, merchant_reference])


def void(merchant_id: str, transaction_id: str) -> Transaction:
    txn = _locked_transaction(merchant_id, transaction_id)
    if txn.status == Transaction.Status.VOIDED:
        return txn
    if txn.status != Transaction.Status.APPROVED or txn.refunded_cents:
        raise InvalidRequest(
            "not_voidable", "Only an approved transaction without refunds can be voided."
        )
    txn.status = Transaction.Status.VOIDED
    txn.voided_at = clock.now()
    txn.save(update_fields=["status", "voided_at"])
    return txn


def refund(merchant_id: str, request: RefundRequest) -> tuple[Refund, Transaction, bool]:
    """The refund, its transaction afterwards, and whether the refund already existed."""
    txn = _locked_transaction(merchant_id, request.transaction_id)
    existing = txn.refunds.filter(merchant_reference=request.merchant_reference).first()
    if existing is not None:
        if existing.amount_cents != request.amount_cents:
            raise InvalidRequest(
                "reference_conflict",
                "This refund reference was already used for another amount.",
            )
        return existing, txn, True
    if txn.status != Transaction.Status.APPROVED:
        raise InvalidRequest("not_refundable", "Only an approved transaction can be refunded.")
    left = txn.amount_cents - txn.refunded_cents
    if request.amount_cents > left:
        raise InvalidRequest(
            "refund_exceeds_captured",
            f"The refund is above what is left to refund ({left} cents).",
        )
    created = Refund.objects.create(
        refund_id=tokens.random_id("rfd_", 16),
        transaction=txn,
        merchant_reference=request.merchant_reference,
        amount_cents=request.amount_cents,
    )
    txn.refunded_cents += request.amount_cents
    txn.save(update_fields=["refunded_cents"])
    return created, txn, False


def remove_vault_card(merchant_id: str, vault_token: str) -> None:
    card = (
        VaultCard.objects.select_for_update()
        .filter(merchant_id=merchant_id, vault_token=vault_token)
        .first()
    )
    if card is None:
        raise InvalidRequest("not_found", "No stored card has this vault token.")
    if card.removed_at is None:
        card.removed_at = clock.now()
        card.save(update_fields=["removed_at"])


def _vault_card(merchant_id: str, vault_token: str, customer_id: str) -> VaultCard:
    card = VaultCard.objects.filter(
        merchant_id=merchant_id,
        vault_token=vault_token,
        customer_id=customer_id,
        removed_at=None,
    ).first()
    if card is None:
        raise InvalidRequest("invalid_vault_token", "No stored card has this vault token.")
    return card


def _locked_transaction(merchant_id: str, transaction_id: str) -> Transaction:
    txn = (
        Transaction.objects.select_for_update()
        .filter(merchant_id=merchant_id, transaction_id=transaction_id)
        .first()
    )
    if txn is None:
        raise InvalidRequest("not_found", "No transaction has this id.")
    return txn


def _card_fields(source: CardFields) -> dict[str, object]:
    return {
        "brand": source.brand,
        "last4": source.last4,
        "exp_month": source.exp_month,
        "exp_year": source.exp_year,
        "outcome": source.outcome,
    }
