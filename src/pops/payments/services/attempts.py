"""Taking a payment exactly once.

Three phases, because a gateway call cannot sit inside a database transaction:

1. **Begin** (one transaction): lock the guarantor, check the amount against the Current
   Balance less payments still in flight, and record the attempt with its parts. The attempt's
   idempotency key is unique in the database, so a second request with the same key can never
   get this far: it replays the first one's result, or answers "in progress".
2. **Charge** (no transaction): one gateway call per part, each under its own merchant
   reference. With several parts each answer is written as soon as it arrives; a single
   part's answer is written by the settling transaction (see `_charge`).
3. **Settle** (one transaction): lock the guarantor and the attempt, and write the outcome:
   a paid receipt with its posting, its reference batch and its audit record; or a $0.00
   Unsuccessful receipt; or, when the gateway's answer never came, mark the attempt `unknown`
   for the reconciler, which asks the gateway and never charges.
"""

import datetime as dt
import logging
import re
import secrets
from collections import defaultdict
from dataclasses import dataclass
from functools import cache

from django.db import IntegrityError, connection, transaction

from pops.core import audit, clock, rows
from pops.core.db import retry_on_conflict
from pops.core.models import AuditEvent
from pops.groups.models import Group
from pops.groups.services import resolve_group
from pops.ledger.models import Guarantor, Receipt, ReceiptNumber
from pops.ledger.services import balances
from pops.ledger.services.batches import pops_batch
from pops.ledger.services.posting import open_lines_oldest_first, post_payment
from pops.payments.gateways.base import (
    Capabilities,
    CardInfo,
    ChargeRequest,
    ChargeResult,
    Declined,
    GatewayMisconfigured,
    GatewayUnavailable,
    InvalidRequest,
    WalletKind,
)
from pops.payments.gateways.registry import gateway_for
from pops.payments.models import (
    IN_FLIGHT_SQL,
    MerchantAccount,
    PaymentAttempt,
    PaymentPart,
    StoredCard,
)
from pops.payments.services import methods
from pops.payments.services.amounts import check_amount
from pops.payments.services.errors import (
    InProgress,
    KeyReused,
    PaymentRefused,
    PaymentsUnavailable,
)
from pops.payments.services.locks import lock_guarantor
from pops.payments.services.notifications import queue_receipt_email
from pops.payments.services.stored_cards import vault_tokens

logger = logging.getLogger("pops.payments")

Status = PaymentAttempt.Status
PartStatus = PaymentPart.Status

UNREACHABLE = "We could not reach the card processor and nothing was charged. Please try again."


@dataclass(frozen=True)
class PaymentRequest:
    """One payment as asked for. Exactly one of `payment_token` (a one-time hosted-fields token
    or a wallet's opaque payload, with `wallet` set) and `stored_card` is given."""

    guarantor: Guarantor
    amount_cents: int
    idempotency_key: str
    fingerprint: str
    actor: audit.Actor
    group: Group | None = None
    payment_token: str = ""
    stored_card: StoredCard | None = None
    wallet: WalletKind | None = None
    store_card: bool = False
    email: str = ""
    source: str = "api"

    @property
    def method(self) -> str:
        if self.stored_card is not None:
            return PaymentAttempt.Method.STORED_CARD
        if self.wallet is not None:
            return str(self.wallet)
        return PaymentAttempt.Method.CARD


def new_idempotency_key() -> str:
    """A server-issued key for a payment page: 128 bits from the CSPRNG."""
    return secrets.token_urlsafe(16)


def pay(request: PaymentRequest) -> PaymentAttempt:
    """Take one payment exactly once, whatever the retries. Answers the attempt (succeeded,
    declined or unknown). Raises PaymentRefused (nothing written, key not used up), KeyReused,
    InProgress or PaymentsUnavailable."""
    try:
        attempt, parts = _begin(request)
    except IntegrityError:
        # The key is taken: by this same request made before (a retry, a double click), or by
        # a twin that got there first (the key's unique constraint decided). Replay that one.
        existing = replay(request)
        if existing is None:  # pragma: no cover - the constraint names the key
            raise
        return existing
    kept = _charge(attempt, request, parts)
    return finish(attempt, parts, actor=request.actor, kept=kept)


