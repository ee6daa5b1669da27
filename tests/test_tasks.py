"""Background tasks queued in the database (pops.core.tasks): POPS's backend writes the row the
library writes, and the library's worker runs it."""

import datetime as dt

import pytest
from django.test import override_settings
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from pops.core.tasks import DatabaseBackend
from tests.conftest import run_queued_tasks

pytestmark = pytest.mark.django_db

RAN: list[tuple[int, str]] = []


@task(priority=3, queue_name="default")
def remember(number: int, word: str) -> str:
    RAN.append((number, word))
    return f"{number} {word}"


LIBRARY = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
FIELDS = [f.attname for f in DBTaskResult._meta.concrete_fields if f.attname != "id"]


def test_the_default_backend_is_pops_own():
    assert isinstance(remember.get_backend(), DatabaseBackend)


def test_a_queued_row_is_the_one_the_library_writes_and_its_worker_runs_it():
    ours = remember.enqueue(7, "seven")
    with override_settings(TASKS=LIBRARY):
        theirs = remember.enqueue(7, "seven")

    mine, library = (DBTaskResult.objects.get(pk=r.id) for r in (ours, theirs))
    assert abs(mine.enqueued_at - library.enqueued_at) < dt.timedelta(seconds=5)
    skip = {"enqueued_at"}
    assert {f: getattr(mine, f) for f in FIELDS if f not in skip} == {
        f: getattr(library, f) for f in FIELDS if f not in skip
    }
    assert mine.status == "READY"
    assert mine.args_kwargs == {"args": [7, "seven"], "kwargs": {}}
    assert mine.priority == 3

    RAN.clear()
    run_queued_tasks()

    assert RAN == [(7, "seven"), (7, "seven")]
    mine.refresh_from_db()
    assert (mine.status, mine.return_value) == ("SUCCESSFUL", "7 seven")
