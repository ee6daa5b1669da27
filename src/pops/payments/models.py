"""Merchant accounts: where a practice's card payments go."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from pops.ledger.models import Facility, Practice, Provider

F = TypeVar("F", bound=Callable[..., Any])


def _not_for_templates(method: F) -> F:
    """Templates never call it (Django skips callables marked `alters_data`)."""
    method.alters_data = True  # type: ignore[attr-defined]
    return method


class MerchantAccount(models.Model):
    """A practice's account at a card gateway, or a facility's or provider's own account for
    split payments (one gateway transaction per merchant account).

    `config` is public: it may be shown to staff and used by payment pages. The credentials are
    secret and write-only: `set_credentials()` stores them and only `registry.gateway_for()`
    reads them back; no form, API, repr or log shows them.
    """

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    facility = models.ForeignKey(
        Facility, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    name = models.CharField(max_length=100)
    gateway = models.CharField(max_length=32)
    config = models.JSONField(default=dict, blank=True)
    secret = models.TextField(blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(facility__isnull=True) | Q(provider__isnull=True),
                name="merchant_account_one_scope",
            ),
            models.UniqueConstraint(
                fields=["practice"],
                condition=Q(facility__isnull=True, provider__isnull=True, is_active=True),
                name="merchant_account_one_practice_default",
            ),
            models.UniqueConstraint(
                fields=["practice", "facility"],
                condition=Q(facility__isnull=False, is_active=True),
                name="merchant_account_one_per_facility",
            ),
            models.UniqueConstraint(
                fields=["practice", "provider"],
                condition=Q(provider__isnull=False, is_active=True),
                name="merchant_account_one_per_provider",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.gateway})"

    def clean(self) -> None:
        for scope in (self.facility, self.provider):
            if scope is not None and scope.practice_id != self.practice_id:
                raise ValidationError(
                    "A merchant account's facility or provider must belong to its practice."
                )

    @property
    def has_credentials(self) -> bool:
        return bool(self.secret)

    @_not_for_templates
    def set_credentials(self, credentials: Mapping[str, str]) -> None:
        """Replace the secret credentials (saved with the account's next `save()`)."""
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in credentials.items()):
            raise TypeError("credentials map names to strings")
        self.secret = json.dumps(dict(credentials))

    @_not_for_templates
    def credentials(self) -> dict[str, str]:
        """The secret credentials. Only the gateway registry calls this."""
        return json.loads(self.secret) if self.secret else {}


# The statuses of an attempt whose outcome is not written yet: its money is "in flight".
IN_FLIGHT_STATUSES = ("processing", "unknown")
IN_FLIGHT = Q(status__in=IN_FLIGHT_STATUSES)
# The same, as SQL over the attempt table with the statuses as literals (our own constants).
IN_FLIGHT_SQL = "status IN (" + ", ".join(f"'{status}'" for status in IN_FLIGHT_STATUSES) + ")"


