"""The one clock: instants are UTC, business dates are practice-local."""

import datetime as dt
from zoneinfo import ZoneInfo

from django.utils import timezone


def now() -> dt.datetime:
    return timezone.now()


def local_date(time_zone: str, at: dt.datetime | None = None) -> dt.date:
    """The business date in `time_zone` at the instant `at` (default: now)."""
    return (at or now()).astimezone(ZoneInfo(time_zone)).date()
