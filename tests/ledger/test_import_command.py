"""`pops import FILE`: the same import as the API, from a file or standard input."""

import io
import json
import sys

import pytest
from django.core.management import CommandError, call_command

from pops.core.models import AuditEvent
from pops.ledger.models import Guarantor, Practice
from tests.ledger import EXAMPLE_PATH, row_counts

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_imports_the_example_document_and_says_what_it_did():
    out, _ = run(str(EXAMPLE_PATH))

    lines = out.splitlines()
    assert lines[0].startswith("Imported into practice northside in ")
    assert lines[1].split() == ["facilities", "2", "created", "0", "updated", "0", "unchanged"]
    assert lines[7].split() == ["lines", "8", "created", "0", "updated", "0", "unchanged"]
    assert lines[-1].split() == ["ledger", "entries", "20", "written"]
    assert Guarantor.objects.filter(practice__external_id="northside").count() == 4
    event = AuditEvent.objects.get(action="ledger.import.completed")
    assert (event.actor_type, event.actor_label) == ("command", "pops import")


def test_the_command_run_twice_reports_everything_unchanged():
    run(str(EXAMPLE_PATH))
    out, _ = run(str(EXAMPLE_PATH))
    assert "guarantors                  0 created        0 updated        4 unchanged" in out
    assert out.splitlines()[-1].split() == ["ledger", "entries", "0", "written"]


def test_a_refused_document_exits_2_with_the_list_of_problems_on_stdout(tmp_path):
    document = json.loads(EXAMPLE_PATH.read_text())
    document["encounters"][2]["lines"][0]["billed"] = "80.001"
    document["patients"][0]["guarantor"] = "0000"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    before = row_counts()
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(SystemExit) as exit:
        call_command("import", str(path), stdout=out, stderr=err)

    assert exit.value.code == 2
    assert json.loads(out.getvalue()) == {
        "errors": [
            {
                "path": "encounters[2].lines[0].billed",
                "message": "must be a non-negative decimal string with at most two decimals, "
                'like "150.00"',
            },
            {
                "path": "patients[0].guarantor",
                "message": "no guarantor '0000' in this document or in practice 'northside'",
            },
        ]
    }
    assert "Import refused: 2 problem(s); nothing written." in err.getvalue()
    assert row_counts() == before


def test_malformed_json_exits_2_too(tmp_path):
    path = tmp_path / "broken.json"
    path.write_bytes(b'{"practice": {"id": "p1", "name": "One"')
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit:
        call_command("import", str(path), stdout=out, stderr=io.StringIO())
    assert exit.value.code == 2
    assert json.loads(out.getvalue())["errors"] == [
        {"path": "practice", "message": "malformed JSON: parse error: premature EOF"}
    ]
    assert not Practice.objects.exists()


def test_a_dash_reads_standard_input(monkeypatch):
    stdin = io.TextIOWrapper(io.BytesIO(EXAMPLE_PATH.read_bytes()))
    monkeypatch.setattr(sys, "stdin", stdin)

    out, _ = run("-")

    assert out.startswith("Imported into practice northside")
    assert Practice.objects.filter(external_id="northside").exists()
    assert not stdin.closed  # standard input is the caller's, left open


def test_a_missing_file_is_a_clear_command_error(tmp_path):
    missing = tmp_path / "nowhere.json"
    with pytest.raises(CommandError, match=f"Cannot read {missing}: No such file or directory"):
        run(str(missing))


def test_a_directory_is_a_clear_command_error(tmp_path):
    with pytest.raises(CommandError, match=r"Cannot read .*: Is a directory"):
        run(str(tmp_path))
