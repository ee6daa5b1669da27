"""Request guards that hold for every route."""

import re
from collections.abc import Callable
from urllib.parse import unquote

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from pops.core.json_body import SERVER_ERROR, error_body

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class RejectControlCharacters:
    """Refuse a URL whose path or query holds control characters (such as NUL, which no
    database column can store) with a clear 400, before any view sees it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.path + "?" + unquote(request.META.get("QUERY_STRING", ""))
        if _CONTROL.search(raw):
            message = "the address holds control characters"
            if request.path.startswith("/api/"):
                return JsonResponse(error_body("", message), status=400)
            return HttpResponseBadRequest(message)
        return self.get_response(request)


class ApiAnswersJson:
    """Every error under /api/ has the API's JSON body, `{"errors": [{"path", "message"}]}`,
    including those Django or the router answer on their own (an unknown address, a method the
    address does not take, a server error), which are HTML otherwise."""

    MESSAGES = {
        404: "no such address in the API (the reference is at /api/v1/docs)",
        405: "{method} is not allowed here; this address takes {allow}",
        500: SERVER_ERROR,
    }
    KEPT_OUT = {"content-type", "content-length", "content-encoding", "content-language"}

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path.startswith("/api/")
            or response.get("Content-Type", "").startswith("application/json")
            or (settings.DEBUG and response.status_code == 500)  # (Django's page for developers)
        ):
            return response
        message = self.MESSAGES.get(response.status_code, "{reason}").format(
            method=request.method,
            allow=response.get("Allow", ""),
            reason=response.reason_phrase.lower(),
        )
        answer = JsonResponse(error_body("", message), status=response.status_code)
        for header, value in response.items():  # Allow, Retry-After, Vary, cookies ...
            if header.lower() not in self.KEPT_OUT:
                answer[header] = value
        answer.cookies = response.cookies
        return answer
