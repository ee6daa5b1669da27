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
