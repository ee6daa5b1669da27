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


def _size(limit: int) -> str:
    megabytes, rest = divmod(limit, 1024 * 1024)
    return f"{megabytes} MB" if megabytes and not rest else f"{limit} bytes"


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
    too_large = ApiError(
        413, f"the document is over the {_size(limit)} limit; send larger loads with `pops import`"
    )
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError(400, "must be a number of bytes", "Content-Length") from None
    if length > limit:
        raise too_large
    body = request.body
    if len(body) > limit:
        raise too_large
    try:
        result = import_document(
            io.BytesIO(body), actor=actor_of(request), practice=practice_of(request)
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
