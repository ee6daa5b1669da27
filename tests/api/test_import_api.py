"""POST /api/v1/import: the import of docs/import.md over HTTP, scoped to the key's practice."""

import json

import pytest
from django.test import Client, override_settings

from pops.core.models import AuditEvent
from pops.ledger.models import Guarantor, Practice
from tests.conftest import run_import
from tests.ledger import EXAMPLE_PATH, example, row_counts, snapshot

pytestmark = pytest.mark.django_db

URL = "/api/v1/import"
AUTHORIZATION_ERROR = {
    "errors": [
        {"path": "Authorization", "message": "send a valid API key as 'Authorization: Bearer KEY'"}
    ]
}


@pytest.fixture
def northside():
    return run_import({"practice": example()["practice"]}).practice


@pytest.fixture
def api(api_for, northside):
    return api_for(northside)


def test_the_example_document_answers_its_summary(api):
    response = api.post(URL, raw=EXAMPLE_PATH.read_bytes())

    assert response.status_code == 200
    assert response.json() == {
        "practice": "northside",
        "ledger_entries": 20,
        "sections": {
            "facilities": {"created": 2, "updated": 0, "unchanged": 0},
            "providers": {"created": 3, "updated": 0, "unchanged": 0},
            "collection_agencies": {"created": 1, "updated": 0, "unchanged": 0},
            "guarantors": {"created": 4, "updated": 0, "unchanged": 0},
            "patients": {"created": 5, "updated": 0, "unchanged": 0},
            "encounters": {"created": 6, "updated": 0, "unchanged": 0},
            "lines": {"created": 8, "updated": 0, "unchanged": 0},
            "receipts": {"created": 6, "updated": 0, "unchanged": 0},
            "statements": {"created": 4, "updated": 0, "unchanged": 0},
            "appointments": {"created": 3, "updated": 0, "unchanged": 0},
        },
    }


def test_importing_the_same_document_twice_through_the_api_changes_nothing(api):
    api.post(URL, raw=EXAMPLE_PATH.read_bytes())
    before = snapshot()
    response = api.post(URL, raw=EXAMPLE_PATH.read_bytes())
    assert response.status_code == 200
    assert response.json()["ledger_entries"] == 0
    assert all(
        tally["created"] == tally["updated"] == 0 for tally in response.json()["sections"].values()
    )
    assert snapshot() == before


def test_the_practice_may_be_left_out_the_key_names_it(api):
    document = example()
    del document["practice"]
    response = api.post(URL, document)
    assert response.status_code == 200
    assert response.json()["practice"] == "northside"


def test_an_api_import_is_audited_as_the_key(api, northside):
    api.post(URL, {"facilities": [{"id": "F1", "name": "Main"}]})
    event = AuditEvent.objects.get(action="ledger.import.completed", actor_type="api")
    assert (event.actor_label, event.practice) == ("tests", northside)


def test_an_invalid_document_answers_422_with_every_problem_and_writes_nothing(api):
    api.post(URL, raw=EXAMPLE_PATH.read_bytes())
    document = example()
    document["encounters"][2]["lines"][0]["billed"] = 80
    document["receipts"][0]["date"] = "2026-08-32"
    document["patients"][1]["guarantor"] = "0000"
    before = row_counts()

    response = api.post(URL, document)

    assert response.status_code == 422
    assert response.json() == {
        "errors": [
            {
                "path": "encounters[2].lines[0].billed",
                "message": "must be a non-negative decimal string with at most two decimals, "
                'like "150.00"',
            },
            {"path": "receipts[0].date", "message": "must be a date like 2026-11-26"},
            {
                "path": "patients[1].guarantor",
                "message": "no guarantor '0000' in this document or in practice 'northside'",
            },
        ]
    }
    assert row_counts() == before


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b'{"facilities": [{"id": "F1", "name": "Main"},]}', "facilities[1]"),
        (b"", ""),
        (b"[]", ""),
        (b"not json", ""),
    ],
)
def test_malformed_json_answers_422(api, raw, path):
    response = api.post(URL, raw=raw)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["path"] == path


def test_the_body_is_read_as_json_whatever_content_type_it_is_sent_with(api):
    response = api.client.post(
        URL,
        data=json.dumps({"facilities": [{"id": "F1", "name": "Main"}]}),
        content_type="text/plain",
        headers=api.headers,
    )
    assert response.status_code == 200


def test_another_practices_id_in_the_document_answers_422_at_practice_id(api):
    run_import({"practice": {"id": "southside", "name": "Southside Clinic"}})
    document = example()
    document["practice"] = {"id": "southside", "name": "Southside Clinic"}
    before = row_counts()

    response = api.post(URL, document)

    assert response.status_code == 422
    assert response.json() == {
        "errors": [
            {
                "path": "practice.id",
                "message": "this API key belongs to practice 'northside', not 'southside'",
            }
        ]
    }
    assert row_counts() == before


