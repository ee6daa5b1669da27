"""Finding a practice's Group, and preparing a practice for POPS."""

from django.db import transaction
from django.utils.text import slugify

from pops.core import audit, clock, rows
from pops.core.models import User
from pops.groups.models import Group
from pops.ledger.models import Practice


class GroupNotFound(LookupError):
    pass


def resolve_group(practice: Practice, slug: str | None = None) -> Group:
    """The Group named by `slug`, else the practice's default Group, else the defaults.

    The defaults are an unsaved `Group()`, so balances work straight after an import, before
    the practice is prepared or any Group exists.
    """
    if slug:
        group = Group.objects.filter(practice=practice, slug=slug).first()
        if group is None:
            raise GroupNotFound(slug)
        return group
    return default_group(practice.pk) or Group(
        practice=practice, name=practice.name, slug="default"
    )


def default_group(practice_id: int) -> Group | None:
    """The practice's default Group, if it has one."""
    return rows.get(Group, "practice_id = %s AND is_default = %s", [practice_id, True])


def system_user(practice: Practice) -> User:
    """The practice's "POPS" user: the actor of automatic work, which can never sign in."""
    user, created = User.objects.get_or_create(
        username=f"pops-system-{practice.pk}",
        defaults={"practice": practice, "display_name": "POPS", "is_system": True},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


@transaction.atomic
def prepare_practice(practice: Practice, *, actor: audit.Actor) -> Group:
    """Ready a practice for POPS: its system user "POPS", a default Group and (when it has no
    merchant account yet) a Sandbox merchant account, so it can take payments at once.
    Idempotent."""
    from pops.payments.merchant_accounts import ensure_sandbox_account

    practice = Practice.objects.select_for_update().get(pk=practice.pk)
    system_user(practice)
    ensure_sandbox_account(practice, actor=actor)
    group = Group.objects.filter(practice=practice, is_default=True).first()
    if group is None:
        group = Group.objects.create(
            practice=practice,
            slug=slugify(practice.name)[:50] or "default",
            name=practice.name,
            is_default=True,
        )
    if practice.prepared_at is None:
        practice.prepared_at = clock.now()
        practice.save(update_fields=["prepared_at"])
        audit.record("practice.prepared", actor=actor, practice=practice)
    return group
