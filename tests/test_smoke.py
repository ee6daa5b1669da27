import json
import os
import subprocess
import sys

import pytest
from django.db import connection

from pops.ledger.models import Practice
from tests.conftest import run_import

pytestmark = pytest.mark.django_db


def test_the_home_page_answers(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"POPS" in response.content
    # It points to the payments API, and does not call the payments engine unfinished.
    assert b"POST /api/v1/payments" in response.content
    assert b"in progress" not in response.content


def test_an_import_creates_the_practice_it_names():
    result = run_import({"practice": {"id": "p1", "name": "One", "time_zone": "UTC"}})
    assert result.practice == Practice.objects.get(external_id="p1")


def test_the_database_is_the_one_configured():
    assert connection.vendor in ("sqlite", "postgresql")


def test_the_home_page_needs_few_queries_however_many_practices(
    client, django_assert_max_num_queries
):
    for n in range(12):
        run_import({"practice": {"id": f"p{n}", "name": f"Practice {n}", "time_zone": "UTC"}})
    with django_assert_max_num_queries(3):
        assert client.get("/").status_code == 200


def test_the_home_page_styles_are_allowed_by_its_security_policy(client):
    response = client.get("/")
    policy = response.headers["Content-Security-Policy"]
    nonce = response.wsgi_request.csp_nonce
    assert f"'nonce-{nonce}'" in policy.split("style-src")[1].split(";")[0]
    assert f'nonce="{nonce}"'.encode() in response.content


def test_the_favicon_answers(client):
    assert client.get("/favicon.ico").status_code == 301


def _settings_under(env: dict[str, str]) -> dict[str, object]:
    """SANDBOX_GATEWAY_ENABLED and PAN_GUARD_EXEMPT_PATHS as a fresh process reads them."""
    code = (
        "import json, pops.settings as s; "
        "print(json.dumps([s.SANDBOX_GATEWAY_ENABLED, list(s.PAN_GUARD_EXEMPT_PATHS)]))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SANDBOX_GATEWAY_ENABLED")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "SECRET_KEY": "test-only", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    enabled, exempt = json.loads(done.stdout)
    return {"enabled": enabled, "exempt": exempt}


def test_the_sandbox_gateway_is_on_by_default_and_off_in_production():
    assert _settings_under({}) == {"enabled": True, "exempt": ["/sandbox-gateway/tokens"]}
    assert _settings_under({"DEBUG": "false"}) == {"enabled": False, "exempt": []}
    assert _settings_under({"DEBUG": "false", "SANDBOX_GATEWAY_ENABLED": "true"}) == {
        "enabled": True,
        "exempt": ["/sandbox-gateway/tokens"],
    }
