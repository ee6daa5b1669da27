"""The Sandbox's web side, standing where an outside gateway's servers would.

- `hosted_fields`: the card-entry page POPS frames in an iframe. Only POPS's own origin may
  frame it (CSP frame-ancestors 'self', X-Frame-Options SAMEORIGIN), so the parent window's
  origin is the page's own, and the script posts tokens to exactly that origin.
- `tokens`: POST {"card_number", "exp": "MM/YY", "cvv"} -> {"token"}; CSRF-exempt because it is
  the gateway's API, not a POPS form. The card number and CVV go no further than the tokenizer.
- `wallet_sheet` / `wallet_tokens`: simulated Apple Pay and Google Pay sheets returning an
  opaque wallet payload.

Every view answers 404 while `SANDBOX_GATEWAY_ENABLED` is off.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps
from importlib import resources
from typing import Any, TypeVar, cast

from csp.constants import SELF
from csp.decorators import csp_replace
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from pops.core import json_body
from pops.payments.gateways.base import WalletKind
from pops.payments.gateways.sandbox import cards, tokens
from pops.payments.gateways.sandbox.cards import Outcome

BODY_MAX_BYTES = 4096
WALLET_SLUGS = {kind.value.replace("_", "-"): kind for kind in WalletKind}
WALLET_NAMES = {WalletKind.APPLE_PAY: "Apple Pay", WalletKind.GOOGLE_PAY: "Google Pay"}
ASSETS = {
    "hosted-fields.js": "text/javascript; charset=utf-8",
    "sandbox.css": "text/css; charset=utf-8",
}
_FRAMEABLE_BY_POPS = {"frame-ancestors": [SELF]}
V = TypeVar("V", bound=Callable[..., HttpResponseBase])


def gateway_enabled(view: V) -> V:
    """404 for every Sandbox URL while `SANDBOX_GATEWAY_ENABLED` is off."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not settings.SANDBOX_GATEWAY_ENABLED:
            raise Http404("The Sandbox gateway is switched off.")
        return view(request, *args, **kwargs)

    return cast(V, wrapped)


def _errors(status: int, *errors: tuple[str, str]) -> JsonResponse:
    body = {"errors": [{"path": path, "message": message} for path, message in errors]}
    return JsonResponse(body, status=status)


def _json_body(request: HttpRequest) -> dict[str, Any] | JsonResponse:
    if len(request.body) > BODY_MAX_BYTES:
        return _errors(400, ("", "The request body is too large."))
    try:
        body = json_body.parse(request.body)
    except json_body.NotJson:
        return _errors(400, ("", "Send a JSON object."))
    if not isinstance(body, dict):
        return _errors(400, ("", "Send a JSON object."))
    return body


@gateway_enabled
@require_GET
@never_cache
@xframe_options_sameorigin
@csp_replace(_FRAMEABLE_BY_POPS)
def hosted_fields(request: HttpRequest) -> HttpResponse:
    return render(request, "sandbox_gateway/hosted_fields.html")


@gateway_enabled
@csrf_exempt
@require_POST
@never_cache
def create_token(request: HttpRequest) -> JsonResponse:
    body = _json_body(request)
    if isinstance(body, JsonResponse):
        return body
    try:
        token = tokens.tokenize_card(body.get("card_number"), body.get("exp"), body.get("cvv"))
    except cards.CardError as error:
        return _errors(400, (error.field, error.message))
    return JsonResponse({"token": token})


@gateway_enabled
@require_GET
@never_cache
@xframe_options_sameorigin
@csp_replace(_FRAMEABLE_BY_POPS)  # type: ignore[arg-type]  # django-csp types one-arg views
def wallet_sheet(request: HttpRequest, wallet: str) -> HttpResponse:
    kind = _wallet(wallet)
    choices = [
        (card.outcome.value, f"{card.label}: Visa ending {card.last4}") for card in cards.TEST_CARDS
    ]
    return render(
        request,
        "sandbox_gateway/wallet_sheet.html",
        {"wallet": kind, "slug": wallet, "wallet_name": WALLET_NAMES[kind], "choices": choices},
    )


@gateway_enabled
@csrf_exempt
@require_POST
@never_cache
def create_wallet_token(request: HttpRequest, wallet: str) -> JsonResponse:
    kind = _wallet(wallet)
    body = _json_body(request)
    if isinstance(body, JsonResponse):
        return body
    try:
        outcome = Outcome(body.get("card", Outcome.APPROVED.value))
    except ValueError:
        return _errors(400, ("card", "Choose one of the sheet's test cards."))
    return JsonResponse({"payload": tokens.create_wallet_payload(kind, outcome)})


@gateway_enabled
@require_GET
def asset(request: HttpRequest, name: str) -> HttpResponse:
    if name not in ASSETS:
        raise Http404(name)
    response = HttpResponse(_asset_bytes(name), content_type=ASSETS[name])
    response["Cache-Control"] = "public, max-age=300"
    return response


@cache
def _asset_bytes(name: str) -> bytes:
    return (
        resources.files("pops.payments.gateways.sandbox") / "static" / "sandbox_gateway" / name
    ).read_bytes()


def _wallet(slug: str) -> WalletKind:
    try:
        return WALLET_SLUGS[slug]
    except KeyError:
        raise Http404(slug) from None
