"""Bad input: each problem gets a clear message naming its place, and nothing is written
(`refused` checks the row count of every table before and after)."""

from typing import Any

import pytest

from pops.ledger.importing.schema import SECTIONS
from pops.ledger.models import Guarantor, Practice
from tests.conftest import run_import
from tests.ledger import example, paths, refused

pytestmark = pytest.mark.django_db

PRACTICE = {"id": "northside", "name": "Northside Family Medicine", "time_zone": "America/Chicago"}


def only(**sections: Any) -> dict[str, Any]:
    return {"practice": dict(PRACTICE), **sections}


def guarantor(id: str = "3000") -> dict[str, Any]:
    return {"id": id, "first_name": "Ann", "last_name": "Lind"}


def patient(id: str = "P-3000", guarantor: str = "3000") -> dict[str, Any]:
    return {"id": id, "guarantor": guarantor, "first_name": "Ann", "last_name": "Lind"}


def visit(number: str = "3001", *lines: dict[str, Any], patient: str = "P-3000") -> dict:
    return {
        "number": number,
        "patient": patient,
        "facility": "F-MAIN",
        "provider": "DR-AMES",
        "service_date": "2026-11-02",
        "lines": list(lines) or [{"line": 1, "billed": "100.00"}],
    }


def payment(id: Any = "R-3000", amount: Any = "10.00", *applications: dict) -> dict[str, Any]:
    return {
        "id": id,
        "guarantor": "3000",
        "date": "2026-11-03",
        "amount": amount,
        "applications": list(applications),
    }


def on(encounter: Any, line: Any, amount: Any) -> dict[str, Any]:
    return {"encounter": encounter, "line": line, "amount": amount}


def problem_at(problems: list[dict], path: str) -> str:
    """The message of the one problem at `path`."""
    found = [p["message"] for p in problems if p["path"] == path]
    assert len(found) == 1, problems
    return found[0]


@pytest.fixture
def northside():
    """The example practice, already imported."""
    return run_import(example()).practice


# --- the document as a whole -------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"practice": {"id": "p1", "name": "One"},, "facilities": []}',
        b'{"practice": {"id": "p1", "name": "One"}, "facilities": [{"id": "F1"',
        b'{"practice": {"id": "p1" "name": "One"}}',
        b"{'practice': {}}",
        b'{"practice": {"id": "p1", "name": "\xff"}}',
        b'{"practice": {"id": "p1", "name": "One"}} trailing',
    ],
)
def test_malformed_json_is_refused(raw):
    problems = refused(raw)
    assert len(problems) == 1
    assert problems[0]["message"].startswith("malformed JSON")


def test_malformed_json_names_the_item_being_read():
    raw = (
        b'{"practice": {"id": "p1", "name": "One"}, "facilities": '
        b'[{"id": "F1", "name": "Main"}, {"id": "F2", "name": "Lake",}]}'
    )
    assert refused(raw) == [
        {
            "path": "facilities[1]",
            "message": "malformed JSON: parse error: invalid object key (must be a string)",
        }
    ]


@pytest.mark.parametrize("raw", [b"", b"   \n"])
def test_an_empty_document_is_refused(raw):
    assert refused(raw) == [{"path": "", "message": "the document is empty"}]


@pytest.mark.parametrize("raw", [b"[]", b'[{"practice": {}}]', b'"northside"', b"42", b"null"])
def test_a_document_that_is_not_an_object_is_refused(raw):
    assert refused(raw) == [{"path": "", "message": "the document must be a JSON object"}]


def test_an_unknown_section_is_refused():
    problems = refused(only(facilities=[], payers=[{"id": "X"}]))
    assert problems == [{"path": "payers", "message": "is not a section of the import document"}]


@pytest.mark.parametrize("section", list(SECTIONS))
def test_a_section_that_is_not_a_list_is_refused(section):
    assert refused(only(**{section: {"id": "x"}})) == [
        {"path": section, "message": "must be a list"}
    ]


