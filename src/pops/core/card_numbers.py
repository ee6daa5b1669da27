"""Telling a card number in text (S-2, S-3), for the card-number guard and the log filter.

What counts as a card number: a run of 13 to 19 digits, possibly in groups separated by single
spaces or dashes, that passes the Luhn check (see `pops.core.pan_guard` for the trade-offs).
This module imports nothing from Django so logging configuration can use it.
"""

from __future__ import annotations

import logging
import re
from collections import deque

# Where a card number can be: 13+ characters of digits, spaces and dashes, starting with a digit.
_CANDIDATE = re.compile(rb"[0-9][0-9 -]{12,}")
# Within one, a run of digit groups joined by single spaces or dashes (looked at 64 groups at a
# time: a card number has at most 19 digits, and a longer run is no honest request's), and its
# groups.
_RUN = re.compile(rb"[0-9]+(?:[ -][0-9]+){0,63}")
_GROUP = re.compile(rb"[0-9]+")
# Steps of the closer look (runs of 13+ digits, their groups, Luhn checks) one request may take.
SCAN_BUDGET = 100_000


class ScanGaveUp(Exception):
    """The body holds more long digit runs than one request may make the guard look at."""


def luhn_valid(digits: bytes) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = char - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _digits(text: bytes) -> int:
    return len(text) - text.count(b" ") - text.count(b"-")


class _Scan:
    """One request's look for a card number; its work is bounded by SCAN_BUDGET (the quick
    pass over candidates is linear in the body's size, the closer look is not)."""

    def __init__(self, budget: int):
        self.budget = budget

    def _spend(self) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise ScanGaveUp

    def holds(self, data: bytes) -> bool:
        for candidate in _CANDIDATE.finditer(data):
            text = candidate.group()
            if _digits(text) < 13:
                continue
            for run in _RUN.finditer(text):
                self._spend()
                if self._run_holds(run.group()):
                    return True
        return False

    def _run_holds(self, run: bytes) -> bool:
        digits = _digits(run)
        if digits < 13:
            return False
        if digits == len(run):  # one unbroken run: a card number, or an id if over 19 digits
            return digits <= 19 and luhn_valid(run)
        # Groups: every window of whole groups holding 13-19 digits is a possible card number.
        window: deque[bytes] = deque()
        size = 0
        for match in _GROUP.finditer(run):
            self._spend()
            group = match.group()
            window.append(group)
            size += len(group)
            while size > 19:
                size -= len(window.popleft())
            tail = 0
            for index in range(len(window) - 1, -1, -1):
                tail += len(window[index])
                if tail >= 13:
                    self._spend()
                    if luhn_valid(b"".join(list(window)[index:])):
                        return True
        return False


def holds_card_number(data: bytes, budget: int = SCAN_BUDGET) -> bool:
    """True when `data` holds a Luhn-valid run of 13-19 digits (see the module docstring).
    Raises ScanGaveUp when it would take more than `budget` steps to tell."""
    return _Scan(budget).holds(data)


class WithholdCardNumbers(logging.Filter):
    """Keeps a card number typed into a URL path out of Django's request log lines (S-3).

    The guard passes paths on (ids live there), so a mistyped `/receipts/4111…` answers 404 and
    Django logs "Not Found: <path>" with the request on the record. Set on the `django.request`
    and `django.server` loggers, this rewrites such a record to name no path and drops the request.
    """

    WITHHELD = "(withheld: it holds a card number)"

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
            request = getattr(record, "request", None)
            path = getattr(request, "get_full_path", lambda: "")()
            suspect = holds_card_number(f"{text} {path}".encode("utf-8", "replace"))
        except ScanGaveUp:
            suspect = True
        if suspect:
            record.msg = f"{record.levelname.title()}: request {self.WITHHELD}"
            record.args = ()
            if request is not None:
                record.request = self.WITHHELD
        return True
