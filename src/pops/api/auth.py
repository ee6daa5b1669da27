from django.http import HttpRequest
from ninja.security import HttpBearer

from pops.api.keys import find_key
from pops.api.models import ApiKey
from pops.core.audit import Actor
from pops.core.models import AuditEvent
from pops.ledger.models import Practice


class PracticeKey(HttpBearer):
    """`Authorization: Bearer KEY`; the key decides the practice every query is scoped to."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return find_key(token)


def key_of(request: HttpRequest) -> ApiKey:
    key = request.auth  # type: ignore[attr-defined]
    assert isinstance(key, ApiKey)
    return key


def practice_of(request: HttpRequest) -> Practice:
    return key_of(request).practice


def actor_of(request: HttpRequest) -> Actor:
    return Actor(AuditEvent.ActorType.API, key_of(request).name)