def test_a_document_without_a_practice_is_refused_when_no_api_key_names_one():
    problems = refused({"facilities": [{"id": "F1", "name": "Main"}]})
    assert problems == [{"path": "practice", "message": 'is required: {"id", "name", "time_zone"}'}]


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"practice": dict(PRACTICE, fax="555")}, "practice.fax"),
        (only(facilities=[{"id": "F1", "name": "Main", "city": "Chicago"}]), "facilities[0].city"),
        (only(guarantors=[guarantor() | {"middle_name": "Q"}]), "guarantors[0].middle_name"),
        (
            only(encounters=[visit("1", {"line": 1, "billed": "1.00", "units": 2})]),
            "encounters[0].lines[0].units",
        ),
        (only(receipts=[payment() | {"batch": "B1"}]), "receipts[0].batch"),
    ],
)
def test_an_unknown_field_is_refused(document, path):
    problems = refused(document)
    assert problem_at(problems, path) == "Extra inputs are not permitted"


def test_a_required_field_left_out_is_named():
    problems = refused(only(guarantors=[{"id": "3000", "first_name": "Ann"}]))
    assert problems == [{"path": "guarantors[0].last_name", "message": "Field required"}]


# --- references ----------------------------------------------------------------------------


def test_a_patient_whose_guarantor_is_in_neither_the_document_nor_the_database_is_refused(
    northside,
):
    problems = refused(only(patients=[patient(guarantor="9999")]))
    assert problems == [
        {
            "path": "patients[0].guarantor",
            "message": "no guarantor '9999' in this document or in practice 'northside'",
        }
    ]


def test_a_reference_to_a_stored_row_is_accepted(northside):
    run_import(only(patients=[patient(guarantor="2010")]))


def test_every_unknown_reference_is_named_at_once(northside):
    document = only(
        encounters=[
            visit("3001", patient="P-NONE")
            | {"facility": "F-NONE", "provider": "DR-NONE"}
            | {"collections": {"agency": "CA-NONE", "sent_on": "2026-11-20"}}
        ],
        receipts=[
            payment("R-3001", "10.00", on("9999", 1, "5.00"), on("1001", 7, "1.00"))
            | {"guarantor": "G-NONE"}
        ],
        statements=[
            {
                "id": "S-1",
                "guarantor": "G-NONE",
                "statement_date": "2026-11-01",
                "due_date": "2026-11-22",
                "statement_balance": "0.00",
                "amount_due": "0.00",
            }
        ],
        appointments=[
            {
                "id": "A-1",
                "patient": "P-NONE",
                "facility": "F-NONE",
                "provider": "DR-NONE",
                "starts_at": "2026-12-01T09:00:00",
            }
        ],
    )
    problems = refused(document)
    assert sorted(paths(problems)) == sorted(
        [
            "encounters[0].patient",
            "encounters[0].facility",
            "encounters[0].provider",
            "encounters[0].collections.agency",
            "receipts[0].guarantor",
            "receipts[0].applications[0].encounter",
            "receipts[0].applications[1].line",
            "statements[0].guarantor",
            "appointments[0].patient",
            "appointments[0].facility",
            "appointments[0].provider",
        ]
    )
    assert problem_at(problems, "encounters[0].collections.agency") == (
        "no collection agency 'CA-NONE' in this document or in practice 'northside'"
    )
    assert problem_at(problems, "receipts[0].applications[1].line") == (
        "encounter '1001' has no line 7"
    )


def test_an_application_to_a_line_the_document_does_not_give_is_refused():
    problems = refused(
        only(
            facilities=[{"id": "F-MAIN", "name": "Main"}],
            providers=[{"id": "DR-AMES", "name": "Ames"}],
            guarantors=[guarantor()],
            patients=[patient()],
            encounters=[visit("3001")],
            receipts=[payment("R-3000", "10.00", on("3001", 2, "10.00"))],
        )
    )
    assert problems == [
        {"path": "receipts[0].applications[0].line", "message": "encounter '3001' has no line 2"}
    ]


def test_a_reference_to_an_item_refused_for_another_reason_is_not_reported_twice(northside):
    problems = refused(
        only(
            guarantors=[guarantor() | {"text_opt_out": "no"}],
            patients=[patient()],
            encounters=[visit("3001") | {"service_date": "soon"}],
            receipts=[payment("R-3000", "10.00", on("3001", 1, "10.00"))],
        )
    )
    assert paths(problems) == ["guarantors[0].text_opt_out", "encounters[0].service_date"]