def replay(request: PaymentRequest) -> PaymentAttempt | None:
    """The attempt already made with this key, if any."""
    guarantor = request.guarantor
    return earlier_attempt(guarantor.practice_id, request.idempotency_key, request.fingerprint)


def earlier_attempt(
    practice_id: int, key: str, fingerprint: str, *, related: tuple[str, ...] = ()
) -> PaymentAttempt | None:
    """The attempt made with this key, if any (with `related` loaded). Raises KeyReused when it
    was made with another request, InProgress while it is still being made."""
    if related:
        attempt = (
            PaymentAttempt.objects.filter(practice_id=practice_id, idempotency_key=key)
            .select_related(*related)
            .first()
        )
    else:
        attempt = rows.get(
            PaymentAttempt, "practice_id = %s AND idempotency_key = %s", [practice_id, key]
        )
    if attempt is None:
        return None
    if attempt.fingerprint != fingerprint:
        raise KeyReused()
    if attempt.status == Status.PROCESSING:
        raise InProgress()
    return attempt


# --- 1. Begin ---------------------------------------------------------------------------------


@cache
def _begin_facts_sql(vendor: str) -> str:
    """Read under the guarantor's lock, in one statement: the practice's default Group and
    merchant account (as `default_group` and `default_account` find them), whether the key is
    taken (by this request made before, or by a twin that began while this one waited for the
    lock), how much of the guarantor's money is already in flight, the new attempt's key
    drawn ahead (`rows.next_key`: on PostgreSQL, so that the attempt's and its parts' INSERTs
    go together) and the guarantor's balance facts (`balances.facts_sql`). Parameters:
    `_begin_facts_params`."""
    return f"""
        SELECT {rows.columns(Group, "grp")}, {rows.columns(MerchantAccount, "account")},
            EXISTS (SELECT 1 FROM payments_paymentattempt
                    WHERE practice_id = %(practice)s AND idempotency_key = %(key)s),
            (SELECT COALESCE(SUM(amount_cents), 0) FROM payments_paymentattempt
             WHERE guarantor_id = %(g)s AND {IN_FLIGHT_SQL}),
            {rows.next_key(PaymentAttempt)},
            facts.*
        FROM ({balances.facts_sql()}) facts
        LEFT JOIN groups_group grp ON grp.practice_id = %(practice)s AND grp.is_default = %(yes)s
        LEFT JOIN payments_merchantaccount account ON account.practice_id = %(practice)s
            AND account.facility_id IS NULL AND account.provider_id IS NULL
            AND account.is_active = %(yes)s
    """  # noqa: S608 (our own column names)


def _begin_facts_params(request: PaymentRequest) -> dict[str, object]:
    guarantor = request.guarantor
    return {
        **balances.facts_params(guarantor.pk),
        "practice": guarantor.practice_id,
        "key": request.idempotency_key,
        "yes": True,
    }


def _begin(request: PaymentRequest) -> tuple[PaymentAttempt, list[PaymentPart]]:
    guarantor = request.guarantor
    with transaction.atomic():
        lock_guarantor(guarantor.pk)
        facts = rows.fetch_one(_begin_facts_sql(connection.vendor), _begin_facts_params(request))
        assert facts is not None  # one row, whatever the joins find
        default, account, key_taken, in_flight, attempt_key, *balance = rows.split_row(
            facts, Group, MerchantAccount
        )
        if key_taken:
            # The key was used before, or by a twin request that began while this one waited
            # for the lock: replay it (pay() does on IntegrityError), before any check, so a
            # retry answers what the first request got, and never counts its reserved amount
            # against itself.
            raise IntegrityError("attempt_key_unique")
        # The Group asked for, else the default one, else the defaults (no Group yet).
        group = request.group or default or resolve_group(rows.related(guarantor, "practice"))
        allowed = _check_method(request, group)
        current = balances.combine(
            balances.facts_of(balance), include_new_charges=group.include_new_charges
        ).current_balance
        check_amount(request.amount_cents, current - int(in_flight), group)
        plan = _plan_parts(guarantor, request.amount_cents, group, account)
        can = _check_gateways(request, [account for account, _ in plan])
        if request.stored_card is not None and not set(
            vault_tokens(request.stored_card)
        ).issuperset(account.pk for account, _ in plan):
            raise PaymentRefused(
                "stored_card",
                "That stored card cannot pay this balance. Please enter the card instead.",
            )
        attempt = PaymentAttempt(
            practice_id=guarantor.practice_id,
            guarantor=guarantor,
            group=group if group.pk else None,
            idempotency_key=request.idempotency_key,
            fingerprint=request.fingerprint,
            amount_cents=request.amount_cents,
            method=request.method,
            store_card=request.store_card and allowed.store_card and can.stored_cards,
            email=request.email,
            source=request.source,
            actor_label=request.actor.label,
        )
        with rows.together():  # one round trip on PostgreSQL
            rows.insert_keyed(attempt, attempt_key)
            parts = [
                PaymentPart(
                    attempt=attempt,
                    merchant_account=account,
                    merchant_reference=f"pops-{attempt.pk}-{index}",
                    amount_cents=amount,
                )
                for index, (account, amount) in enumerate(plan, start=1)
            ]
            rows.insert(*parts)
        # No audit record yet: the attempt's row is the record of the request (who, how much,
        # how, when); the outcome is audited when it is settled, under the same actor.
    return attempt, parts


