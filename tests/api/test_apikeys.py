"""`pops apikey create --practice ID`: a key shown once, stored as its SHA-256 digest."""

import hashlib
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from pops.api.models import ApiKey
from pops.core.models import AuditEvent
from tests.conftest import ApiClient, run_import

pytestmark = pytest.mark.django_db

BALANCES = "/api/v1/guarantors/2010/balances"


@pytest.fixture
def northside():
    return run_import(
        {
            "practice": {"id": "northside", "name": "Northside"},
            "guarantors": [{"id": "2010", "first_name": "Pat", "last_name": "Lee"}],
        }
    ).practice


def create(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("apikey", "create", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_new_key_is_printed_once_and_only_its_digest_is_stored(northside):
    out, err = create("--practice", "northside", "--name", "PM sync")

    key = out.strip()
    assert out == key + "\n"  # the key alone on stdout, for scripts
    assert key.startswith("pops_")
    assert len(key) > 40
    assert "cannot show it again" in err
    stored = ApiKey.objects.get()
    assert (stored.practice, stored.name, stored.prefix) == (northside, "PM sync", key[:12])
    assert stored.key_digest == hashlib.sha256(key.encode()).hexdigest()
    assert not any(key in str(value) for value in vars(stored).values())
    event = AuditEvent.objects.get(action="api.key.created")
    assert key not in str(event.data)


def test_the_printed_key_opens_the_api_for_its_practice(northside):
    out, _ = create("--practice", "northside")
    assert ApiClient(out.strip()).get(BALANCES).status_code == 200


def test_each_key_is_new(northside):
    first, _ = create("--practice", "northside")
    second, _ = create("--practice", "northside")
    assert first != second
    assert ApiKey.objects.count() == 2


def test_a_revoked_key_is_refused(northside):
    out, _ = create("--practice", "northside")
    ApiKey.objects.update(revoked_at=timezone.now())
    response = ApiClient(out.strip()).get(BALANCES)
    assert response.status_code == 401
    assert response.json()["errors"][0]["path"] == "Authorization"


def test_a_key_with_one_character_changed_is_refused(northside):
    key = create("--practice", "northside")[0].strip()
    changed = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert ApiClient(changed).get(BALANCES).status_code == 401


def test_a_key_for_an_unknown_practice_is_a_clear_command_error(northside):
    with pytest.raises(CommandError, match="No practice with id 'nowhere'"):
        create("--practice", "nowhere")
    assert not ApiKey.objects.exists()