def test_another_practices_rows_are_unknown_references(northside):
    run_import(
        {
            "practice": {"id": "southside", "name": "Southside"},
            "guarantors": [guarantor("8000")],
        }
    )
    problems = refused(only(patients=[patient(guarantor="8000")]))
    assert problems == [
        {
            "path": "patients[0].guarantor",
            "message": "no guarantor '8000' in this document or in practice 'northside'",
        }
    ]


# --- amounts -------------------------------------------------------------------------------

AMOUNT_MESSAGE = 'must be a non-negative decimal string with at most two decimals, like "150.00"'


@pytest.mark.parametrize(
    "amount",
    ["-1.00", "abc", "", "1.005", "150.001", "1e2", "1,000.00", "$5.00", " 5.00", "0x10", "NaN"],
)
def test_a_bad_amount_is_refused(amount):
    document = only(encounters=[visit("3001", {"line": 1, "billed": amount})])
    problems = refused(document)
    assert problem_at(problems, "encounters[0].lines[0].billed") == AMOUNT_MESSAGE


@pytest.mark.parametrize("amount", [150, 150.0, 1.5, -1, True, None, ["1.00"]])
def test_a_number_instead_of_a_decimal_string_is_refused(amount):
    document = only(receipts=[payment("R-1", amount)])
    assert problem_at(refused(document), "receipts[0].amount") == AMOUNT_MESSAGE


@pytest.mark.parametrize("field", ["billed", "adjusted", "insurance_paid", "pending_insurance"])
def test_every_line_amount_is_checked(field):
    document = only(encounters=[visit("3001", {"line": 1, "billed": "1.00", field: "-0.01"})])
    assert problem_at(refused(document), f"encounters[0].lines[0].{field}") == AMOUNT_MESSAGE


def test_statement_amounts_are_checked():
    statement = {
        "id": "S-1",
        "guarantor": "2010",
        "statement_date": "2026-11-01",
        "due_date": "2026-11-22",
        "statement_balance": "12.345",
        "amount_due": 12,
    }
    problems = refused(only(statements=[statement]))
    assert paths(problems) == ["statements[0].statement_balance", "statements[0].amount_due"]


def test_an_application_of_nothing_is_refused(northside):
    problems = refused(only(receipts=[payment("R-1", "10.00", on("1003", 1, "0.00"))]))
    assert problem_at(problems, "receipts[0].applications[0].amount") == "must be more than 0.00"


# --- ids and numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"practice": {"id": 7, "name": "Seven"}}, "practice.id"),
        (only(guarantors=[guarantor() | {"id": 3000}]), "guarantors[0].id"),
        (only(patients=[patient() | {"guarantor": 3000}]), "patients[0].guarantor"),
        (only(encounters=[visit() | {"number": 3001}]), "encounters[0].number"),
        (only(encounters=[visit() | {"patient": None}]), "encounters[0].patient"),
        (only(receipts=[payment(None, "1.00", on(1001, 1, "1.00"))]), "receipts[0].id"),
    ],
)
def test_an_id_given_as_a_number_is_refused(document, path):
    assert problem_at(refused(document), path) == 'must be a string, like "2010"'


def test_the_application_encounter_must_be_a_string_too():
    problems = refused(only(receipts=[payment("R-1", "1.00", on(1001, 1, "1.00"))]))
    assert problem_at(problems, "receipts[0].applications[0].encounter") == (
        'must be a string, like "2010"'
    )


@pytest.mark.parametrize("line", ["1", 1.5, 0, -2, 10000, None])
def test_a_line_number_must_be_a_whole_number_from_1(line):
    problems = refused(only(encounters=[visit("3001", {"line": line, "billed": "1.00"})]))
    assert paths(problems) == ["encounters[0].lines[0].line"]


@pytest.mark.parametrize("blank", ["", "   "])
def test_an_empty_id_or_name_is_refused(blank):
    problems = refused(only(guarantors=[guarantor(blank) | {"first_name": blank}]))
    assert problems == [
        {"path": "guarantors[0].id", "message": "must not be empty"},
        {"path": "guarantors[0].first_name", "message": "must not be empty"},
    ]


