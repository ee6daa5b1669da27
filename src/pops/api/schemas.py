"""Schemas every part of the API shares."""

from typing import Any

from ninja import Schema


class ErrorItem(Schema):
    path: str
    message: str


class Errors(Schema):
    """Every error answer: `{"errors": [{"path", "message"}]}`."""

    errors: list[ErrorItem]


def with_errors(ok: dict[int, Any], *codes: int) -> dict[int, Any]:
    """An operation's responses: its successes, 400, 401 and 422 (every operation can answer
    them), and the other error codes it names."""
    return {**ok, **{code: Errors for code in (400, 401, 422, *codes)}}
