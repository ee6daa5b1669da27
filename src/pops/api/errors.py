"""Every API error answers `{"errors": [{"path", "message"}]}`."""

import logging
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from pops.core.json_body import SERVER_ERROR, error_body

logger = logging.getLogger("pops.api")

_LOCATIONS = {"path", "query", "body", "header", "cookie", "form"}


class ApiError(HttpError):
    """An error with the place it concerns."""

    def __init__(self, status_code: int, message: str, path: str = ""):
        super().__init__(status_code, message)
        self.path = path


def _path(loc: Any) -> str:
    parts = list(loc)
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def install(api: NinjaAPI) -> None:
    def validation(request: HttpRequest, exc: Any) -> HttpResponse:
        errors = [
            {"path": _path(e.get("loc", ())), "message": e.get("msg", "is invalid")}
            for e in exc.errors
        ]
        return api.create_response(request, {"errors": errors}, status=422)

    def http_error(request: HttpRequest, exc: Any) -> HttpResponse:
        path = getattr(exc, "path", "")
        if isinstance(exc, AuthenticationError):
            path, message = "Authorization", "send a valid API key as 'Authorization: Bearer KEY'"
        else:
            message = exc.message if isinstance(exc.message, str) else str(exc)
        return api.create_response(request, error_body(path, message), status=exc.status_code)

    def not_found(request: HttpRequest, exc: Any) -> HttpResponse:
        return api.create_response(request, error_body("", "not found"), status=404)

    def unexpected(request: HttpRequest, exc: Any) -> HttpResponse:
        logger.exception("unexpected API error on %s", request.path)
        return api.create_response(request, error_body("", SERVER_ERROR), status=500)

    api.add_exception_handler(ValidationError, validation)
    api.add_exception_handler(HttpError, http_error)
    api.add_exception_handler(Http404, not_found)
    api.add_exception_handler(Exception, unexpected)
