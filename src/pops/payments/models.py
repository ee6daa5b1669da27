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