def _check_method(request: PaymentRequest, group: Group) -> methods.Offer:
    """The payment's way to pay, as the Group allows it; answers what the Group allows."""
    allowed = methods.by_group(group)
    if bool(request.payment_token) == (request.stored_card is not None):
        raise PaymentRefused("payment_token", "Give a payment token or a stored card.")
    if request.wallet == WalletKind.APPLE_PAY and not allowed.apple_pay:
        if group.enable_apple_pay:
            raise PaymentRefused("payment_method", "Apple Pay is not available for split payments.")
        raise PaymentRefused("payment_method", "Apple Pay is not offered here.")
    if request.wallet == WalletKind.GOOGLE_PAY and not allowed.google_pay:
        raise PaymentRefused("payment_method", "Google Pay is not offered here.")
    if request.wallet is None and not allowed.card:
        raise PaymentRefused("payment_method", "Card payments are not offered here.")
    if request.stored_card is not None and not allowed.stored_cards:
        raise PaymentRefused("stored_card", "Stored cards are not offered here.")
    card = request.stored_card
    if card is not None and (card.guarantor_id != request.guarantor.pk or not card.is_active):
        raise PaymentRefused("stored_card", "That stored card is not available.")
    if request.store_card and (card is not None or request.wallet is not None):
        raise PaymentRefused("store_card", "Only a newly entered card can be stored.")
    return allowed


def _check_gateways(request: PaymentRequest, accounts: list[MerchantAccount]) -> Capabilities:
    """The payment's way to pay, as the gateways of the merchant accounts it reaches can take it
    (the Group's options were checked before); answers what they can all do."""
    can = methods.common(accounts)
    if request.wallet is not None and not can.supports_wallet(request.wallet):
        raise PaymentRefused(
            "payment_method", f"{request.wallet.label} is not available for this payment."
        )
    if request.stored_card is not None and not can.stored_cards:
        raise PaymentRefused(
            "stored_card", "Stored cards cannot pay this balance. Please enter the card instead."
        )
    return can


def _plan_parts(
    guarantor: Guarantor, amount: int, group: Group, default: MerchantAccount | None
) -> list[tuple[MerchantAccount, int]]:
    """Which merchant account takes how much: all of it on the practice's account (`default`),
    or, when the Group splits payments, each facility's or provider's share of the lines the
    payment will be applied to (oldest first), the rest on the practice's account."""
    if default is None:
        raise PaymentsUnavailable("the practice has no merchant account")
    if not group.split_payments:
        return [(default, amount)]
    accounts = MerchantAccount.objects.filter(practice_id=guarantor.practice_id, is_active=True)
    by_facility = {a.facility_id: a for a in accounts if a.facility_id}
    by_provider = {a.provider_id: a for a in accounts if a.provider_id}
    shares: dict[int, int] = defaultdict(int)
    chosen: dict[int, MerchantAccount] = {default.pk: default}
    left = amount
    for _, remaining, facility_id, provider_id in open_lines_oldest_first(guarantor.pk):
        if not left:
            break
        account = by_facility.get(facility_id) or by_provider.get(provider_id) or default
        chosen[account.pk] = account
        take = min(left, remaining)
        shares[account.pk] += take
        left -= take
    shares[default.pk] += left
    return [(chosen[pk], cents) for pk, cents in shares.items() if cents > 0]


