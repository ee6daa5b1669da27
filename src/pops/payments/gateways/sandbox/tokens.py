"""Tokens: what the hosted fields and wallet sheets hand the payment page instead of a card.

A card number and CVV pass through `tokenize_card` as arguments and are dropped there; the token
row keeps brand, last 4, expiry and the test card's outcome.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets

from pops.core import clock, json_body, rows
from pops.payments.gateways.base import InvalidRequest, WalletKind
from pops.payments.gateways.sandbox import cards
from pops.payments.gateways.sandbox.models import Token

TOKEN_LIFETIME = dt.timedelta(minutes=15)
WALLET_PAYLOAD_MAX_LENGTH = 8192
# Ids are lower-case base32 (a-z, 2-7): few digits, so no id can look like a card number to a
# PAN scan.


def random_id(prefix: str, length: int = 26) -> str:
    """`prefix` + `length` random base32 characters (26 give 130 bits)."""
    encoded = base64.b32encode(secrets.token_bytes((length * 5 + 7) // 8)).decode("ascii")
    return prefix + encoded[:length].lower()


def tokenize_card(card_number: object, exp: object, cvv: object) -> str:
    """A one-time token for a card; raises `cards.CardError` naming the first bad input.

    The CVV is checked for form and then forgotten: the Sandbox, like a real gateway after
    authorization, never keeps it.
    """
    number = cards.clean_number(card_number)
    month, year = cards.parse_expiry(exp, clock.now().date())
    cards.check_cvv(cvv)
    return _create(
        brand=cards.brand_of(number),
        last4=number[-4:],
        exp_month=month,
        exp_year=year,
        outcome=cards.outcome_of(number),
    ).token


def create_wallet_payload(wallet: WalletKind, outcome: cards.Outcome) -> str:
    """What a wallet sheet returns: an opaque payload naming a one-time wallet token.

    The payload stands for Apple Pay's or Google Pay's encrypted token: POPS passes it on
    unchanged and only the Sandbox reads it.
    """
    test_card = next(card for card in cards.TEST_CARDS if card.outcome == outcome)
    today = clock.now().date()
    token = _create(
        brand=cards.brand_of(test_card.number),
        last4=test_card.last4,
        exp_month=12,
        exp_year=today.year + 3,
        outcome=outcome,
        wallet=wallet,
    )
    document = {
        "version": "sandbox-1",
        "wallet": str(wallet),
        "token": token.token,
        "signature": random_id("", 43),
    }
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode()


def _create(**fields: object) -> Token:
    now = clock.now()
    return Token.objects.create(
        token=random_id("tok_"), created_at=now, expires_at=now + TOKEN_LIFETIME, **fields
    )


def find(payment_token: str, wallet: WalletKind | None) -> Token | None:
    """The token a charge names; None when there is no such token."""
    token_id = _wallet_token_id(payment_token, wallet) if wallet else payment_token
    if not token_id:
        return None
    return rows.get(Token, "token = %s AND wallet = %s", [token_id, str(wallet or "")])


def usable(token: Token | None) -> Token:
    """`token`, if a charge may use it. Raises `InvalidRequest` for an unknown, tampered or
    expired token. (Whether it has paid the merchant already, the charge's INSERT finds.)"""
    if token is None:
        raise InvalidRequest("invalid_token", "The payment token is not valid.")
    if token.expires_at <= clock.now():
        raise InvalidRequest("token_expired", "The payment token has expired.")
    return token


def _wallet_token_id(payload: str, wallet: WalletKind) -> str | None:
    """The token a wallet payload names, or None if the payload is not one of ours."""
    if len(payload) > WALLET_PAYLOAD_MAX_LENGTH:
        return None
    try:
        document = json_body.parse(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (UnicodeEncodeError, binascii.Error, json_body.NotJson):
        return None
    if not isinstance(document, dict) or document.get("wallet") != str(wallet):
        return None
    token_id = document.get("token")
    return token_id if isinstance(token_id, str) else None
