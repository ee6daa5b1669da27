import io
import json
import os
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django_tasks_db.management.commands import db_worker
from django_tasks_db.management.commands.db_worker import Worker
from hypothesis import settings

from pops.api.keys import create_key
from pops.core.audit import Actor
from pops.ledger.importing.importer import ImportResult, import_document
from pops.ledger.models import Practice

# Hypothesis profiles for every property test and state machine: "ci" (the default, about 200
# examples), "dev" (quick), "thorough" (ten times CI). Pick one with HYPOTHESIS_PROFILE.
settings.register_profile("ci", max_examples=200, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def run_import(document: dict[str, Any], practice: Practice | None = None) -> ImportResult:
    """Import a document given as a dict, as `pops import` would."""
    return import_document(
        io.BytesIO(json.dumps(document).encode()),
        actor=Actor.command("import"),
        practice=practice,
    )


def run_queued_tasks() -> None:
    """Run every queued background task (the emailed receipts), as `pops db_worker --batch`
    does, in this process and on this connection. The worker's connection recycling is held
    off, as Django's test client holds off a request's: it would close the connection that
    holds the test's transaction."""
    worker = Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="tests",
        excluded_queue_names=[],
    )
    with mock.patch.object(db_worker, "close_old_connections", return_value=None):
        worker.run()


class ApiClient:
    """A test client that sends a practice's API key."""

    def __init__(self, key: str):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {key}"}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers, **kwargs)

    def post(self, path: str, body: Any = None, raw: bytes | None = None, **kwargs: Any) -> Any:
        data = raw if raw is not None else json.dumps(body)
        return self.client.post(
            path, data=data, content_type="application/json", headers=self.headers, **kwargs
        )


@pytest.fixture
def api_for():
    """`api_for(practice)` gives an ApiClient holding a fresh key of that practice."""

    def make(practice: Practice) -> ApiClient:
        return ApiClient(create_key(practice, "tests", actor=Actor.command("tests")))

    return make