class PaymentAttempt(models.Model):
    """One payment a guarantor asked for, from the moment it is accepted to its outcome.

    `idempotency_key` is server-issued (or the API client's `Idempotency-Key`) and unique:
    the same key can never charge twice. The status moves
    `processing -> succeeded | declined | unknown`, and `unknown -> succeeded | declined` only
    through the reconciler, which asks the gateway.
    """

    class Status(models.TextChoices):
        PROCESSING = "processing"
        SUCCEEDED = "succeeded"
        DECLINED = "declined"
        UNKNOWN = "unknown"

    class Method(models.TextChoices):
        CARD = "card", "Credit Card"
        STORED_CARD = "stored_card", "Stored card"
        APPLE_PAY = "apple_pay", "Apple Pay"
        GOOGLE_PAY = "google_pay", "Google Pay"

    # No index of its own: the key's unique index (practice, idempotency_key) serves lookups by
    # practice, and a second index on practice alone lets PostgreSQL pick it for the key lookup
    # of every payment (scanning all the practice's attempts) when its statistics are stale.
    practice = models.ForeignKey(
        Practice, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    guarantor = models.ForeignKey(
        "ledger.Guarantor", on_delete=models.PROTECT, related_name="payment_attempts"
    )
    group = models.ForeignKey(
        "groups.Group", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    idempotency_key = models.CharField(max_length=255)
    # SHA-256 of the request as the client sent it, so a reused key with another body is refused.
    fingerprint = models.CharField(max_length=64)
    amount_cents = models.BigIntegerField()
    method = models.CharField(max_length=12, choices=Method.choices)
    store_card = models.BooleanField(default=False)
    email = models.CharField(max_length=254, blank=True)
    source = models.CharField(max_length=20, default="api")
    actor_label = models.CharField(max_length=150, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PROCESSING)
    decline_code = models.CharField(max_length=40, blank=True)
    decline_message = models.CharField(max_length=300, blank=True)
    receipt = models.OneToOneField(
        "ledger.Receipt", null=True, blank=True, on_delete=models.PROTECT, related_name="attempt"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "idempotency_key"], name="attempt_key_unique"
            ),
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="attempt_amount_gt_0"),
        ]
        # Only the attempts in flight (a handful at any time, however many have settled): the
        # money in flight of a guarantor, read under its lock by every payment, and the
        # reconciler's attempts by age. A query meets them by naming the statuses as literals
        # (IN_FLIGHT_SQL), so even a generic plan of a prepared statement can use them.
        indexes = [
            models.Index(fields=["guarantor"], condition=IN_FLIGHT, name="attempt_in_flight"),
            models.Index(fields=["created_at"], condition=IN_FLIGHT, name="attempt_in_flight_age"),
        ]

    def __str__(self) -> str:
        return f"Payment attempt {self.pk} ({self.status})"

    @property
    def is_settled(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.DECLINED)


class PaymentPart(models.Model):
    """One gateway transaction of an attempt: a single part, or one per merchant account when
    the Group splits payments. `merchant_reference` is what the gateway knows it by. Its status
    is written as soon as the gateway answers, so a crash leaves a trail the reconciler follows."""

    class Status(models.TextChoices):
        PENDING = "pending"  # not charged yet, or the answer never came (ask the gateway)
        APPROVED = "approved"
        DECLINED = "declined"
        VOIDED = "voided"

    attempt = models.ForeignKey(PaymentAttempt, on_delete=models.PROTECT, related_name="parts")
    merchant_account = models.ForeignKey(
        MerchantAccount, on_delete=models.PROTECT, related_name="+"
    )
    merchant_reference = models.CharField(max_length=100, unique=True)
    amount_cents = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    transaction_id = models.CharField(max_length=100, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    decline_code = models.CharField(max_length=40, blank=True)
    decline_message = models.CharField(max_length=300, blank=True)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    vault_token = models.CharField(max_length=100, blank=True)
    # Given back by settled refunds: the sum of its refunded `RefundPart`s, kept as a running
    # figure so the database itself refuses refunds above the amount (the check below).
    refunded_cents = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="part_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(refunded_cents__gte=0)
                & Q(refunded_cents__lte=models.F("amount_cents")),
                name="part_refunds_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return self.transaction_id or self.merchant_reference


class VoidRequest(models.Model):
    """A void of a POPS payment receipt, recorded before the gateway is asked to void it.

    Written under the guarantor's row lock once the rules allow the void (the receipt's own
    practice-local day, no refund made or under way), it is the mark every later step reads:

    - while it exists and the receipt is still Paid, the void is under way: a refund of the
      payment is refused, and a retry (or `complete_interrupted_voids`) finishes it, even on a
      later day, because the card processor may already have voided the money;
    - the receipt marked Voided is the end of it; the row stays as the record of who asked, when
      and why.

    It is deleted only when the gateway refused the void before voiding anything (then nothing
    happened, and the payment may be refunded instead).
    """

    receipt = models.OneToOneField(
        "ledger.Receipt", on_delete=models.PROTECT, related_name="void_request"
    )
    reason = models.CharField(max_length=300)
    actor_type = models.CharField(max_length=10)
    actor_label = models.CharField(max_length=150)
    requested_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="void_request_has_reason"),
        ]

    def __str__(self) -> str:
        return f"Void of receipt {self.receipt_id}"