# --- 2. Charge --------------------------------------------------------------------------------


# A part's answer kept for the settling transaction to write: the part, its changed fields.
Kept = list[tuple[PaymentPart, list[str]]]


def _charge(attempt: PaymentAttempt, request: PaymentRequest, parts: list[PaymentPart]) -> Kept:
    """One gateway call per part (the attempt's, in order, with their merchant accounts),
    outside any transaction; stops at the first decline. Each answer is written as it arrives
    when there are several parts (a decline voids the parts approved before it, from their
    written answers); a single part's answer is kept, and written by the settling transaction
    with the outcome (a process that dies in between leaves the attempt `processing`, which
    the reconciler settles by asking the gateway, as for a process that died during the
    call)."""
    kept: Kept | None = [] if len(parts) == 1 else None
    customer_id = f"{attempt.practice_id}-{request.guarantor.external_id}"
    tokens = vault_tokens(request.stored_card) if request.stored_card else {}
    for index, part in enumerate(parts):
        if index and parts[index - 1].status == PartStatus.DECLINED:
            # One part was declined, so the payment is: the rest are never charged.
            for rest in parts[index:]:
                _mark(rest, kept, PartStatus.DECLINED, code="not_charged")
            return kept or []
        charge = ChargeRequest(
            merchant_reference=part.merchant_reference,
            amount_cents=part.amount_cents,
            payment_token=request.payment_token,
            vault_token=_vault_token(request.stored_card, tokens, part.merchant_account_id),
            wallet=request.wallet,
            store_card=attempt.store_card,
            customer_id=customer_id if (attempt.store_card or request.stored_card) else "",
        )
        try:
            result = gateway_for(part.merchant_account).charge(charge)
        except Declined as declined:
            _mark(
                part,
                kept,
                PartStatus.DECLINED,
                code=str(declined.code),
                message=declined.message,
                transaction_id=declined.transaction_id,
                card=declined.card,
            )
        except (GatewayUnavailable, InvalidRequest, GatewayMisconfigured) as error:
            if isinstance(error, GatewayUnavailable) and error.charge_may_have_happened:
                # This part stays pending (only the gateway can tell), the rest too.
                return kept or []
            # Nothing reached the gateway, or it refused the request itself: nothing was
            # charged on this part, and the rest are never charged.
            if isinstance(error, GatewayUnavailable):
                code, message = "unavailable", UNREACHABLE
            else:
                code, message = "refused_by_gateway", str(error)
            _mark(part, None, PartStatus.DECLINED, code=code, message=message)
            _abandon(attempt, error)
            return []
        else:
            _approve(part, kept, result)
    return kept or []


def _vault_token(card: StoredCard | None, tokens: dict[int, str], account_id: int) -> str:
    if card is None:
        return ""
    # Checked in _begin; should the twin be removed since, the gateway refuses the card's own
    # token and the attempt is abandoned (nothing charged, the key not used up).
    return tokens.get(account_id) or card.vault_token


def write_answer(part: PaymentPart, expected: str, **changes: object) -> bool:
    """Write a part's answer only while it is still `expected` (pending, or approved for a void),
    so an answer written by a twin (the reconciler, say) is never overwritten. Keeps `part` in
    step with the row."""
    for name, value in changes.items():
        setattr(part, name, value)
    written = rows.update(part, changes, where="status = %s", params=[expected])
    if not written:
        part.refresh_from_db()  # (undoes the attributes set above)
    return written


def card_fields(card: CardInfo | None) -> dict[str, object]:
    if card is None:
        return {}
    return {
        "card_brand": card.brand,
        "card_last4": card.last4,
        "card_exp_month": card.exp_month,
        "card_exp_year": card.exp_year,
    }


