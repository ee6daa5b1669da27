"""A fault switch for tests: make the Sandbox fail the way a real gateway connection does.

    with faults.inject(Fault.TIMEOUT_AFTER_COMMIT):
        gateway.charge(request)   # charged, but raises GatewayUnavailable

The switch is process-local (all threads of the process see it) and meant for tests and demos
only; it is never a way to coordinate several processes.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class Fault(enum.StrEnum):
    TIMEOUT_BEFORE_COMMIT = "timeout_before_commit"  # processed, rolled back, no answer
    TIMEOUT_AFTER_COMMIT = "timeout_after_commit"  # processed and committed, no answer
    HTTP_500_AFTER_COMMIT = "http_500_after_commit"  # processed and committed, answer is a 500
    CONNECTION_RESET = "connection_reset"  # the connection drops before the gateway acts
    CONNECTION_REFUSED = "connection_refused"  # nothing was sent: certainly not charged


class Operation(enum.StrEnum):
    CHARGE = "charge"
    QUERY = "query"
    VOID = "void"
    REFUND = "refund"
    REMOVE_STORED_CARD = "remove_stored_card"


_lock = threading.Lock()
_active: dict[Operation, Fault] = {}


@contextmanager
def inject(
    fault: Fault | str, operations: Iterable[Operation | str] = (Operation.CHARGE,)
) -> Iterator[None]:
    """Every call of `operations` fails with `fault` while the block runs."""
    chosen = Fault(fault)
    names = [Operation(op) for op in operations]
    with _lock:
        previous = {name: _active.get(name) for name in names}
        _active.update(dict.fromkeys(names, chosen))
    try:
        yield
    finally:
        with _lock:
            for name, before in previous.items():
                if before is None:
                    _active.pop(name, None)
                else:
                    _active[name] = before


def current(operation: Operation) -> Fault | None:
    with _lock:
        return _active.get(operation)
