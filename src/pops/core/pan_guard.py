"""The card-number guard (S-2): POPS never accepts a card number, wherever it is sent.

Card numbers are typed into the gateway's hosted fields only (DESIGN.md rule 4). Should one
reach POPS anyway (a misbehaving client, a number pasted into a note or a search box), this
middleware refuses the request before any view, form, log line or database row sees it: 400
(a JSON errors body under /api/, plain text elsewhere), a `security.card_number_refused` audit
event that says where it was found but never the value, and a log line without it either.

What counts as a card number: a run of 13 to 19 digits, possibly in groups separated by single
spaces or dashes ("4111 1111 1111 1111", "4111-1111-1111-1111"), that passes the Luhn check.
It is looked for in the query string and in the body (raw, and percent-decoded for form posts),
not in the path, where ids live (S-2 names bodies and query strings); a refused request's path
is withheld from the log line and the audit record when it holds a card number too.
A run made of several groups is checked group-window by group-window, so a card number followed
by an expiry ("4111 1111 1111 1111 12") is still caught. One unbroken run of more than 19 digits
is an id, not a card number, and passes.

The trade-off: this is a pattern, not knowledge. Ids, phone numbers and dates in import
documents and API calls can hold long digit runs, and about one in ten 13-19 digit numbers
passes the Luhn check by chance: such a value (a 16-digit account number, a 13-digit
millisecond timestamp, two dates written "2026-09-01 2026-09-30") is refused too. The rule is
kept strict because a false positive costs a clear 400 that names the reason, while a false
negative puts card data in POPS's database and logs. Clients should send such values with
other separators (or none across more than 19 digits), and should never use millisecond
timestamps as cache busters.

Bodies larger than `PAN_GUARD_MAX_BODY_BYTES` (default: Django's DATA_UPLOAD_MAX_MEMORY_SIZE, the
most Django reads into memory at all) are not read here; the view refuses them by size. The look
itself is bounded, since it runs before any authentication: one quick pass over the body, and
at most SCAN_BUDGET steps of closer look at runs of 13 or more digits (a 20 MB import document
takes about 0.3 s). A body holding more such runs than that, which only one built to be slow
does, is passed on unscanned and logged. A body is looked at as JSON reads it too: the string
escapes of digits, spaces and dashes (`\u0034` for "4") are decoded first, so a card number
cannot pass written that way into a value that POPS then stores or echoes.
`PAN_GUARD_EXEMPT_PATHS` lists paths (as the URL conf sees them) that are the gateway's side and
so must receive card numbers: by default the Sandbox gateway's tokenization endpoint (which
answers 404 while the Sandbox is switched off); production may set it to `()`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from pops.core import audit
from pops.core.card_numbers import ScanGaveUp, holds_card_number
from pops.core.json_body import error_body
from pops.core.models import AuditEvent

logger = logging.getLogger("pops.security")

# The Sandbox's tokenization endpoint stands where a real gateway's servers would. With the
# Sandbox switched off it answers 404 to everything, card numbers included.
DEFAULT_EXEMPT_PATHS = ("/sandbox-gateway/tokens",)
MESSAGE = (
    "Card numbers may not be sent to POPS. Enter card details only in the payment page's "
    "secure card fields."
)
ACTOR = audit.Actor(AuditEvent.ActorType.SYSTEM, "card-number guard")

_FORM = "application/x-www-form-urlencoded"


_JSON_ESCAPE = re.compile(rb"\\u00(3[0-9]|2[0dD])")


def _unescaped(data: bytes) -> bytes:
    """The JSON string escapes of digits, spaces and dashes decoded: what the view will read."""
    return _JSON_ESCAPE.sub(lambda match: bytes([int(match[1], 16)]), data)


def _decoded(data: bytes) -> bytes:
    """Percent-decoded, with '+' as a space, as a form or query string is read."""
    return unquote_to_bytes(data.replace(b"+", b" "))


def _exempt_paths() -> Iterable[str]:
    return getattr(settings, "PAN_GUARD_EXEMPT_PATHS", DEFAULT_EXEMPT_PATHS)


def _max_body_bytes() -> int:
    default = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440
    return int(getattr(settings, "PAN_GUARD_MAX_BODY_BYTES", default))


def _shown(request: HttpRequest) -> str:
    """The request's path for a log line or audit record, unless it holds a card number too."""
    path = request.path
    try:
        return "(withheld)" if holds_card_number(path.encode("utf-8", "replace")) else path
    except ScanGaveUp:
        return "(withheld)"


class CardNumberGuard:
    """Refuses any request whose query string or body holds a card number (S-2)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info not in _exempt_paths():
            where = self._where(request)
            if where:
                return self._refuse(request, where)
        return self.get_response(request)

    def _where(self, request: HttpRequest) -> str:
        try:
            return self._look(request)
        except ScanGaveUp:
            # Only a body made to be slow gets here; it is passed on unscanned, not refused.
            logger.warning("card-number scan of %s %s gave up", request.method, _shown(request))
            return ""

    def _look(self, request: HttpRequest) -> str:
        query = request.META.get("QUERY_STRING", "")
        if query and holds_card_number(_decoded(query.encode("latin-1", "replace"))):
            return "query"
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length <= 0 or length > _max_body_bytes():
            return ""
        try:
            body = request.body
        except RequestDataTooBig:
            return ""
        if request.content_type == _FORM:
            body = _decoded(body)
        # Whatever its Content-Type says, a body may be read as JSON (the API reads JSON only).
        if b"\\u" in body:
            body = _unescaped(body)
        return "body" if holds_card_number(body) else ""

    def _refuse(self, request: HttpRequest, where: str) -> HttpResponse:
        shown = _shown(request)
        logger.warning("refused a card number in the %s of %s %s", where, request.method, shown)
        try:
            audit.record(
                "security.card_number_refused",
                actor=ACTOR,
                outcome=AuditEvent.Outcome.DENIED,
                request=request,
                data={"where": where, "method": request.method, "path": shown[:200]},
            )
        except DatabaseError:
            logger.exception("could not record the refusal of a card number")
        response: HttpResponse
        if request.path.startswith("/api/"):
            response = JsonResponse(error_body("", MESSAGE), status=400)
        else:
            response = HttpResponseBadRequest(MESSAGE, content_type="text/plain; charset=utf-8")
        # Logged above, path withheld when it holds a card number too: Django's own
        # "Bad Request: <path>" line is skipped (the flag Django sets once it has logged one).
        response._has_been_logged = True  # type: ignore[union-attr]
        return response
