"""One call audits anything: `record("ledger.import.completed", practice=..., actor=...)`."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from pops.core import rows
from pops.core.models import AuditEvent, User

# Values never written to the audit log, by the words of their key ("api_key", "card_number",
# "one_time_code"): a key is masked when one of its snake_case words is secret, or when it is
# exactly one of the key names below. "decline_code", "idempotency_key" and "card_last4" are not.
SECRET_WORDS = frozenset(
    {"password", "passcode", "token", "secret", "cvv", "cvc", "pan", "otp", "credentials"}
)
SECRET_KEYS = frozenset(
    {"key", "api_key", "code", "one_time_code", "verification_code", "card", "card_number"}
)


def _is_secret(key: str) -> bool:
    name = key.lower()
    return name in SECRET_KEYS or not SECRET_WORDS.isdisjoint(name.split("_"))


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
        if _is_secret(key):
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
    practice: Any = None,  # a Practice, or its id
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
        practice_id=getattr(practice, "pk", practice),
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
    rows.insert(event)  # (one prepared INSERT: money services audit every step)
    return event
