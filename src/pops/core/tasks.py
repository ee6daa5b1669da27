"""Queueing background tasks (django-tasks) as part of a database transaction.

`enqueue_on_commit(task, *args, what=...)` makes a task due exactly when the current transaction
commits:

- with the database backend (the default, `django_tasks_db`) the task's row is written now, in
  the same transaction, so it exists if and only if the transaction commits (a transactional
  outbox: no task is lost to a crash between the commit and the enqueue, and none is queued for
  work that was rolled back);
- with any other backend (the immediate one, which runs the task at once, or a queue outside
  this database) the task is enqueued once the transaction has committed.

A task that cannot be queued is logged (as `what`: say which, never with personal data) and
dropped, since what follows a transaction never undoes it; only a database error, which has
broken the transaction already, reaches its owner (who rolls back, and may retry).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError, transaction
from django_tasks.base import Task
from django_tasks_db import backend
from django_tasks_db.compat import normalize_json
from django_tasks_db.models import DBTaskResult, get_date_max

from pops.core import rows

logger = logging.getLogger("pops.tasks")


class DatabaseBackend(backend.DatabaseBackend):
    """django-tasks-db's backend (the default, settings "Background tasks"), writing a task's row
    with one prepared INSERT (core/rows.py) instead of the ORM's `create`, which cost a payment
    more than the rest of its settling transaction's Python. The row is the one the library
    writes, field for field (`tests/test_tasks.py` compares them), and its worker runs it."""

    def _task_to_db_task(self, task: Any, args: Any, kwargs: Any) -> DBTaskResult:
        result: DBTaskResult[Any, Any] = DBTaskResult(
            id=self._get_id(),
            args_kwargs=normalize_json({"args": args, "kwargs": kwargs}),
            priority=task.priority,
            task_path=task.module_path,
            queue_name=task.queue_name,
            # (the library's pre_save signal sets this; a prepared INSERT sends no signal)
            run_after=task.run_after or get_date_max(),
            backend_name=self.alias,
        )
        rows.insert(result)
        return result


def enqueue_on_commit(task: Task[Any, Any], *args: Any, what: str) -> None:
    """Make `task(*args)` due when the current transaction commits (see the module)."""
    if isinstance(task.get_backend(), backend.DatabaseBackend):
        try:
            task.enqueue(*args)
        except DatabaseError:
            raise
        except Exception:
            logger.exception("could not queue %s", what)
        return
    transaction.on_commit(lambda: _enqueue(task, args, what))


def _enqueue(task: Task[Any, Any], args: tuple[Any, ...], what: str) -> None:
    try:
        task.enqueue(*args)
    except Exception:
        logger.exception("could not queue %s", what)