def test_a_line_number_given_twice_in_one_encounter_is_refused():
    lines = [{"line": 1, "billed": "1.00"}, {"line": 1, "billed": "2.00"}]
    problems = refused(only(encounters=[visit("3001", *lines)]))
    assert problems == [{"path": "encounters[0].lines", "message": "line 1 appears twice"}]


@pytest.mark.parametrize("section", list(SECTIONS))
def test_duplicate_ids_in_one_document_are_refused(section):
    items = example()[section]
    key = "number" if section == "encounters" else "id"
    document = only(**{section: [items[0], items[-1] | {key: items[0][key]}]})
    problems = refused(document)
    assert {
        "path": f"{section}[1].{key}",
        "message": f"{items[0][key]!r} appears twice (also {section}[0])",
    } in problems


# --- dates and time zones ------------------------------------------------------------------


@pytest.mark.parametrize("date", ["2026-02-30", "yesterday", "11/26/2026", "", 20261126, None])
def test_a_date_that_is_not_a_date_is_refused(date):
    problems = refused(only(encounters=[visit() | {"service_date": date}]))
    assert problems[0] == {
        "path": "encounters[0].service_date",
        "message": "must be a date like 2026-11-26",
    }


@pytest.mark.parametrize(
    ("section", "item", "field"),
    [
        ("patients", patient(), "birth_date"),
        ("receipts", payment(), "date"),
        (
            "statements",
            {
                "id": "S",
                "guarantor": "2010",
                "statement_date": "2026-11-01",
                "due_date": "2026-11-22",
                "statement_balance": "0.00",
                "amount_due": "0.00",
            },
            "due_date",
        ),
    ],
)
def test_every_date_is_checked(section, item, field):
    problems = refused(only(**{section: [item | {field: "2026-13-01"}]}))
    assert problem_at(problems, f"{section}[0].{field}") == "must be a date like 2026-11-26"


def test_a_collection_placement_needs_a_date_sent(northside):
    collections = {"agency": "CA-MIDWEST", "sent_on": "last week"}
    problems = refused(only(encounters=[visit("1001") | {"collections": collections}]))
    assert problem_at(problems, "encounters[0].collections.sent_on") == (
        "must be a date like 2026-11-26"
    )


@pytest.mark.parametrize("starts_at", ["noon", "2026-12-01T25:00:00", "", 1764590400])
def test_an_appointment_time_that_is_not_a_time_is_refused(starts_at):
    appointment = {
        "id": "A-1",
        "patient": "P-100",
        "facility": "F-MAIN",
        "provider": "DR-AMES",
        "starts_at": starts_at,
    }
    problems = refused(only(appointments=[appointment]))
    assert problem_at(problems, "appointments[0].starts_at") == (
        "must be a date and time like 2026-11-26T09:30:00"
    )


@pytest.mark.parametrize("starts_at", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_an_appointment_time_out_of_range_is_refused(northside, starts_at):
    appointment = {
        "id": "A-1",
        "patient": "P-100",
        "facility": "F-MAIN",
        "provider": "DR-AMES",
        "starts_at": starts_at,
    }
    problems = refused(only(appointments=[appointment]))
    assert paths(problems) == ["appointments[0].starts_at"]


def test_a_statement_due_before_its_date_is_refused(northside):
    statement = {
        "id": "S-1",
        "guarantor": "2010",
        "statement_date": "2026-11-01",
        "due_date": "2026-10-31",
        "statement_balance": "1.00",
        "amount_due": "1.00",
    }
    assert refused(only(statements=[statement])) == [
        {"path": "statements[0].due_date", "message": "must not be before the statement date"}
    ]


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "EST5EDT ", "", "../etc/passwd", "/etc/localtime", 5, None]
)
def test_a_bad_time_zone_is_refused(zone):
    problems = refused({"practice": dict(PRACTICE, time_zone=zone)})
    assert paths(problems) == ["practice.time_zone"]


def test_a_bad_time_zone_says_what_a_good_one_looks_like():
    problems = refused({"practice": dict(PRACTICE, time_zone="Chicago")})
    assert problems == [
        {
            "path": "practice.time_zone",
            "message": "must be an IANA time zone, like America/Chicago",
        }
    ]


