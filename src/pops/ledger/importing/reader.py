"""Reads an import document as a stream: one top-level section item at a time, so a large file
never sits in memory as one parsed tree."""

import itertools
from collections.abc import Collection, Iterator
from typing import IO, Any

import ijson

_OPEN = ("start_map", "start_array")
_CLOSE = ("end_map", "end_array")


class MalformedDocument(ValueError):
    """The bytes are not a JSON object."""


def _build(first_event: str, first_value: Any, events: Iterator[tuple[str, str, Any]]) -> Any:
    builder = ijson.ObjectBuilder()
    builder.event(first_event, first_value)
    depth = 1 if first_event in _OPEN else 0
    while depth:
        _, event, value = next(events)
        builder.event(event, value)
        if event in _OPEN:
            depth += 1
        elif event in _CLOSE:
            depth -= 1
    return builder.value


def read_sections(
    stream: IO[bytes], lists: Collection[str]
) -> Iterator[tuple[str, int | None, Any]]:
    """Yield `(section, index, value)`: each item of a top-level list named in `lists` with
    its index, or any other top-level value whole with index None. Raises MalformedDocument
    on bad JSON."""
    events = ijson.parse(stream, use_float=False)
    try:
        try:
            _, event, _ = next(events)
        except StopIteration:
            raise MalformedDocument("the document is empty") from None
        if event != "start_map":
            raise MalformedDocument("the document must be a JSON object")
        for _, event, key in events:
            if event == "end_map":
                break
            _, event, value = next(events)
            if event != "start_array" or key not in lists:
                yield key, None, _build(event, value, events)
                continue
            for index in itertools.count():
                _, event, value = next(events)
                if event == "end_array":
                    break
                yield key, index, _build(event, value, events)
        for _ in events:
            raise MalformedDocument("unexpected content after the document")
    except ijson.JSONError as error:
        detail = " ".join(str(error).split("\n")[0].split())
        raise MalformedDocument(f"malformed JSON: {detail}") from None
    except StopIteration:
        raise MalformedDocument("malformed JSON: the document ends too early") from None
