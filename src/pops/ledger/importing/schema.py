"""The import document's items, as pydantic models: one definition for the command, the API
and the OpenAPI schema. Amounts arrive as decimal strings and leave here as integer cents."""

import datetime as dt
import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from pops.core.money import AMOUNT_HINT, AmountError, parse_amount
from pops.ledger.models import ID_LENGTH

# An import repeats the same few amounts and dates many times: each text is parsed once
# (only valid ones are kept; a bad one is refused by the parser each time, with its message).
_CACHE_LIMIT = 100_000
_amounts: dict[str, int] = {}
_dates: dict[str, dt.date] = {}


def _amount(value: Any) -> int:
    if type(value) is str:
        cents = _amounts.get(value)
        if cents is not None:
            return cents
    try:
        cents = parse_amount(value)
    except AmountError:
        raise PydanticCustomError("amount", f"must be {AMOUNT_HINT}") from None
    if len(_amounts) >= _CACHE_LIMIT:
        _amounts.clear()
    _amounts[value] = cents
    return cents


def _iso_date(value: Any) -> dt.date:
    if type(value) is str:
        date = _dates.get(value)
        if date is not None:
            return date
        try:
            date = dt.date.fromisoformat(value)
        except ValueError:
            pass
        else:
            if len(_dates) >= _CACHE_LIMIT:
                _dates.clear()
            _dates[value] = date
            return date
    raise PydanticCustomError("date", "must be a date like 2026-11-26")


# Far enough from datetime.min and .max that a time converts to UTC (or to any time zone).
_EARLIEST, _LATEST = dt.datetime(2, 1, 1), dt.datetime(9998, 12, 31)


