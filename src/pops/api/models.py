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