def test_another_practices_guarantor_is_an_unknown_reference(api):
    run_import(
        {
            "practice": {"id": "southside", "name": "Southside"},
            "guarantors": [{"id": "8000", "first_name": "Sol", "last_name": "Southy"}],
        }
    )
    patient = {"id": "P-8000", "guarantor": "8000", "first_name": "Sol", "last_name": "Southy"}
    response = api.post(URL, {"patients": [patient]})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "path": "patients[0].guarantor",
            "message": "no guarantor '8000' in this document or in practice 'northside'",
        }
    ]


def test_a_key_imports_only_into_its_own_practice(api_for, api):
    southside = run_import({"practice": {"id": "southside", "name": "Southside"}}).practice
    sol = {"id": "2010", "first_name": "Sol", "last_name": "Southy"}
    api_for(southside).post(URL, {"guarantors": [sol]})
    api.post(URL, raw=EXAMPLE_PATH.read_bytes())
    names = Guarantor.objects.filter(external_id="2010").values_list(
        "practice__external_id", "first_name"
    )
    assert sorted(names) == [("northside", "Patricia"), ("southside", "Sol")]


@override_settings(API_IMPORT_MAX_BYTES=1000)
def test_a_document_over_the_limit_answers_413_and_writes_nothing(api):
    body = json.dumps({"facilities": [{"id": f"F{n}", "name": "x" * 20} for n in range(40)]})
    assert len(body) > 1000
    before = row_counts()

    response = api.post(URL, raw=body.encode())

    assert response.status_code == 413
    assert response.json() == {
        "errors": [
            {
                "path": "",
                "message": "the document is over the 1000 bytes limit; send larger loads with "
                "`pops import`",
            }
        ]
    }
    assert row_counts() == before


def test_the_api_takes_documents_up_to_20_megabytes(api):
    response = api.post(URL, raw=b" " * (20 * 1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.json()["errors"][0]["message"] == (
        "the document is over the 20 MB limit; send larger loads with `pops import`"
    )


def test_a_content_length_that_is_not_a_number_answers_400(api):
    response = api.post(URL, {}, CONTENT_LENGTH="lots")
    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"path": "Content-Length", "message": "must be a number of bytes"}]
    }


@override_settings(API_IMPORT_MAX_BYTES=1000)
def test_a_document_at_the_limit_is_taken(api):
    body = json.dumps({"facilities": [{"id": "F1", "name": "Main"}]}).encode()
    body += b" " * (1000 - len(body))
    response = api.post(URL, raw=body)
    assert response.status_code == 200


def test_without_a_key_the_import_answers_401(northside):
    response = Client().post(URL, data=EXAMPLE_PATH.read_bytes(), content_type="application/json")
    assert response.status_code == 401
    assert response.json() == AUTHORIZATION_ERROR
    assert not Guarantor.objects.exists()


@pytest.mark.parametrize(
    "authorization",
    ["Bearer pops_wrong", "Bearer ", "Basic dXNlcjpwYXNz", "pops_wrong", "Bearer " + "x" * 500],
)
def test_a_wrong_key_answers_401(northside, authorization):
    response = Client().post(
        URL,
        data=EXAMPLE_PATH.read_bytes(),
        content_type="application/json",
        headers={"Authorization": authorization},
    )
    assert response.status_code == 401
    assert response.json() == AUTHORIZATION_ERROR
    assert not Practice.objects.exclude(external_id="northside").exists()
    assert not Guarantor.objects.exists()


def test_get_is_not_how_to_import(api):
    response = api.get(URL)
    assert response.status_code == 405


@pytest.mark.parametrize(
    "raw",
    [
        b'{"facilities": [{"id": "F1", "name": ' + b"9" * 5000 + b"}]}",
        b'{"facilities": [{"id": ' + b"[" * 50_000 + b"]" * 50_000 + b"}]}",
        b'{"guarantors": [{"id": "x\\u0000y", "first_name": "A", "last_name": "B"}]}',
        b'{"facilities": [{"id": "F1", "name": "\\ud800"}]}',
        b"\xef\xbb\xbf{}",
    ],
    ids=["long-number", "deep", "nul", "lone-surrogate", "bom"],
)
def test_hostile_documents_answer_422_never_500(api, raw):
    response = api.post(URL, raw=raw)
    assert response.status_code in (200, 422), response.content
    if response.status_code == 422:
        assert response.json()["errors"]
