"""Request guards that hold for every route."""

import re
from collections.abc import Callable
from urllib.parse import unquote

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

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
                return JsonResponse({"errors": [{"path": "", "message": message}]}, status=400)
            return HttpResponseBadRequest(message)
        return self.get_response(request)
