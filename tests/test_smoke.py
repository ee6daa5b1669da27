import pytest
from django.db import connection

from pops.ledger.models import Practice
from tests.conftest import run_import

pytestmark = pytest.mark.django_db


def test_the_home_page_answers(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"POPS" in response.content


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
