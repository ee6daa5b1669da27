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
from django_tasks_db import DatabaseBackend

logger = logging.getLogger("pops.tasks")


def enqueue_on_commit(task: Task[Any, Any], *args: Any, what: str) -> None:
    """Make `task(*args)` due when the current transaction commits (see the module)."""
    if isinstance(task.get_backend(), DatabaseBackend):
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