def _mark(
    part: PaymentPart,
    kept: Kept | None,
    status: str,
    *,
    code: str = "",
    message: str = "",
    transaction_id: str = "",
    card: CardInfo | None = None,
) -> None:
    changes: dict[str, object] = {
        "status": status,
        "decline_code": code,
        "decline_message": message[:300],
        **card_fields(card),
    }
    if transaction_id:
        changes["transaction_id"] = transaction_id
    _answer(part, kept, changes)


def _approve(part: PaymentPart, kept: Kept | None, result: ChargeResult) -> None:
    _answer(
        part,
        kept,
        dict(
            status=PartStatus.APPROVED,
            transaction_id=result.transaction_id,
            approved_at=result.approved_at,
            vault_token=result.vault_token,
            **card_fields(result.card),
        ),
    )


def _answer(part: PaymentPart, kept: Kept | None, changes: dict[str, object]) -> None:
    """Write a part's answer now (`kept` None), or keep it for the settling transaction."""
    if kept is None:
        write_answer(part, PartStatus.PENDING, **changes)
        return
    for name, value in changes.items():
        setattr(part, name, value)
    kept.append((part, list(changes)))


def _abandon(
    attempt: PaymentAttempt, error: InvalidRequest | GatewayMisconfigured | GatewayUnavailable
) -> None:
    """The gateway refused the request itself, or could not be reached at all: nothing was
    charged on this part. Void what earlier parts took, forget the attempt (its key is not used
    up, so the same request can be sent again) and say why. Should a void not go through, the
    attempt is kept, declined but for that part, for finish() to leave to the reconciler (which
    voids it and declines the payment)."""
    attempt.parts.filter(status=PartStatus.PENDING).update(
        status=PartStatus.DECLINED, decline_code="not_charged"
    )
    for part in attempt.parts.select_related("merchant_account").filter(status=PartStatus.APPROVED):
        _void_part(part)
    if attempt.parts.filter(status=PartStatus.APPROVED).exists():
        logger.warning("attempt %s: a part taken before could not be voided yet", attempt.pk)
        return
    with transaction.atomic():
        audit.record(
            "payments.attempt.abandoned",
            actor=audit.Actor.system(),
            practice=attempt.practice,
            resource=("payment_attempt", str(attempt.pk)),
            outcome=AuditEvent.Outcome.ERROR,
            data={"gateway_error": type(error).__name__, "message": str(error)[:200]},
        )
        attempt.parts.all().delete()
        attempt.delete()
    if isinstance(error, GatewayMisconfigured):
        logger.error("gateway misconfigured for practice %s: %s", attempt.practice_id, error)
        raise PaymentsUnavailable(str(error))
    if isinstance(error, GatewayUnavailable):
        logger.warning("gateway unreachable for practice %s: %s", attempt.practice_id, error)
        raise PaymentsUnavailable(UNREACHABLE)
    raise PaymentRefused(
        "payment_token", "The card details have expired or were already used. Enter them again."
    )


def _void_part(part: PaymentPart) -> bool:
    try:
        gateway_for(part.merchant_account).void(part.transaction_id)
    except GatewayUnavailable:
        return False
    except InvalidRequest:
        logger.exception("could not void %s", part.merchant_reference)
        return False
    write_answer(part, PartStatus.APPROVED, status=PartStatus.VOIDED)
    return True


# --- 3. Settle --------------------------------------------------------------------------------


def finish(
    attempt: PaymentAttempt,
    parts: list[PaymentPart] | None = None,
    *,
    actor: audit.Actor | None = None,
    kept: Kept | None = None,
) -> PaymentAttempt:
    """Write the attempt's outcome from its parts' answers (`parts`: as the caller just wrote
    them, or `kept` them for this transaction to write, else read now), audited under `actor`
    (who asked for the payment; else the system, as for the reconciler). Safe to call again
    (the reconciler does): a settled attempt is left as it is."""
    if parts is None:
        parts = rows.select(PaymentPart, "attempt_id = %s", [attempt.pk], order_by="id")
    statuses = {part.status for part in parts}
    declined = bool(statuses & {PartStatus.DECLINED, PartStatus.VOIDED})
    if declined:
        # The whole payment is declined: give back what other parts took.
        for part in parts:
            if part.status == PartStatus.APPROVED:
                _void_part(part)
        statuses = {part.status for part in parts}
    if declined and statuses & {PartStatus.APPROVED, PartStatus.PENDING}:
        # A void has not gone through yet, or a part's charge may have happened: the
        # reconciler asks the gateway, voids what it took, and declines the payment.
        outcome = Status.UNKNOWN
    elif declined:
        outcome = Status.DECLINED
    elif PartStatus.PENDING in statuses:
        outcome = Status.UNKNOWN
    else:
        outcome = Status.SUCCEEDED
    actor = actor or audit.Actor.system()
    return retry_on_conflict(lambda: _settle(attempt, outcome, parts, actor, kept or []))


