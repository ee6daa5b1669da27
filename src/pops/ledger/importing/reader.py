"""Reads an import document as a stream: one top-level section item at a time, so a large file
never sits in memory as one parsed tree."""

import itertools
import re
from collections.abc import Collection, Iterator
from typing import IO, Any

import ijson


class MalformedDocument(ValueError):
    """The bytes are not a JSON object. `path` names where reading stopped: the section or
    section item being read, or "" between sections."""

    def __init__(self, message: str, path: str = ""):
        super().__init__(message)
        self.path = path


def _detail(error: Exception) -> str:
    """The first line of the parser's message (it may come as bytes)."""
    text = error.args[0] if error.args else str(error)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text).split("\n")[0].split())


# Python converts integers of at most 4300 digits; the C parser mishandles the error a longer
# one raises (a SystemError, or a crash), so such a run of digits never reaches it.
MAX_DIGITS = 4000
_TOO_MANY_DIGITS = re.compile(rb"[0-9]{%d}" % (MAX_DIGITS + 1))


class _DigitGuard:
    """The stream as the parser reads it, refusing a run of more than MAX_DIGITS digits (no
    value of an import document is that long)."""

    def __init__(self, stream: IO[bytes]):
        self.stream = stream
        self.tail = b""

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        window = self.tail + chunk
        if _TOO_MANY_DIGITS.search(window):
            raise MalformedDocument(f"malformed JSON: a number has more than {MAX_DIGITS} digits")
        self.tail = window[-MAX_DIGITS:]
        return chunk


# An import document nests five deep (document, section, item, lines, line); anything far
# deeper is refused before it is built.
MAX_DEPTH = 32


def _build(
    first_event: str, first_value: Any, events: Iterator[tuple[str, Any]]
) -> tuple[Any, bool]:
    """The value that starts with `first_event`, built from the events that follow, and
    whether every text in it is printable ASCII (`schema.validate_item` takes a faster way then).

    The same values ijson's ObjectBuilder makes (a repeated key keeps its last value), built
    here without a method call per event: this is the innermost loop of an import."""
    if first_event == "start_map":
        root: Any = {}
    elif first_event == "start_array":
        root = []
    else:
        plain = type(first_value) is not str or (
            first_value.isascii() and first_value.isprintable()
        )
        return first_value, plain
    plain = True
    stack: list[Any] = [root]
    container: Any = root
    key: Any = None
    for event, value in events:
        if event == "map_key":
            key = value
            continue
        if event == "end_map" or event == "end_array":
            stack.pop()
            if not stack:
                return root, plain
            container = stack[-1]
            continue
        if event == "start_map":
            value = {}
        elif event == "start_array":
            value = []
        elif event == "string" and plain:
            plain = value.isascii() and value.isprintable()
        if type(container) is dict:
            container[key] = value
        else:
            container.append(value)
        if event == "start_map" or event == "start_array":
            stack.append(value)
            if len(stack) > MAX_DEPTH:
                raise MalformedDocument(f"values nest more than {MAX_DEPTH} deep")
            container = value
    raise StopIteration


def read_sections(
    stream: IO[bytes], lists: Collection[str]
) -> Iterator[tuple[str, int | None, Any, bool]]:
    """Yield `(section, index, value, plain)`: each item of a top-level list named in `lists`
    with its index, or any other top-level value whole with index None; `plain` tells that
    every text in the value is printable ASCII. Raises MalformedDocument on bad JSON.

    The parser's basic events carry no path prefix: building prefixes costs time in the square
    of the nesting depth, and that parser crashes on an integer too long to convert."""
    events = ijson.basic_parse(_DigitGuard(stream), use_float=False)
    path, after = "", ""
    try:
        try:
            event, _ = next(events)
        except StopIteration:
            raise MalformedDocument("the document is empty") from None
        except ijson.JSONError as error:
            if "premature EOF" in _detail(error):
                raise MalformedDocument("the document is empty") from None
            raise
        if event != "start_map":
            raise MalformedDocument("the document must be a JSON object")
        for event, key in events:
            if event == "end_map":
                break
            path = key
            event, value = next(events)
            if event != "start_array" or key not in lists:
                yield key, None, *_build(event, value, events)
                path, after = "", key
                continue
            for index in itertools.count():
                path = f"{key}[{index}]"
                event, value = next(events)
                if event == "end_array":
                    break
                yield key, index, *_build(event, value, events)
            path, after = "", key
        for _ in events:
            raise MalformedDocument("unexpected content after the document")
    except MalformedDocument as error:
        error.path = error.path or path
        raise
    except ijson.JSONError as error:
        where = f" (after {after!r})" if after and not path else ""
        raise MalformedDocument(f"malformed JSON{where}: {_detail(error)}", path) from None
    except StopIteration:
        raise MalformedDocument("malformed JSON: the document ends too early", path) from None