class RefundAttempt(models.Model):
    """One refund asked for, from the moment it is accepted until its Patient Refund receipt.

    The refund's counterpart of `PaymentAttempt`: `idempotency_key` is unique per practice, so
    the same key can never refund twice; the same key for another payment or amount is a reuse
    of the key, refused. Its parts say which gateway transaction of the payment gives back how
    much. The status moves `processing -> succeeded`, or through `interrupted` (and back to
    `processing` on a retry) while the gateway has not confirmed every part. An attempt the
    gateway refused before anything could have been refunded is deleted: nothing happened, and
    the key is free again. Until it succeeds its amount is reserved, so other refunds of the
    payment cannot take it.
    """

    class Status(models.TextChoices):
        PROCESSING = "processing"
        INTERRUPTED = "interrupted"
        SUCCEEDED = "succeeded"

    UNDER_WAY = (Status.PROCESSING, Status.INTERRUPTED)

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    payment = models.ForeignKey(
        "ledger.Receipt", on_delete=models.PROTECT, related_name="refund_attempts"
    )
    idempotency_key = models.CharField(max_length=255)
    amount_cents = models.BigIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PROCESSING)
    # The Patient Refund receipt, once the refund is settled.
    receipt = models.OneToOneField(
        "ledger.Receipt",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="refund_attempt",
    )
    actor_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When a call last worked on it: one still `processing` long after was abandoned.
    touched_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "idempotency_key"], name="refund_attempt_key_unique"
            ),
            models.CheckConstraint(
                condition=Q(amount_cents__gt=0), name="refund_attempt_amount_gt_0"
            ),
            models.CheckConstraint(
                condition=Q(status="succeeded", receipt__isnull=False, settled_at__isnull=False)
                | (~Q(status="succeeded") & Q(receipt__isnull=True, settled_at__isnull=True)),
                name="refund_attempt_receipt_iff_succeeded",
            ),
        ]
        indexes = [models.Index(fields=["payment", "status"]), models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"Refund attempt {self.pk} ({self.status})"


class RefundPart(models.Model):
    """One gateway refund of a refund attempt: `amount_cents` of payment part `payment_part`,
    asked for under `merchant_reference` (the gateway makes one refund per reference, so asking
    again never refunds twice). `transaction_id` is the gateway's refund transaction number, the
    Transaction Number its Patient Refund receipt shows; it is written as soon as the gateway
    answers. `uncertain` says a call may have refunded it without answering."""

    class Status(models.TextChoices):
        PENDING = "pending"  # not asked yet, or the answer never came (ask again)
        REFUNDED = "refunded"

    refund = models.ForeignKey(RefundAttempt, on_delete=models.PROTECT, related_name="parts")
    payment_part = models.ForeignKey(PaymentPart, on_delete=models.PROTECT, related_name="refunds")
    merchant_reference = models.CharField(max_length=100, unique=True)
    amount_cents = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    transaction_id = models.CharField(max_length=100, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    uncertain = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="refund_part_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(status="refunded") & ~Q(transaction_id="")
                | Q(status="pending", transaction_id=""),
                name="refund_part_transaction_iff_refunded",
            ),
        ]

    def __str__(self) -> str:
        return self.transaction_id or self.merchant_reference


class StoredCard(models.Model):
    """A card kept in the gateway's vault for a guarantor: the vault token, brand, last 4 and
    expiry, and nothing more can be stored. Not editable: a changed card is a new card.

    The database holds it to that (S-4), on SQLite as on PostgreSQL (where a column's length is
    not enforced by SQLite itself): the last 4 are exactly four digits, the brand is a short name
    with no digit in it, so that no column but the gateway's opaque token could take more of a
    card number, and the expiry month is a month."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    guarantor = models.ForeignKey(
        "ledger.Guarantor", on_delete=models.PROTECT, related_name="stored_cards"
    )
    merchant_account = models.ForeignKey(
        MerchantAccount, on_delete=models.PROTECT, related_name="+"
    )
    vault_token = models.CharField(max_length=100)
    brand = models.CharField(max_length=20)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant_account", "vault_token"], name="stored_card_unique"
            ),
            # \A and \Z anchor the whole value alike in PostgreSQL's regular expressions and in
            # Python's (which SQLite's REGEXP calls); "$" would let a trailing newline through.
            models.CheckConstraint(
                condition=Q(last4__regex=r"\A[0-9]{4}\Z"), name="stored_card_last4_four_digits"
            ),
            models.CheckConstraint(
                condition=Q(brand__regex=r"\A[^0-9]{1,20}\Z"), name="stored_card_brand_short"
            ),
            models.CheckConstraint(
                condition=Q(exp_month__gte=1, exp_month__lte=12), name="stored_card_exp_month"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand} ending {self.last4}"
