"""Small documents shared by tests that need a practice with some data."""

from typing import Any


def small_document(practice_id: str = "p1") -> dict[str, Any]:
    return {
        "practice": {"id": practice_id, "name": "Practice One", "time_zone": "America/Chicago"},
        "facilities": [{"id": "F1", "name": "Main Street"}],
        "providers": [{"id": "D1", "name": "Dr. Ada Ames"}],
        "guarantors": [{"id": "2010", "first_name": "Pat", "last_name": "Lee"}],
        "patients": [{"id": "P1", "guarantor": "2010", "first_name": "Pat", "last_name": "Lee"}],
        "encounters": [
            {
                "number": "100",
                "patient": "P1",
                "facility": "F1",
                "provider": "D1",
                "service_date": "2026-09-01",
                "lines": [{"line": 1, "billed": "150.00", "insurance_paid": "100.00"}],
            }
        ],
    }
