import fcntl
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection

from pops.core import clock
from pops.ledger.models import Practice
from pops.payments.gateways.base import ChargeRequest, Gateway, WalletKind
from pops.payments.gateways.registry import gateway_for, get_gateway
from pops.payments.gateways.sandbox import tokens
from pops.payments.gateways.sandbox.adapter import SandboxGateway
from pops.payments.gateways.sandbox.cards import Outcome
from pops.payments.merchant_accounts import ensure_sandbox_account
from pops.payments.models import MerchantAccount

APPROVED = "4111111111111111"
DECLINED = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
EXPIRED_CARD = "4000000000000069"
INCORRECT_CVV = "4000000000000127"
PROCESSING_ERROR = "4000000000000119"
TIMES_OUT = "4000000000000341"
NOT_A_TEST_CARD = "5555555555554444"  # Luhn-valid Mastercard, not one of the Sandbox's


def future_exp(years: int = 2) -> str:
    return f"12/{(clock.now().year + years) % 100:02d}"


def card_token(number: str = APPROVED, exp: str | None = None, cvv: str = "123") -> str:
    """A one-time token, as the hosted fields would get it."""
    return tokens.tokenize_card(number, exp or future_exp(), cvv)


def wallet_payload(wallet: WalletKind = WalletKind.GOOGLE_PAY, outcome: str = "approved") -> str:
    return tokens.create_wallet_payload(wallet, Outcome(outcome))


def reference() -> str:
    """A unique merchant reference spelt in letters only, so a scan for card numbers or a CVV
    in what the gateway stores never matches it by chance."""
    return "attempt-" + uuid.uuid4().hex.translate(_DIGITS_TO_LETTERS)


_DIGITS_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def charge_request(token: str | None = None, amount_cents: int = 2500, **fields) -> ChargeRequest:
    if "vault_token" not in fields:
        fields["payment_token"] = token or card_token()
    fields.setdefault("merchant_reference", reference())
    return ChargeRequest(amount_cents=amount_cents, **fields)


# PostgreSQL takes 100 connections: two pytest-xdist workers running 50 threads each at once
# would run out, so runs of many threads take turns (a lock file all workers share).
MANY_THREADS = 20
_TURNS = Path(tempfile.gettempdir()) / "pops-tests-many-connections.lock"


def run_concurrently(calls):
    """Run each call on its own thread and database connection, all released at once."""
    if len(calls) <= MANY_THREADS:
        return _run_concurrently(calls)
    with _TURNS.open("a") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)  # (released when the file closes)
        return _run_concurrently(calls)


def _run_concurrently(calls):
    outcomes = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index, call):
        try:
            start.wait()
            outcomes[index] = call()
        except Exception as error:  # returned for the test to inspect
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.fixture
def practice() -> Practice:
    return Practice.objects.create(external_id="p1", name="One Practice", time_zone="UTC")


@pytest.fixture
def account(practice: Practice) -> MerchantAccount:
    account = ensure_sandbox_account(practice)
    assert account is not None
    return account


@pytest.fixture
def gateway(account: MerchantAccount) -> Gateway:
    return gateway_for(account)


@pytest.fixture
def other_gateway() -> Callable[[str], Gateway]:
    """A Sandbox adapter for another merchant id."""

    def make(merchant_id: str = "another-merchant") -> Gateway:
        return get_gateway("sandbox", SandboxGateway.sign_up(merchant_id))

    return make
