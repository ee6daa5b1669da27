"""The Sandbox gateway's own tables: what an outside gateway would keep on its side.

No column can hold a card number or a CVV: a card is known by brand, last 4, expiry and the
scripted outcome of the test card it came from. Rows are scoped by the gateway's `merchant_id`
(from the merchant account's credentials), never by POPS models.
"""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from pops.payments.gateways.sandbox.cards import Outcome

ID_LENGTH = 40
MERCHANT_ID_LENGTH = 64
REFERENCE_LENGTH = 100


class Wallet(models.TextChoices):
    APPLE_PAY = "apple_pay", "Apple Pay"
    GOOGLE_PAY = "google_pay", "Google Pay"


class CardFields(models.Model):
    """All the Sandbox keeps of a card."""

    brand = models.CharField(max_length=20)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=24, choices=[(o.value, o.value) for o in Outcome])

    class Meta:
        abstract = True


class Token(CardFields):
    """A one-time token from the hosted fields (`wallet` empty) or a wallet sheet.

    It expires, and each merchant may charge it once (a transaction's token is unique per
    merchant), so one card entry can pay a split payment across several merchant accounts but
    never twice to the same one.
    """

    token = models.CharField(max_length=ID_LENGTH, unique=True)
    wallet = models.CharField(max_length=12, choices=Wallet.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.wallet or 'card'} token {self.brand} {self.last4}"


class VaultCard(CardFields):
    """A card stored in the Sandbox's customer vault for one merchant's customer."""

    vault_token = models.CharField(max_length=ID_LENGTH, unique=True)
    merchant_id = models.CharField(max_length=MERCHANT_ID_LENGTH)
    customer_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.brand} {self.last4} of {self.customer_id}"


class Transaction(CardFields):
    """One charge, approved or declined, under the merchant's reference (unique per merchant)."""

    class Status(models.TextChoices):
        APPROVED = "approved"
        DECLINED = "declined"
        VOIDED = "voided"

    transaction_id = models.CharField(max_length=ID_LENGTH, unique=True)
    merchant_id = models.CharField(max_length=MERCHANT_ID_LENGTH)
    # The one-time token charged (none for a stored card). No index of its own: the unique
    # (token, merchant_id) index serves lookups by token.
    token = models.ForeignKey(
        Token,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="transactions",
        db_index=False,
    )
    merchant_reference = models.CharField(max_length=REFERENCE_LENGTH)
    amount_cents = models.PositiveBigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices)
    refunded_cents = models.PositiveBigIntegerField(default=0)
    decline_code = models.CharField(max_length=24, blank=True)
    wallet = models.CharField(max_length=12, choices=Wallet.choices, blank=True)
    # The wallet's opaque payload exactly as the merchant sent it (S-5 asserts byte equality).
    wallet_payload = models.TextField(blank=True)
    customer_id = models.CharField(max_length=64, blank=True)
    vault_token = models.CharField(max_length=ID_LENGTH, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant_id", "merchant_reference"], name="sandbox_reference_once"
            ),
            # A token pays each merchant once (NULLs, stored cards, never conflict).
            models.UniqueConstraint(fields=["token", "merchant_id"], name="sandbox_token_once"),
            models.CheckConstraint(
                condition=Q(refunded_cents__lte=F("amount_cents")),
                name="sandbox_refunds_within_captured",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.transaction_id} {self.status} {self.amount_cents}"


class Refund(models.Model):
    refund_id = models.CharField(max_length=ID_LENGTH, unique=True)
    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="refunds")
    merchant_reference = models.CharField(max_length=REFERENCE_LENGTH)
    amount_cents = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["transaction", "merchant_reference"], name="sandbox_refund_reference_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.refund_id} {self.amount_cents}"