def _iso_datetime(value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if not _EARLIEST <= moment.replace(tzinfo=None) <= _LATEST:
                raise PydanticCustomError("datetime", "must be between the years 2 and 9998")
            return moment
    raise PydanticCustomError("datetime", "must be a date and time like 2026-11-26T09:30:00")


def _stripped(value: Any) -> Any:
    """Text is stored without surrounding spaces (stripped before its length is checked)."""
    return value.strip() if isinstance(value, str) else value


def _required_text(value: Any) -> Any:
    value = _stripped(value)
    if value == "":
        raise PydanticCustomError("text", "must not be empty")
    return value


def _blank_if_null(value: Any) -> Any:
    return "" if value is None else _stripped(value)


def _id(value: Any) -> Any:
    if not isinstance(value, str):
        raise PydanticCustomError("id", 'must be a string, like "2010"')
    if not value.strip():
        raise PydanticCustomError("id", "must not be empty")
    return value.strip()


Id = Annotated[str, BeforeValidator(_id), StringConstraints(min_length=1, max_length=ID_LENGTH)]
Amount = Annotated[
    int,
    BeforeValidator(_amount),
    WithJsonSchema({"type": "string", "pattern": r"^\d{1,12}(\.\d{1,2})?$", "example": "150.00"}),
]
IsoDate = Annotated[
    dt.date, BeforeValidator(_iso_date), WithJsonSchema({"type": "string", "format": "date"})
]
IsoDateTime = Annotated[
    dt.datetime,
    BeforeValidator(_iso_datetime),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Name = Annotated[
    str, BeforeValidator(_required_text), StringConstraints(min_length=1, max_length=100)
]


def optional_text(max_length: int) -> Any:
    return Annotated[
        str,
        BeforeValidator(_blank_if_null),
        StringConstraints(max_length=max_length),
        WithJsonSchema({"type": ["string", "null"], "maxLength": max_length}),
    ]


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def plain_text(value: Any) -> Any:
    """Text must be storable anywhere: no control characters, no lone surrogates."""
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise PydanticCustomError("text", "must not contain control characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise PydanticCustomError("text", "must be valid Unicode text") from None
    return value


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def storable_text(cls, value: Any) -> Any:
        return plain_text(value)


class PracticeIn(Item):
    id: Id
    name: Annotated[
        str, BeforeValidator(_required_text), StringConstraints(min_length=1, max_length=200)
    ]
    time_zone: str = "America/New_York"

    @field_validator("time_zone")
    @classmethod
    def known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError(
                "time_zone", "must be an IANA time zone, like America/Chicago"
            ) from None
        return value


class NamedIn(Item):
    id: Id
    name: Annotated[
        str, BeforeValidator(_required_text), StringConstraints(min_length=1, max_length=200)
    ]


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{7,20}$")


class GuarantorIn(Item):
    id: Id
    first_name: Name
    preferred_name: optional_text(100) = ""  # type: ignore[valid-type]
    last_name: Name
    email: optional_text(254) = ""  # type: ignore[valid-type]
    mobile: optional_text(32) = ""  # type: ignore[valid-type]
    text_opt_out: StrictBool = False

    @field_validator("email")
    @classmethod
    def plausible_email(cls, value: str) -> str:
        if value and not _EMAIL.match(value):
            raise PydanticCustomError("email", "must be an email address, like pat@example.com")
        return value

    @field_validator("mobile")
    @classmethod
    def plausible_phone(cls, value: str) -> str:
        if value and not _PHONE.match(value):
            raise PydanticCustomError("mobile", "must be a phone number, like 555-201-0101")
        return value


class PatientIn(Item):
    id: Id
    guarantor: Id
    first_name: Name
    last_name: Name
    birth_date: IsoDate | None = None


class CollectionsIn(Item):
    agency: Id
    sent_on: IsoDate


class LineIn(Item):
    line: Annotated[StrictInt, Field(ge=1, le=9999)]
    code: optional_text(32) = ""  # type: ignore[valid-type]
    description: optional_text(200) = ""  # type: ignore[valid-type]
    billed: Amount
    adjusted: Amount = 0
    insurance_paid: Amount = 0
    pending_insurance: Amount = 0


class EncounterIn(Item):
    number: Id
    patient: Id
    facility: Id
    provider: Id
    service_date: IsoDate
    collections: CollectionsIn | None = None
    lines: list[LineIn] = Field(default_factory=list, max_length=999)

    @field_validator("lines")
    @classmethod
    def unique_line_numbers(cls, lines: list[LineIn]) -> list[LineIn]:
        seen: set[int] = set()
        for line in lines:
            if line.line in seen:
                raise PydanticCustomError("line", f"line {line.line} appears twice")
            seen.add(line.line)
        return lines


class ApplicationIn(Item):
    encounter: Id
    line: Annotated[StrictInt, Field(ge=1, le=9999)]
    amount: Amount

    @field_validator("amount")
    @classmethod
    def positive(cls, value: int) -> int:
        if value <= 0:
            raise PydanticCustomError("amount", "must be more than 0.00")
        return value


class ReceiptIn(Item):
    id: Id
    guarantor: Id
    date: IsoDate
    amount: Amount
    type: Literal["payment", "refund"] = "payment"
    method: optional_text(40) = ""  # type: ignore[valid-type]
    source: optional_text(40) = ""  # type: ignore[valid-type]
    applications: list[ApplicationIn] = Field(default_factory=list, max_length=9999)


class StatementIn(Item):
    id: Id
    guarantor: Id
    statement_date: IsoDate
    due_date: IsoDate
    statement_balance: Amount
    amount_due: Amount


class AppointmentIn(Item):
    id: Id
    patient: Id
    facility: Id
    provider: Id
    starts_at: IsoDateTime
    status: Annotated[
        str, BeforeValidator(_required_text), StringConstraints(min_length=1, max_length=30)
    ] = "scheduled"


SECTIONS: dict[str, type[Item]] = {
    "facilities": NamedIn,
    "providers": NamedIn,
    "collection_agencies": NamedIn,
    "guarantors": GuarantorIn,
    "patients": PatientIn,
    "encounters": EncounterIn,
    "receipts": ReceiptIn,
    "statements": StatementIn,
    "appointments": AppointmentIn,
}


class ImportDocument(BaseModel):
    """The whole document, for the OpenAPI schema. Every part may be omitted (or null)."""

    model_config = ConfigDict(extra="forbid")

    practice: PracticeIn | None = None
    facilities: list[NamedIn] | None = None
    providers: list[NamedIn] | None = None
    collection_agencies: list[NamedIn] | None = None
    guarantors: list[GuarantorIn] | None = None
    patients: list[PatientIn] | None = None
    encounters: list[EncounterIn] | None = None
    receipts: list[ReceiptIn] | None = None
    statements: list[StatementIn] | None = None
    appointments: list[AppointmentIn] | None = None


# --- the fast path ------------------------------------------------------------------------------
#
# Most items carry only printable ASCII text, which `Item.storable_text` always lets through. For
# them, twins of the models without that check (one call per field) do the validating; whatever a
# twin refuses is validated again by the model itself, so problems read exactly as before.


def _unchecked(value: Any) -> Any:
    return value


_SKIP_TEXT_CHECK: Any = field_validator("__none__", check_fields=False)(classmethod(_unchecked))


class _NamedFast(NamedIn):
    storable_text = _SKIP_TEXT_CHECK


class _GuarantorFast(GuarantorIn):
    storable_text = _SKIP_TEXT_CHECK


class _PatientFast(PatientIn):
    storable_text = _SKIP_TEXT_CHECK


class _CollectionsFast(CollectionsIn):
    storable_text = _SKIP_TEXT_CHECK


class _LineFast(LineIn):
    storable_text = _SKIP_TEXT_CHECK


class _EncounterFast(EncounterIn):
    storable_text = _SKIP_TEXT_CHECK
    collections: _CollectionsFast | None = None
    lines: list[_LineFast] = Field(default_factory=list, max_length=999)  # type: ignore[assignment]


class _ApplicationFast(ApplicationIn):
    storable_text = _SKIP_TEXT_CHECK


class _ReceiptFast(ReceiptIn):
    storable_text = _SKIP_TEXT_CHECK
    applications: list[_ApplicationFast] = Field(default_factory=list, max_length=9999)  # type: ignore[assignment]


class _StatementFast(StatementIn):
    storable_text = _SKIP_TEXT_CHECK


class _AppointmentFast(AppointmentIn):
    storable_text = _SKIP_TEXT_CHECK


_FAST: dict[type[Item], type[Item]] = {
    NamedIn: _NamedFast,
    GuarantorIn: _GuarantorFast,
    PatientIn: _PatientFast,
    EncounterIn: _EncounterFast,
    ReceiptIn: _ReceiptFast,
    StatementIn: _StatementFast,
    AppointmentIn: _AppointmentFast,
}


def validate_item(model: type[Item], value: Any, plain: bool) -> Item:
    """`model.model_validate(value)`, faster when `plain`: every text in `value` is printable
    ASCII (then it holds no control character)."""
    if plain:
        try:
            return _FAST[model].model_validate(value)
        except ValidationError:
            pass
    return model.model_validate(value)