@cache
def _settle_lock_sql(vendor: str, draw_keys: bool) -> str:
    """The attempt, locked with its guarantor (the first lock of every money writer; the
    attempt's own lock is only ever taken with it, here), the practice's time zone and, when
    `draw_keys`, the keys of the receipt and its number drawn ahead (`rows.next_key`: on
    PostgreSQL, so that their INSERTs are held with the settling transaction's other writes).
    One statement locks both rows, so after waiting on either it answers their latest
    versions."""
    keys = "NULL, NULL"
    if draw_keys:
        keys = f"{rows.next_key(Receipt)}, {rows.next_key(ReceiptNumber)}"
    return f"""
        SELECT {rows.columns(PaymentAttempt, "attempt")}, practice.time_zone, {keys}
        FROM payments_paymentattempt attempt
        JOIN ledger_guarantor guarantor ON guarantor.id = attempt.guarantor_id
        JOIN ledger_practice practice ON practice.id = guarantor.practice_id
        WHERE attempt.id = %s
    """  # noqa: S608 (our own column names)


def _settle(
    unlocked: PaymentAttempt,
    outcome: str,
    parts: list[PaymentPart],
    actor: audit.Actor,
    kept: Kept,
) -> PaymentAttempt:
    with transaction.atomic():
        # (Keys are drawn only for an outcome that writes a receipt; those drawn for an attempt
        # found settled already are lost: a gap in the numbers, as a rolled back one leaves.)
        lock_sql = _settle_lock_sql(connection.vendor, outcome != Status.UNKNOWN)
        locked = rows.fetch_one(lock_sql + rows.row_lock(of="guarantor, attempt"), [unlocked.pk])
        assert locked is not None  # the attempt exists, and its foreign keys hold
        attempt, time_zone, receipt_key, number_key = rows.split_row(locked, PaymentAttempt)
        if attempt.is_settled or attempt.status == outcome:
            return attempt
        _carry_over(unlocked, attempt)
        guarantor: Guarantor = rows.related(attempt, "guarantor")
        practice_id = attempt.practice_id
        if outcome == Status.UNKNOWN:
            attempt.status = outcome
            _write_kept(kept)
            rows.update(attempt, ["status"])
            audit.record(
                "payments.attempt.unknown",
                actor=actor,
                practice=practice_id,
                resource=("payment_attempt", str(attempt.pk)),
                guarantor_id=guarantor.external_id,
            )
            return attempt
        card = next((p for p in parts if p.card_last4), None)
        receipt = Receipt(
            practice_id=practice_id,
            guarantor=guarantor,
            type=Receipt.Type.PAYMENT,
            method=PaymentAttempt.Method(attempt.method).label,
            source="POPS",
            made_in_pops=True,
            card_brand=card.card_brand if card else "",
            card_last4=card.card_last4 if card else "",
        )
        lines = None
        if outcome == Status.SUCCEEDED:
            group = _group_of(attempt)
            approved_at = max(p.approved_at or clock.now() for p in parts)
            receipt.date = clock.local_date(time_zone, approved_at)
            receipt.amount_cents = attempt.amount_cents
            receipt.status = Receipt.Status.PAID
            receipt.reference_batch = pops_batch(practice_id, receipt.date)
            if group.auto_post:  # (read before the writes below are held)
                lines = open_lines_oldest_first(guarantor.pk)
            _store_card(attempt, parts)
        else:
            declines = [p for p in parts if p.decline_code not in ("", "not_charged")]
            first = declines[0] if declines else parts[0]
            attempt.decline_code = first.decline_code or "declined"
            attempt.decline_message = first.decline_message or "The payment was declined."
            # Dated the day the patient tried, even when the reconciler settles it later.
            receipt.date = clock.local_date(time_zone, attempt.created_at)
            receipt.amount_cents = 0
            receipt.status = Receipt.Status.UNSUCCESSFUL
        with rows.together():  # the writes: one round trip on PostgreSQL
            _write_kept(kept)
            receipt.number = ReceiptNumber.next(number_key)
            rows.insert_keyed(receipt, receipt_key)
            if outcome == Status.SUCCEEDED:
                post_payment(receipt, auto_post=group.auto_post, lines=lines)
                if attempt.email and group.email_receipt:
                    # Due when this transaction commits (the worker checks again when it sends).
                    queue_receipt_email(attempt.pk)
            attempt.status, attempt.receipt, attempt.settled_at = outcome, receipt, clock.now()
            rows.update(
                attempt, ["status", "receipt", "settled_at", "decline_code", "decline_message"]
            )
            audit.record(
                f"payments.payment.{'succeeded' if outcome == Status.SUCCEEDED else 'declined'}",
                actor=actor,
                practice=practice_id,
                resource=("receipt", receipt.number),
                guarantor_id=guarantor.external_id,
                data={
                    "amount_cents": receipt.amount_cents,
                    "attempt": attempt.pk,
                    "transactions": [p.transaction_id for p in parts if p.transaction_id],
                    "decline_code": attempt.decline_code,
                },
            )
        return attempt


