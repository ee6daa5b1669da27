from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person who works in the back office, or a practice's system user.

    `practice` is empty for vendor support users. A system user (`is_system`) such as "POPS"
    is the actor of automatic work and can never sign in.
    """

    practice = models.ForeignKey(
        "ledger.Practice", null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    display_name = models.CharField(max_length=150, blank=True)
    is_system = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.display_name or self.username


class AppendOnlyQuerySet(models.QuerySet):
    """Rows of append-only tables are never updated or deleted (a trigger also refuses it)."""

    def update(self, **kwargs: object) -> int:
        raise TypeError(f"{self.model.__name__} rows are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError(f"{self.model.__name__} rows are append-only")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise TypeError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise TypeError(f"{type(self).__name__} rows are append-only")


class AuditEvent(AppendOnlyModel):
    """One audited action: a money movement, a staff action, a view of patient financial data.

    Written in the same transaction as what it records. Never holds card data, codes, tokens or
    secrets (see `pops.core.audit.record`, which masks them).
    """

    class ActorType(models.TextChoices):
        STAFF = "staff"
        PORTAL = "portal"
        SYSTEM = "system"
        API = "api"
        COMMAND = "command"

    class Outcome(models.TextChoices):
        SUCCESS = "success"
        DENIED = "denied"
        ERROR = "error"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # No index of its own: the (practice, action, at) index below serves lookups by practice.
    practice = models.ForeignKey(
        "ledger.Practice", null=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    action = models.CharField(max_length=100)
    actor_type = models.CharField(max_length=10, choices=ActorType.choices)
    actor_user = models.ForeignKey(User, null=True, on_delete=models.PROTECT, related_name="+")
    actor_label = models.CharField(max_length=150, blank=True)
    on_behalf_of = models.CharField(max_length=64, blank=True)
    auth_method = models.CharField(max_length=20, blank=True)
    resource_type = models.CharField(max_length=50, blank=True)
    resource_id = models.CharField(max_length=64, blank=True)
    guarantor_id = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    ip = models.GenericIPAddressField(null=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["practice", "action", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action} by {self.actor_label}"
