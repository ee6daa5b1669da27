"""GET /api/v1/guarantors/{id}/balances: six decimal strings, under a Group or the defaults."""

import pytest
from django.test import Client

from pops.core.models import AuditEvent
from pops.groups.models import Group
from pops.ledger.models import Practice
from tests.conftest import run_import
from tests.ledger import example

pytestmark = pytest.mark.django_db


def url(guarantor: str) -> str:
    return f"/api/v1/guarantors/{guarantor}/balances"


@pytest.fixture
def northside() -> Practice:
    return run_import(example()).practice


@pytest.fixture
def api(api_for, northside):
    return api_for(northside)


def test_the_balances_are_six_decimal_strings(api):
    response = api.get(url("2010"))
    assert response.status_code == 200
    assert response.json() == {
        "statement_balance": "50.00",
        "last_statement": "50.00",
        "amount_due": "25.00",
        "current_balance": "105.00",
        "unapplied_funds": "5.00",
        "collection_balance": "0.00",
    }


def test_the_statement_figures_are_null_without_a_statement(api):
    assert api.get(url("2012")).json() == {
        "statement_balance": None,
        "last_statement": None,
        "amount_due": "0.00",
        "current_balance": "0.00",
        "unapplied_funds": "0.00",
        "collection_balance": "0.00",
    }


def test_collection_balances_are_answered_apart(api):
    assert api.get(url("2011")).json() == {
        "statement_balance": "120.00",
        "last_statement": "120.00",
        "amount_due": "0.00",
        "current_balance": "0.00",
        "unapplied_funds": "0.00",
        "collection_balance": "90.00",
    }


def test_the_balances_work_straight_after_an_import_with_no_group_and_no_prepare(api, northside):
    assert not Group.objects.exists()
    assert not northside.is_prepared
    assert api.get(url("31415")).status_code == 200


def test_the_default_group_decides_when_no_group_is_named(api, northside):
    Group.objects.create(
        practice=northside,
        slug="northside",
        name="Northside",
        is_default=True,
        include_new_charges=True,
    )
    assert api.get(url("2010")).json()["amount_due"] == "105.00"


def test_a_group_named_by_its_slug_decides_amount_due(api, northside):
    Group.objects.create(practice=northside, slug="default-look", name="Northside", is_default=True)
    Group.objects.create(
        practice=northside, slug="new-charges", name="Northside", include_new_charges=True
    )
    # Visit 1003's 80.00, after the latest statement, counts only under "new-charges".
    assert api.get(url("2010"), data={"group": "default-look"}).json()["amount_due"] == "25.00"
    assert api.get(url("2010"), data={"group": "new-charges"}).json()["amount_due"] == "105.00"
    assert api.get(url("2010")).json()["amount_due"] == "25.00"


def test_an_unknown_group_answers_422_at_group(api):
    response = api.get(url("2010"), data={"group": "no-such-group"})
    assert response.status_code == 422
    assert response.json() == {
        "errors": [{"path": "group", "message": "no Group 'no-such-group' in this practice"}]
    }


def test_another_practices_group_is_unknown(api):
    southside = run_import({"practice": {"id": "southside", "name": "Southside"}}).practice
    Group.objects.create(practice=southside, slug="south", name="South", include_new_charges=True)
    response = api.get(url("2010"), data={"group": "south"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "group"


def test_a_missing_guarantor_answers_404(api):
    response = api.get(url("9999"))
    assert response.status_code == 404
    assert response.json() == {
        "errors": [{"path": "guarantor_id", "message": "no guarantor '9999'"}]
    }


def test_another_practices_guarantor_answers_404_exactly_like_a_missing_one(api_for, api):
    southside = run_import(
        {
            "practice": {"id": "southside", "name": "Southside"},
            "guarantors": [{"id": "8000", "first_name": "Sol", "last_name": "Southy"}],
        }
    ).practice
    assert api_for(southside).get(url("8000")).status_code == 200
    lonely = run_import({"practice": {"id": "lonely", "name": "Lonely"}}).practice

    from_northside = api.get(url("8000"))
    from_a_practice_without_guarantors = api_for(lonely).get(url("8000"))

    assert from_northside.status_code == from_a_practice_without_guarantors.status_code == 404
    assert from_northside.content == from_a_practice_without_guarantors.content
    assert from_northside["Content-Type"] == from_a_practice_without_guarantors["Content-Type"]
    assert not AuditEvent.objects.filter(
        action="ledger.balances.viewed", practice__external_id="northside"
    ).exists()


def test_viewing_balances_is_audited(api, northside):
    api.client.get(url("2010"), headers={**api.headers, "User-Agent": "pm-sync/1.0"})
    event = AuditEvent.objects.get(action="ledger.balances.viewed")
    assert event.practice == northside
    assert (event.actor_type, event.actor_label) == ("api", "tests")
    assert event.user_agent == "pm-sync/1.0"
    assert (event.resource_type, event.resource_id, event.guarantor_id) == (
        "guarantor",
        "2010",
        "2010",
    )


def test_the_balances_need_a_key(northside):
    response = Client().get(url("2010"))
    assert response.status_code == 401
    assert response.json()["errors"][0]["path"] == "Authorization"


def test_the_balances_follow_a_later_import(api):
    payment = {
        "id": "R-8000",
        "guarantor": "2010",
        "date": "2026-11-10",
        "amount": "105.00",
        "applications": [
            {"encounter": "1002", "line": 1, "amount": "30.00"},
            {"encounter": "1003", "line": 1, "amount": "75.00"},
        ],
    }
    assert api.post("/api/v1/import", {"receipts": [payment]}).status_code == 200
    assert api.get(url("2010")).json() == {
        "statement_balance": "50.00",
        "last_statement": "50.00",
        "amount_due": "0.00",
        "current_balance": "0.00",  # 5.00 left on visit 1003, 5.00 unapplied
        "unapplied_funds": "5.00",
        "collection_balance": "0.00",
    }