def _write_kept(kept: Kept) -> None:
    """Write the parts' answers kept for this transaction, held with its other writes, and
    only while the part is still pending: an answer the reconciler wrote meanwhile (it takes
    up an attempt in progress only once it is long abandoned) is never overwritten, as with
    `write_answer`; the outcome comes from the same gateway transaction either way."""
    for part, names in kept:
        rows.update(part, names, where="status = %s", params=[PartStatus.PENDING], answer=False)


def _carry_over(loaded: PaymentAttempt, attempt: PaymentAttempt) -> None:
    """Keep on `attempt` (its row read again) what was already loaded of it: its guarantor
    and Group (neither changes while the attempt is settled; a Group option changed since the
    payment began applies to the next one)."""
    for relation in (PaymentAttempt.guarantor, PaymentAttempt.group):
        if relation.is_cached(loaded):
            relation.field.set_cached_value(attempt, relation.field.get_cached_value(loaded))


def _group_of(attempt: PaymentAttempt) -> Group:
    """The Group the attempt was made through (else its practice's default), kept on it."""
    if attempt.group_id is None:
        return resolve_group(rows.related(rows.related(attempt, "guarantor"), "practice"))
    group: Group = rows.related(attempt, "group")
    return group


def _store_card(attempt: PaymentAttempt, parts: list[PaymentPart]) -> None:
    if not attempt.store_card:
        return
    for part in parts:
        if not part.vault_token:
            continue
        month, year = part.card_exp_month, part.card_exp_year
        if month is None or year is None or not _storable(part):
            # The charge stands; only the card is not kept (S-4 allows nothing else in the row).
            logger.error("gateway answered unstorable card details for %s", part.merchant_reference)
            continue
        StoredCard.objects.get_or_create(
            merchant_account_id=part.merchant_account_id,
            vault_token=part.vault_token,
            defaults={
                "practice_id": attempt.practice_id,
                "guarantor_id": attempt.guarantor_id,
                "brand": part.card_brand,
                "last4": part.card_last4,
                "exp_month": month,
                "exp_year": year,
            },
        )


_LAST4 = re.compile(r"\A[0-9]{4}\Z")
_BRAND = re.compile(r"\A[^0-9]{1,20}\Z")


def _storable(part: PaymentPart) -> bool:
    """Card details a StoredCard row can hold (its database checks: S-4)."""
    return bool(
        _LAST4.match(part.card_last4)
        and _BRAND.match(part.card_brand)
        and part.card_exp_month
        and 1 <= part.card_exp_month <= 12
        and part.card_exp_year
    )


def approved_on(attempt: PaymentAttempt) -> dt.date | None:
    """The practice-local date the gateway approved the attempt, if it did."""
    times = [p.approved_at for p in attempt.parts.all() if p.approved_at]
    return clock.local_date(attempt.guarantor.practice.time_zone, max(times)) if times else None
