"""JSON at POPS's edges: the error body every JSON answer uses, and reading JSON from outside,
where whatever `json.loads` refuses, or cannot finish, is one error.

`json.loads` raises ValueError for text that is not JSON, and RecursionError for a document
nested deeper than Python's recursion limit (about a thousand levels: "[[[[...]]]]" of a few
kilobytes). Both are the sender's mistake, so both must be a clear 400, never a 500.

Bytes are read as UTF-8 only, as RFC 8259 asks of JSON between systems: `json.loads` would also
take UTF-16 and UTF-32, whose digits the card-number guard (which looks at the raw bytes) does
not see as a run.
"""

from __future__ import annotations

import json
from typing import Any

SERVER_ERROR = "something went wrong on our side"


def error_body(path: str, message: str) -> dict[str, list[dict[str, str]]]:
    """`{"errors": [{"path", "message"}]}`: what every JSON error answers."""
    return {"errors": [{"path": path, "message": message}]}


class NotJson(ValueError):
    """The text is not a JSON document POPS can read."""


def parse(text: bytes | str) -> Any:
    """The document in `text` (UTF-8 when bytes), or NotJson."""
    try:
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except (ValueError, RecursionError):  # (UnicodeDecodeError is a ValueError)
        raise NotJson("not a JSON document") from None
