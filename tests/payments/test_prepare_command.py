"""`pops prepare --practice ID`: readies an imported practice for POPS (its system user "POPS",
a default Group and a Sandbox merchant account) and says so; run again it changes nothing; an
unknown practice is a clear error that writes nothing."""

import io

import pytest
from django.core.management import CommandError, call_command

from pops.core.models import AuditEvent, User
from pops.groups.models import Group
from pops.ledger.models import Practice
from pops.payments.models import MerchantAccount
from tests.conftest import run_import
from tests.ledger import row_counts, snapshot
from tests.test_import_documents import small_document

pytestmark = pytest.mark.django_db


@pytest.fixture
def practice() -> Practice:
    return run_import(small_document("p1")).practice  # "Practice One", not prepared yet


def prepare(practice_id: str) -> str:
    out = io.StringIO()
    call_command("prepare", "--practice", practice_id, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_it_creates_the_system_user_a_default_group_and_a_sandbox_account(practice):
    assert not User.objects.exists()
    assert not Group.objects.exists()
    assert not MerchantAccount.objects.exists()

    output = prepare("p1")

    [user] = User.objects.all()
    assert (user.practice_id, user.display_name, user.is_system) == (practice.pk, "POPS", True)
    assert not user.has_usable_password()
    [group] = Group.objects.all()
    assert (group.practice_id, group.is_default, group.name, group.slug) == (
        practice.pk,
        True,
        "Practice One",
        "practice-one",
    )
    [account] = MerchantAccount.objects.all()
    assert (account.practice_id, account.gateway, account.name, account.is_active) == (
        practice.pk,
        "sandbox",
        "Sandbox",
        True,
    )
    assert (account.facility_id, account.provider_id) == (None, None)
    assert Practice.objects.get(pk=practice.pk).prepared_at is not None
    assert output.splitlines() == [
        "Prepared practice p1 for POPS: 1 system user, 1 Group, 1 merchant account.",
        "Default Group: practice-one; merchant accounts: Sandbox (sandbox)",
    ]


def test_it_audits_the_account_and_the_preparation_as_the_command(practice):
    prepare("p1")

    by_prepare = AuditEvent.objects.exclude(action="ledger.import.completed").order_by("pk")
    assert list(by_prepare.values_list("action", "actor_label", "practice_id")) == [
        ("payments.merchant_account.created", "pops prepare", practice.pk),
        ("practice.prepared", "pops prepare", practice.pk),
    ]


def test_run_again_it_changes_nothing(practice):
    first = prepare("p1")
    rows, counts = snapshot(), row_counts()

    second = prepare("p1")

    assert row_counts() == counts  # the audit log too
    assert snapshot() == rows
    assert second.splitlines() == [
        "Practice p1 was prepared already; nothing changed.",
        first.splitlines()[1],
    ]


def test_run_again_after_its_account_was_switched_off_it_says_what_it_made(practice):
    prepare("p1")
    MerchantAccount.objects.update(is_active=False)

    output = prepare("p1")

    assert MerchantAccount.objects.filter(is_active=True).count() == 1
    assert output.splitlines() == [
        "Prepared practice p1 for POPS: 1 merchant account.",
        "Default Group: practice-one; merchant accounts: Sandbox (sandbox)",
    ]


def test_an_unknown_practice_is_a_clear_error_and_nothing_is_written(practice):
    before, counts = snapshot(), row_counts()

    with pytest.raises(CommandError, match=r"^No practice with id 'p2'\. Import it first\.$"):
        prepare("p2")

    assert row_counts() == counts
    assert snapshot() == before
