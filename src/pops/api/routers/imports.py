import io

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Schema, Status

from pops.api.auth import actor_of, practice_of
from pops.api.errors import ApiError
from pops.api.openapi import inline_schema
from pops.api.schemas import with_errors
from pops.ledger.importing.importer import ImportRejected, import_document
from pops.ledger.importing.schema import ImportDocument

router = Router(tags=["import"])


class Tally(Schema):
    created: int
    updated: int
    unchanged: int


class ImportSummary(Schema):
    practice: str
    ledger_entries: int
    sections: dict[str, Tally]


@router.post(
    "/import",
    response=with_errors({200: ImportSummary}, 413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(ImportDocument)}},
        }
    },
    summary="Import a document: an all-or-nothing upsert by id",
)
def import_(request: HttpRequest) -> Status:
    """Takes the document of docs/import.md (up to 20 MB; larger loads go through
    `pops import`). Answers what was created, updated and left unchanged, or 422 with every
    problem found, in which case nothing was written."""
    limit = settings.API_IMPORT_MAX_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise ApiError(
            413, f"the document is over {limit // (1024 * 1024)} MB; use `pops import` for it"
        )
    try:
        result = import_document(
            io.BytesIO(request.body), actor=actor_of(request), practice=practice_of(request)
        )
    except ImportRejected as rejected:
        return Status(422, {"errors": [p.as_dict() for p in rejected.problems]})
    summary = result.summary()
    return Status(
        200,
        {
            "practice": summary.pop("practice"),
            "ledger_entries": summary.pop("ledger_entries"),
            "sections": summary,
        },
    )
