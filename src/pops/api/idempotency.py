"""`Idempotency-Key` for API writes that move money.

    status, body = idempotency.run(request, "api:receipts.refund", payload, work)

- The key is required: a request without one (or with one longer than 255 characters, or
  holding control characters) answers 400 and does nothing.
- The claim is atomic: the first request inserts an `IdempotentRequest` row (its own short
  transaction, committed before any work); the unique constraint on (practice, operation, key)
  decides between concurrent requests, on any number of processes.
- The same key with the same request (operation, path and body: the fingerprint) replays the
  stored answer, without doing the work again.
- The same key with another request answers 422; while the first request is still being
  worked on, 409. A claim left in progress for longer than `STALE_AFTER` was abandoned by a
  process that died, and the next request with the key takes it over.
- Only a success is kept. A request refused (validation, a rule, an unknown receipt, the
  gateway unavailable) deletes its claim, so the key is not used up and the client may retry
  it, or send another request with it. Services called here are idempotent themselves where
  money may have moved (a refund keeps its own claim), so a retry after an error is safe.
"""

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest

from pops.api.auth import practice_of
from pops.api.errors import ApiError
from pops.api.models import IdempotentRequest
from pops.core import clock
from pops.ledger.models import Practice

HEADER = "Idempotency-Key"
KEY_MAX_LENGTH = 255
STALE_AFTER = dt.timedelta(minutes=10)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

State = IdempotentRequest.State
Work = Callable[[], tuple[int, Any]]


@dataclass(frozen=True)
class _Stored:
    status: int
    body: Any


def key_of(request: HttpRequest) -> str:
    """The request's Idempotency-Key; 400 when it is missing or unusable."""
    key = request.headers.get(HEADER, "")
    if not key.strip():
        raise ApiError(400, "send an Idempotency-Key header (a UUID is a good key)", HEADER)
    if len(key) > KEY_MAX_LENGTH:
        raise ApiError(400, f"must be at most {KEY_MAX_LENGTH} characters", HEADER)
    if _CONTROL.search(key):
        raise ApiError(400, "must not contain control characters", HEADER)
    return key


def fingerprint(operation: str, payload: Any) -> str:
    """A digest of the request as the client sent it (key order and spacing do not count)."""
    return IdempotentRequest.digest(
        json.dumps([operation, payload], sort_keys=True, separators=(",", ":"), default=str)
    )


def run(request: HttpRequest, operation: str, payload: Any, work: Work) -> tuple[int, Any]:
    """Do `work` once per key: answer its (status, body), or the stored answer of the first
    request with the key. `payload` is everything that makes the request what it is (path
    parameters and body). Errors `work` raises release the claim and propagate."""
    key = key_of(request)
    practice = practice_of(request)
    claimed = claim(practice, operation, key, fingerprint(operation, payload))
    if isinstance(claimed, _Stored):
        return claimed.status, claimed.body
    try:
        status, body = work()
    except BaseException:
        release(claimed)
        raise
    if 200 <= status < 300:
        complete(claimed, status, body)
    else:
        release(claimed)
    return status, body


def claim(practice: Practice, operation: str, key: str, print_: str) -> IdempotentRequest | _Stored:
    """Insert the claim, or answer what the first request with the key decides: its stored
    answer (done, same request), 422 (another request) or 409 (still in progress)."""
    for _ in range(3):
        try:
            with transaction.atomic():
                return IdempotentRequest.objects.create(
                    practice=practice, operation=operation, key=key, fingerprint=print_
                )
        except IntegrityError:
            pass
        found = IdempotentRequest.objects.filter(
            practice=practice, operation=operation, key=key
        ).first()
        if found is None:
            continue  # released a moment ago: claim it again
        if found.fingerprint != print_:
            raise ApiError(422, "this Idempotency-Key was already used for another request", HEADER)
        if found.state == State.DONE:
            return _Stored(found.response_status or 200, found.response_body)
        if found.updated_at < clock.now() - STALE_AFTER and _take_over(found):
            return found
        raise ApiError(
            409, "a request with this Idempotency-Key is still in progress; retry shortly", HEADER
        )
    raise ApiError(409, "a request with this Idempotency-Key is still in progress", HEADER)


def _take_over(found: IdempotentRequest) -> bool:
    """Take an abandoned claim for this request; False when another request took it first."""
    now = clock.now()
    taken = IdempotentRequest.objects.filter(
        pk=found.pk, state=found.state, updated_at=found.updated_at
    ).update(state=State.IN_PROGRESS, updated_at=now)
    found.updated_at = now
    return bool(taken)


def complete(claimed: IdempotentRequest, status: int, body: Any) -> None:
    """Keep the answer, for replays."""
    claimed.state = State.DONE
    claimed.response_status = status
    claimed.response_body = body
    claimed.save(update_fields=["state", "response_status", "response_body", "updated_at"])


def release(claimed: IdempotentRequest) -> None:
    """Forget the claim: the key may be used again."""
    IdempotentRequest.objects.filter(pk=claimed.pk).delete()
