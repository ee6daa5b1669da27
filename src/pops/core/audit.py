"""One call audits anything: `record("ledger.import.completed", practice=..., actor=...)`."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from pops.core.models import AuditEvent, User

SECRET_KEYS = ("password", "token", "secret", "key", "code", "card", "cvv", "pan")


@dataclass(frozen=True)
class Actor:
    """Who acted: a staff user, an API key, a command line, the system or a portal session."""

    type: str
    label: str
    user: User | None = None

    @classmethod
    def command(cls, name: str) -> "Actor":
        return cls(AuditEvent.ActorType.COMMAND, f"pops {name}")

    @classmethod
    def staff(cls, user: User) -> "Actor":
        return cls(AuditEvent.ActorType.STAFF, user.username, user)

    @classmethod
    def system(cls, user: User | None = None) -> "Actor":
        return cls(AuditEvent.ActorType.SYSTEM, "POPS", user)


def _masked(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if any(word in key.lower() for word in SECRET_KEYS):
            out[key] = "***"
        elif isinstance(value, Mapping):
            out[key] = _masked(value)
        else:
            out[key] = value
    return out


def record(
    action: str,
    *,
    actor: Actor,
    practice: Any = None,
    resource: tuple[str, str] | None = None,
    guarantor_id: str = "",
    outcome: str = AuditEvent.Outcome.SUCCESS,
    request: HttpRequest | None = None,
    on_behalf_of: str = "",
    auth_method: str = "",
    data: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Write one audit event in the caller's transaction; secret-looking values are masked."""
    event = AuditEvent(
        action=action,
        practice=practice,
        actor_type=actor.type,
        actor_user=actor.user,
        actor_label=actor.label[:150],
        on_behalf_of=on_behalf_of,
        auth_method=auth_method,
        resource_type=resource[0] if resource else "",
        resource_id=resource[1] if resource else "",
        guarantor_id=guarantor_id,
        outcome=outcome,
        data=_masked(data or {}),
    )
    if request is not None:
        event.ip = request.META.get("REMOTE_ADDR") or None
        event.user_agent = request.META.get("HTTP_USER_AGENT", "")[:300]
        event.request_id = request.META.get("HTTP_X_REQUEST_ID", "")[:64]
    event.save()
    return event
