"""GET /api/v1/reference-batches?date=: a date's batches with their receipt count, total and
"Requested, Not Processed" (the date's declined POPS payments)."""

import datetime as dt

import pytest
import time_machine

from pops.core import clock
from pops.core.audit import Actor
from pops.ledger.models import ReferenceBatch
from pops.ledger.services.batches import close_batch
from tests.api.test_payments_api import body, post, prepared_practice
from tests.payments.conftest import DECLINED, INSUFFICIENT_FUNDS, card_token

pytestmark = pytest.mark.django_db

URL = "/api/v1/reference-batches"
NOON = dt.datetime(2026, 11, 26, 18, 0, tzinfo=dt.UTC)  # 12:00 in America/Chicago
NONE = {"count": 0, "amount": "0.00"}


@pytest.fixture
def practice():
    return prepared_practice()


@pytest.fixture
def api(api_for, practice):
    return api_for(practice)


def today(practice) -> str:
    return clock.local_date(practice.time_zone).isoformat()


def batches(api, date: str):
    response = api.get(URL, data={"date": date})
    assert response.status_code == 200, response.json()
    return response.json()


def test_a_days_payments_are_one_open_batch_with_count_and_total(api, practice):
    post(api, body(amount="20.00"), key="a")
    post(api, body(amount="30.50"), key="b")
    batch = ReferenceBatch.objects.get()

    assert batches(api, today(practice)) == {
        "items": [
            {
                "id": str(batch.pk),
                "date": today(practice),
                "description": "API Payments",
                "user": "POPS",
                "status": "Open",
                "receipt_count": 2,
                "total": "50.50",
                "requested_not_processed": NONE,
            }
        ],
        "count": 1,
        "requested_not_processed": NONE,
    }


def test_declines_are_requested_not_processed_and_never_in_the_batch(api, practice):
    post(api, body(amount="20.00"), key="a")
    post(api, body(amount="15.00", payment_token=card_token(DECLINED)), key="b")
    post(api, body(amount="12.34", payment_token=card_token(INSUFFICIENT_FUNDS)), key="c")

    answer = batches(api, today(practice))

    [item] = answer["items"]
    assert (item["receipt_count"], item["total"]) == (1, "20.00")
    assert item["requested_not_processed"] == {"count": 2, "amount": "27.34"}
    assert answer["requested_not_processed"] == {"count": 2, "amount": "27.34"}


def test_a_day_of_declines_only_has_no_batch_but_reports_them(api, practice):
    post(api, body(amount="15.00", payment_token=card_token(DECLINED)))

    answer = batches(api, today(practice))

    assert answer["items"] == []
    assert answer["count"] == 0
    assert answer["requested_not_processed"] == {"count": 1, "amount": "15.00"}


def test_after_a_close_the_next_batch_reports_its_own_payments_and_declines(api, practice):
    with time_machine.travel(NOON, tick=False) as traveller:
        post(api, body(amount="15.00", payment_token=card_token(DECLINED)), key="a")
        traveller.shift(dt.timedelta(minutes=1))
        post(api, body(amount="20.00"), key="b")
        traveller.shift(dt.timedelta(minutes=1))
        close_batch(ReferenceBatch.objects.get(), actor=Actor.command("tests"))
        traveller.shift(dt.timedelta(minutes=1))
        post(api, body(amount="11.00", payment_token=card_token(DECLINED)), key="c")
        traveller.shift(dt.timedelta(minutes=1))
        post(api, body(amount="30.00"), key="d")

        answer = batches(api, "2026-11-26")

    first, second = answer["items"]
    assert (first["status"], first["total"], second["status"], second["total"]) == (
        "Closed",
        "20.00",
        "Open",
        "30.00",
    )
    assert first["requested_not_processed"] == {"count": 1, "amount": "15.00"}
    assert second["requested_not_processed"] == {"count": 1, "amount": "11.00"}
    assert answer["requested_not_processed"] == {"count": 2, "amount": "26.00"}


def test_the_date_is_the_practices_own(api):
    with time_machine.travel(dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC), tick=False):
        post(api, body())  # 21:00 on the 26th in Chicago, already the 27th in UTC

    assert batches(api, "2026-11-26")["count"] == 1
    assert batches(api, "2026-11-27")["count"] == 0


def test_another_practices_batches_are_not_listed(api, api_for, practice):
    other = api_for(prepared_practice("p2"))
    post(other, body(amount="15.00", payment_token=card_token(DECLINED)), key="a")
    post(other, body(), key="b")

    assert batches(api, today(practice)) == {
        "items": [],
        "count": 0,
        "requested_not_processed": NONE,
    }


@pytest.mark.parametrize("date", ["", "2026-02-30", "26-11-2026", "20261126", "0", "today"])
def test_a_bad_date_is_refused_at_date(api, date):
    response = api.get(URL, data={"date": date})
    assert response.status_code == 422
    assert [e["path"] for e in response.json()["errors"]] == ["date"]


def test_the_date_is_required(api):
    response = api.get(URL)
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "date"


def test_without_an_api_key_the_answer_is_401(client):
    assert client.get(URL, data={"date": "2026-11-26"}).status_code == 401


@pytest.mark.parametrize("query", ["date=2026-11-26&practice=p2", "date=2026-11-26&=true"])
def test_an_unknown_parameter_is_refused_by_name(api, query):
    response = api.get(f"{URL}?{query}")
    assert response.status_code == 422
    assert response.json()["errors"][0]["message"].startswith("is not a parameter")


def test_two_dates_are_refused_rather_than_one_picked(api):
    response = api.get(f"{URL}?date=2026-11-26&date=2026-11-27")
    assert response.status_code == 422
    assert response.json() == {"errors": [{"path": "date", "message": "give one date"}]}


def test_the_openapi_schema_documents_the_totals(client):
    schema = client.get("/api/v1/openapi.json").json()
    components = schema["components"]["schemas"]
    item = components["BatchList"]["properties"]["items"]["items"]["$ref"].split("/")[-1]

    assert {"receipt_count", "total", "requested_not_processed"} <= set(
        components[item]["properties"]
    )
