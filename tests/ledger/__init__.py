"""Ledger tests. The helpers below serve the import tests (here and in tests/api): the example
document of docs/import.md, snapshots of every table, and a way to assert a refusal."""

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db.models import Model

from pops.core.audit import Actor
from pops.core.models import AuditEvent
from pops.ledger.importing.importer import ImportRejected, import_document
from pops.ledger.models import Practice
from pops.ledger.services.replay import differences

EXAMPLE_PATH = Path(__file__).resolve().parents[2] / "docs" / "examples" / "import-example.json"


def example() -> dict[str, Any]:
    """A fresh copy of docs/examples/import-example.json, to import as it is or to change."""
    return copy.deepcopy(_EXAMPLE)


_EXAMPLE: dict[str, Any] = json.loads(EXAMPLE_PATH.read_text())


def _models(*, audit: bool) -> list[type[Model]]:
    return [
        model
        for model in apps.get_models()
        if audit or model is not AuditEvent
        if model._meta.managed and not model._meta.proxy
    ]


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table but the audit log, in id order."""
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for model in _models(audit=False)
    }


def row_counts() -> dict[str, int]:
    """How many rows each table holds, the audit log included."""
    return {model._meta.label: model._default_manager.count() for model in _models(audit=True)}


def refused(document: dict[str, Any] | bytes, practice: Practice | None = None) -> list[dict]:
    """Import a document that must be refused; asserts nothing was written and returns the
    problems as `{"path", "message"}` dicts."""
    before = row_counts()
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    with pytest.raises(ImportRejected) as rejected:
        import_document(io.BytesIO(raw), actor=Actor.command("import"), practice=practice)
    assert row_counts() == before
    return [problem.as_dict() for problem in rejected.value.problems]


def paths(problems: list[dict]) -> list[str]:
    return [problem["path"] for problem in problems]


def assert_the_ledger_replays() -> None:
    """Every stored figure equals a replay of the ledger entries (DESIGN.md rule 6)."""
    for practice in Practice.objects.all():
        assert [str(d) for d in differences(practice.pk)] == []
