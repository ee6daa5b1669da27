"""Creating and checking API keys."""

import secrets

from django.db import transaction

from pops.api.models import ApiKey, digest
from pops.core import audit
from pops.ledger.models import Practice

KEY_PREFIX = "pops_"


@transaction.atomic
def create_key(practice: Practice, name: str, *, actor: audit.Actor, key: str | None = None) -> str:
    """Make a key and return it; this is the only time it can be read. (`key` is for the demo,
    which publishes a fixed one.)"""
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        practice=practice, name=name, prefix=key[:12], key_digest=digest(key)
    )
    audit.record(
        "api.key.created",
        actor=actor,
        practice=practice,
        resource=("api_key", str(api_key.pk)),
        data={"name": name, "prefix": api_key.prefix},
    )
    return key


def find_key(key: str) -> ApiKey | None:
    """The live key matching `key`, with its practice."""
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    return (
        ApiKey.objects.select_related("practice")
        .filter(key_digest=digest(key), revoked_at__isnull=True)
        .first()
    )
