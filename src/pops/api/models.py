import hashlib

from django.db import models

from pops.ledger.models import Practice


def digest(key: str) -> str:
    """API keys carry 256 bits of randomness, so a plain SHA-256 is a safe way to store them."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(models.Model):
    """A practice's key for the JSON API. Only its digest is stored; the key is shown once."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=12, help_text="The key's first characters, to tell keys apart"
    )
    key_digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


_NO_DIGITS = str.maketrans("0123456789", "ghijklmnop")


class IdempotentRequest(models.Model):
    """One API request made under an `Idempotency-Key` (`pops.api.idempotency`), claimed before
    any work is done.

    The unique constraint on (practice, operation, key) is the claim: of two requests with the
    same key exactly one inserts the row, the other finds it. The `fingerprint` (SHA-256 of the
    request as sent) tells a replay of the same request from a reuse of the key for another.
    `state` is in_progress while the first request works, done once its answer
    (`response_status`, `response_body`) is kept for replays. A row left in_progress longer than
    the staleness limit was abandoned by a process that died; the next request takes it over.

    This is the API's layer only. The money behind a request is made exactly once by the
    services themselves (a payment's or a refund's attempt carries its own unique key), so a
    request the API did not keep an answer for can always be retried safely.
    """

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress"
        DONE = "done"

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    operation = models.CharField(max_length=60)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=12, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "operation", "key"], name="idempotent_request_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.key[:12]}… ({self.state})"

    @staticmethod
    def digest(text: str) -> str:
        """SHA-256 of `text` in 64 letters: hex with its digits written as the letters g-p, so
        no fingerprint or reference made from it reads as a run of digits (the card-number
        scans of S-3 look for those)."""
        return hashlib.sha256(text.encode()).hexdigest().translate(_NO_DIGITS)