# --- money rules ---------------------------------------------------------------------------


def test_an_application_larger_than_what_its_line_can_take_is_refused(northside):
    # Visit 1003 line 1 owes 80.00 and nothing is paid on it yet.
    receipt = payment("R-1", "90.00", on("1003", 1, "80.01")) | {"guarantor": "2010"}
    problems = refused(only(receipts=[receipt]))
    assert problems == [
        {
            "path": "receipts[0].applications[0]",
            "message": "line 1003-1 would owe 80.00, less than the 80.01 of patient payments "
            "applied to it",
        }
    ]


def test_applications_of_several_receipts_count_together_on_one_line(northside):
    # Visit 1001 line 2 owes 20.00, all paid by R-5002: another 0.01 is too much.
    problems = refused(
        only(receipts=[payment("R-1", "1.00", on("1001", 2, "0.01")) | {"guarantor": "2010"}])
    )
    assert paths(problems) == ["receipts[0].applications[0]"]


def test_an_application_larger_than_a_line_of_the_same_document_can_take_is_refused():
    problems = refused(
        only(
            facilities=[{"id": "F-MAIN", "name": "Main"}],
            providers=[{"id": "DR-AMES", "name": "Ames"}],
            guarantors=[guarantor()],
            patients=[patient()],
            encounters=[visit("3001", {"line": 1, "billed": "100.00", "adjusted": "60.00"})],
            receipts=[payment("R-3000", "50.00", on("3001", 1, "50.00"))],
        )
    )
    assert problems == [
        {
            "path": "receipts[0].applications[0]",
            "message": "line 3001-1 would owe 40.00, less than the 50.00 of patient payments "
            "applied to it",
        }
    ]


def test_applications_summing_above_the_receipt_amount_are_refused(northside):
    receipt = payment("R-1", "30.00", on("1003", 1, "20.00"), on("1002", 1, "10.01"))
    problems = refused(only(receipts=[receipt | {"guarantor": "2010"}]))
    assert problems == [
        {
            "path": "receipts[0].applications",
            "message": "apply 30.01 in all, more than the receipt's 30.00",
        }
    ]


def test_one_receipt_applied_twice_to_one_line_is_refused(northside):
    receipt = payment("R-1", "30.00", on("1003", 1, "10.00"), on("1003", 1, "10.00"))
    problems = refused(only(receipts=[receipt | {"guarantor": "2010"}]))
    assert problems == [
        {"path": "receipts[0].applications[1]", "message": "applies to the same line twice"}
    ]


def test_a_refund_with_applications_is_refused(northside):
    refund = payment("R-1", "5.00", on("1003", 1, "5.00")) | {"type": "refund", "guarantor": "2010"}
    problems = refused(only(receipts=[refund]))
    assert problems == [
        {
            "path": "receipts[0].applications",
            "message": "a refund takes no applications; leave the list empty",
        }
    ]


def test_a_receipt_type_other_than_payment_or_refund_is_refused():
    problems = refused(only(receipts=[payment() | {"type": "adjustment"}]))
    assert paths(problems) == ["receipts[0].type"]


def test_a_refund_beyond_the_guarantors_unapplied_money_is_refused(northside):
    # Pat (2010) has 5.00 unapplied.
    refund = payment("R-1", "5.01") | {"type": "refund", "guarantor": "2010"}
    assert refused(only(receipts=[refund])) == [
        {
            "path": "receipts[0]",
            "message": "refunds and applications would exceed the guarantor's payments by 0.01",
        }
    ]


def test_an_application_to_another_guarantors_visit_is_refused(northside):
    # Visit 1002 is Pat's (2010); Helen (31415) cannot pay it.
    receipt = payment("R-1", "5.00", on("1002", 1, "5.00")) | {"guarantor": "31415"}
    assert refused(only(receipts=[receipt])) == [
        {
            "path": "receipts[0].applications[0]",
            "message": "applies to a visit of another guarantor",
        }
    ]


# --- text ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Ann\x00", "A\x07nn"])
def test_text_that_no_database_can_store_is_refused(name):
    problems = refused(only(guarantors=[guarantor() | {"first_name": name}]))
    assert paths(problems) == ["guarantors[0].first_name"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("email", "not-an-email"), ("mobile", "call me"), ("text_opt_out", "yes")],
)
def test_guarantor_contact_details_are_checked(field, value):
    problems = refused(only(guarantors=[guarantor() | {field: value}]))
    assert paths(problems) == [f"guarantors[0].{field}"]


def test_text_longer_than_its_column_is_refused():
    problems = refused(only(guarantors=[guarantor("x" * 65) | {"last_name": "y" * 101}]))
    assert paths(problems) == ["guarantors[0].id", "guarantors[0].last_name"]


# --- all or nothing ------------------------------------------------------------------------


def test_an_invalid_document_changes_nothing_and_answers_every_problem_at_once(northside):
    document = example()
    document["practice"]["name"] = "Renamed"  # would be written, were the document valid
    document["guarantors"][0]["email"] = "pat@changed.example.com"
    document["encounters"][2]["lines"][0]["billed"] = "95"  # valid: 95.00
    document["encounters"][2]["lines"][0]["adjusted"] = "-15.00"
    document["encounters"][4]["service_date"] = "2026-07-32"
    document["receipts"][1]["amount"] = 25
    document["receipts"][3]["applications"][1]["encounter"] = "9999"
    document["statements"][0]["guarantor"] = "0000"
    document["appointments"][2]["id"] = document["appointments"][0]["id"]

    problems = refused(document)

    assert paths(problems) == [
        "encounters[2].lines[0].adjusted",
        "encounters[4].service_date",
        "receipts[1].amount",
        "appointments[2].id",
        "statements[0].guarantor",
        "receipts[3].applications[1].encounter",
    ]
    assert Practice.objects.get(external_id="northside").name == "Northside Family Medicine"


def test_a_valid_document_after_a_refused_one_is_imported_whole(northside):
    document = example()
    document["guarantors"][0]["email"] = "pat@changed.example.com"
    refused(document | {"unknown": []})
    assert Guarantor.objects.get(external_id="2010").email == "pat.lee@example.com"
    run_import(document)
    assert Guarantor.objects.get(external_id="2010").email == "pat@changed.example.com"


def test_the_list_of_problems_is_capped():
    document = only(guarantors=[{"id": str(n)} for n in range(600)])
    problems = refused(document)
    assert len(problems) == 1001
    assert problems[-1] == {"path": "", "message": "too many problems; the rest are not listed"}


# --- documents built to hurt the parser ------------------------------------------------------


@pytest.mark.parametrize(
    "number", [b"9" * 5000, b"1." + b"9" * 5000, b"-" + b"1" * 4301], ids=["int", "decimal", "neg"]
)
def test_a_number_too_long_to_convert_is_refused_not_crashed_on(number):
    raw = b'{"practice": {"id": "p1", "name": "One"}, "facilities": [{"id": ' + number + b"}]}"
    assert refused(raw) == [
        {"path": "", "message": "malformed JSON: a number has more than 4000 digits"}
    ]


def test_a_long_run_of_digits_split_across_reads_is_caught():
    # The parser reads 64 KiB at a time; the run straddles the first boundary.
    padding = b" " * (65536 - 4000)
    raw = b'{"practice": {"id": "p1", "name": "One"},' + padding + b'"x": ' + b"7" * 8000 + b"}"
    assert refused(raw) == [
        {"path": "x", "message": "malformed JSON: a number has more than 4000 digits"}
    ]


@pytest.mark.parametrize("depth", [33, 100_000])
def test_values_nested_absurdly_deep_are_refused_quickly(depth):
    value = b"[" * depth + b"]" * depth
    raw = b'{"practice": {"id": "p1", "name": "One"}, "facilities": [{"id": ' + value + b"}]}"
    assert refused(raw) == [{"path": "facilities[0]", "message": "values nest more than 32 deep"}]


def test_a_large_valid_number_is_just_a_wrong_type():
    number = b"9" * 4000
    raw = b'{"practice": {"id": "p1", "name": "One"}, "facilities": [{"name": ' + number + b"}]}"
    assert refused(raw) == [
        {"path": "facilities[0].id", "message": "Field required"},
        {"path": "facilities[0].name", "message": "Input should be a valid string"},
    ]
