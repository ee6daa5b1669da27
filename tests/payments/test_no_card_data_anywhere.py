"""S-3, end to end: after payments with every Sandbox test card (tokenized through the Sandbox's
HTTP endpoint, paid through the payments API and the payment service), wallets, a stored card,
split payments, every gateway fault, the reconciler, a void and a refund, with every logger at
DEBUG and the locmem email backend, nothing holds a card number or a CVV: not one row of any
table, not the database dump, not a log record, not an email, not a response POPS gave.

What counts as a card number here:
- any run of 13-19 digits, not glued to other letters or digits, that passes the Luhn check
  (digits inside a hex digest or a base64 string are part of that token, not a number);
- any card number typed during the run, anywhere at all, plain or grouped by spaces or dashes.
A CVV counts next to card context only: a value 123 or 737 under a key, column or label named
like cvv / cvc / csc / security code.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import time_machine
from django.apps import apps
from django.core import mail
from django.db import connection
from django.test import Client

from pops.core.audit import Actor
from pops.groups.models import Group
from pops.groups.services import prepare_practice
from pops.ledger.models import Guarantor, Practice
from pops.payments.gateways.sandbox import cards, faults
from pops.payments.models import PaymentAttempt, StoredCard
from pops.payments.services.attempts import PaymentRequest, pay
from pops.payments.services.reconcile import reconcile
from pops.payments.services.stored_cards import list_cards, remove_card
from tests.conftest import ApiClient, run_import, run_queued_tasks
from tests.payments.conftest import NOT_A_TEST_CARD
from tests.payments.test_split_payments import Split
from tests.test_import_documents import small_document

pytestmark = pytest.mark.django_db(transaction=True)

CVVS = ("123", "737")
EXP = "12/30"
EMAIL = "pat@example.com"
DAY_1 = dt.datetime(2026, 11, 2, 15, 0, tzinfo=dt.UTC)  # 9:00 in Chicago
DAY_2 = DAY_1 + dt.timedelta(days=1)
LUHN_INVALID = "4111111111111112"
TYPED = [card.number for card in cards.TEST_CARDS] + [NOT_A_TEST_CARD, LUHN_INVALID]

_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])[0-9]{13,19}(?![0-9A-Za-z])")
_CVV_IN_CONTEXT = re.compile(
    r"(?i)(cvv|cvc|csc|card[ _-]?code|security[ _-]?code)[\"']?\s*[:=|,]?\s*[\"']?\s*(123|737)\b"
)


def card_numbers_in(text: str) -> list[str]:
    """Every card number in `text` (see the module's docstring)."""
    found = [run for run in _DIGIT_RUN.findall(text) if cards.luhn_valid(run)]
    for number in TYPED:
        groups = [number[i : i + 4] for i in range(0, len(number), 4)]
        for form in (number, " ".join(groups), "-".join(groups)):
            if form in text:
                found.append(form)
    return found


def cvvs_in(text: str) -> list[str]:
    return [match.group(0) for match in _CVV_IN_CONTEXT.finditer(text)]


def test_the_scanner_finds_what_it_should_and_not_digests():
    assert card_numbers_in('{"pan": "4111111111111111"}') == ["4111111111111111"] * 2
    assert card_numbers_in("x 4000 0000 0000 0002 y") == ["4000 0000 0000 0002"]
    assert card_numbers_in("5105105105105100") == ["5105105105105100"]  # not typed, Luhn-valid
    assert card_numbers_in("sha 9f4111111111111111aa and 20260901") == ["4111111111111111"]
    assert card_numbers_in("ab5105105105105100cd 1234567890123") == []
    assert cvvs_in('{"cvv": "737"}') == ['cvv": "737']
    assert cvvs_in("security code: 123") == ["security code: 123"]
    assert cvvs_in("receipt P0000123, amount 7.37, cvv_required=true") == []


# --- The run -------------------------------------------------------------------------------------


@dataclass
class Run:
    browser: Client
    api: ApiClient
    split_api: ApiClient
    responses: list[str] = field(default_factory=list)
    keys: int = 0

    def keep(self, response: Any) -> Any:
        headers = "\n".join(f"{name}: {value}" for name, value in response.items())
        body = b"".join(response.streaming_content) if response.streaming else response.content
        self.responses.append(f"{response.status_code}\n{headers}\n\n{body.decode('latin-1')}")
        return response

    def tokenize(self, number: str, cvv: str, exp: str = EXP) -> Any:
        return self.keep(
            self.browser.post(
                "/sandbox-gateway/tokens",
                data=json.dumps({"card_number": number, "exp": exp, "cvv": cvv}),
                content_type="application/json",
            )
        )

    def token(self, number: str, cvv: str) -> str:
        response = self.tokenize(number, cvv)
        assert response.status_code == 200, response.content
        return response.json()["token"]

    def post(self, path: str, body: Any, *, api: ApiClient | None = None, key: str = "") -> Any:
        api = api or self.api
        if not key:
            self.keys += 1
            key = f"scan-{self.keys}"
        return self.keep(
            api.client.post(
                path,
                data=json.dumps(body),
                content_type="application/json",
                headers={**api.headers, "Idempotency-Key": key},
            )
        )

    def get(self, path: str, *, api: ApiClient | None = None) -> Any:
        return self.keep((api or self.api).get(path))


def prepared() -> Practice:
    document = small_document()
    document["encounters"][0]["lines"][0]["billed"] = "900.00"  # 2010 owes $800.00
    practice = run_import(document).practice
    prepare_practice(practice, actor=Actor.command("tests"))
    Group.objects.filter(practice=practice).update(
        enable_payment_method_storage=True,
        enable_apple_pay=True,
        enable_google_pay=True,
        email_receipt=True,
    )
    return practice


def payment(token: str, amount: str = "1.00", **fields: Any) -> dict[str, Any]:
    return {"guarantor": "2010", "amount": amount, "payment_token": token, "email": EMAIL, **fields}


def run_everything(run: Run, practice: Practice, split: Split) -> None:
    # The gateway's pages (the hosted fields and the wallet sheets) as a browser loads them.
    run.keep(run.browser.get("/sandbox-gateway/hosted-fields"))
    for slug in ("apple-pay", "google-pay"):
        run.keep(run.browser.get(f"/sandbox-gateway/wallets/{slug}"))

    # Every test card, tokenized over HTTP and paid through the API.
    pending: list[tuple[str, dict[str, Any]]] = []
    for index, number in enumerate([*TYPED[:-1]]):
        body = payment(run.token(number, CVVS[index % 2]))
        response = run.post("/api/v1/payments", body, key=f"card-{index}")
        assert response.status_code in (201, 202), response.content
        if response.status_code == 202:
            pending.append((f"card-{index}", body))

    # Card input the tokenizer refuses: a bad number, a bad CVV, an expired card.
    assert run.tokenize(LUHN_INVALID, "123").status_code == 400
    assert run.tokenize(cards.TEST_CARDS[0].number, "12").status_code == 400
    assert run.tokenize(cards.TEST_CARDS[0].number, "737", exp="01/20").status_code == 400

    # A card number sent to POPS itself is refused by the card-number guard (S-2).
    guarded = run.post("/api/v1/payments", payment("4111 1111 1111 1111"), key="guarded")
    assert guarded.status_code == 400

    # The payment service itself (as the portal calls it).
    guarantor = Guarantor.objects.get(practice=practice, external_id="2010")
    for index, number in enumerate(TYPED[:3]):
        pay(
            PaymentRequest(
                guarantor,
                100,
                f"service-{index}",
                "f",
                Actor.command("tests"),
                payment_token=run.token(number, CVVS[index % 2]),
                email=EMAIL,
                source="portal",
            )
        )

    # Wallets: the sheets' payloads, paid through the API.
    for slug, wallet in (("google-pay", "google_pay"), ("apple-pay", "apple_pay")):
        sheet = run.keep(
            run.browser.post(
                f"/sandbox-gateway/wallets/{slug}/tokens",
                data=json.dumps({"card": "approved"}),
                content_type="application/json",
            )
        )
        response = run.post("/api/v1/payments", payment(sheet.json()["payload"], wallet=wallet))
        assert response.json()["status"] == "Paid", response.content

    # A stored card: stored by one payment, paying the next, then removed.
    stored = run.post("/api/v1/payments", payment(run.token(TYPED[0], "737"), store_card=True))
    assert stored.status_code == 201
    (card,) = list_cards(guarantor)
    body = {"guarantor": "2010", "amount": "2.00", "stored_card": str(card.pk), "email": EMAIL}
    assert run.post("/api/v1/payments", body).json()["status"] == "Paid"

    # Every gateway fault, then the reconciler, then the same requests again.
    for fault in faults.Fault:
        body = payment(run.token(TYPED[0], "123"))
        with faults.inject(fault):
            response = run.post("/api/v1/payments", body, key=f"fault-{fault}")
        if response.status_code == 202:
            pending.append((f"fault-{fault}", body))
    with time_machine.travel(DAY_1 + dt.timedelta(minutes=5)):
        reconcile(older_than=dt.timedelta(0))
        for key, body in pending:
            assert run.post("/api/v1/payments", body, key=key).status_code == 201

    # A split payment at a second practice (three merchant accounts).
    response = run.post(
        "/api/v1/payments",
        payment(run.token(TYPED[0], "737"), amount="100.00"),
        api=run.split_api,
    )
    assert len(response.json()["transaction_numbers"]) == 3
    assert split.balance() == 0

    run_queued_tasks()  # the emailed receipts so far, as the worker sends them

    # A void today; the receipts and the day's batches read back.
    paid = list(
        PaymentAttempt.objects.filter(practice=practice, status="succeeded")
        .order_by("pk")
        .values_list("receipt__number", flat=True)
    )
    voided = run.post(f"/api/v1/receipts/{paid[0]}/void", {"reason": "Entered twice"})
    assert voided.status_code == 200, voided.content
    for number in paid:
        run.get(f"/api/v1/receipts/{number}")
    run.get(f"/api/v1/reference-batches?date={DAY_1.date().isoformat()}")
    remove_card(StoredCard.objects.get(pk=card.pk), actor=Actor.command("tests"))

    # A refund the next day.
    with time_machine.travel(DAY_2):
        refunded = run.post(f"/api/v1/receipts/{paid[1]}/refunds", {"amount": "0.50"})
        assert refunded.status_code == 201, refunded.content
        run.get(f"/api/v1/receipts/{refunded.json()['receipt_number']}")


# What every record has (thread and process ids, times...), as against what a caller added.
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class Keep(logging.Handler):
    """Every log record, formatted as a log file would hold it (tracebacks included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRIBUTES}
        self.lines.append(f"{self.format(record)} {record.args!r} {extra!r}")


@pytest.fixture
def everything(api_for, caplog) -> Iterator[tuple[Run, Keep]]:
    """The run above, with every logger at DEBUG and every record kept."""
    names = ["", *logging.root.manager.loggerDict]
    for name in names:
        caplog.set_level(logging.DEBUG, logger=name or None)
    keep = Keep()
    loggers = [logging.getLogger()] + [
        logger
        for name in names[1:]
        if isinstance(logger := logging.getLogger(name), logging.Logger) and not logger.propagate
    ]
    for logger in loggers:
        logger.addHandler(keep)
    try:
        with time_machine.travel(DAY_1):
            practice = prepared()
            split = Split(practice_id="p2", email_receipt=True)
            run = Run(Client(), api_for(practice), api_for(split.practice))
            run_everything(run, practice, split)
            run_queued_tasks()  # the emailed receipts, as the worker sends them
        yield run, keep
    finally:
        for logger in loggers:
            logger.removeHandler(keep)


# --- The scans ------------------------------------------------------------------------------------


def every_row() -> Iterator[tuple[str, str]]:
    """(table, text) for every row of every table: each field's value as text, named."""
    for model in apps.get_models(include_auto_created=True):
        fields = model._meta.concrete_fields
        for values in model._base_manager.values_list(*[f.attname for f in fields]):
            parts = []
            for f, value in zip(fields, values, strict=True):
                if isinstance(value, dict | list):
                    value = json.dumps(value, default=str)
                elif isinstance(value, bytes | memoryview):
                    value = bytes(value).decode("latin-1")
                parts.append(f'"{f.column}": "{value}"')
            yield model._meta.db_table, ", ".join(parts)


def assert_clean(where: str, text: str) -> None:
    assert card_numbers_in(text) == [], where
    assert cvvs_in(text) == [], where


# Transport artifacts made of random digits: the Message-ID and the MIME boundaries.
_TRANSPORT_HEADERS = {"message-id", "content-type"}


def email_texts() -> Iterator[str]:
    """Each sent email as its reader gets it: every header (but the random transport ones)
    and every part, decoded from its transfer encoding."""
    for message in mail.outbox:
        texts = [message.subject, message.body, *message.to, message.from_email]
        texts += [content for content, _ in getattr(message, "alternatives", [])]
        for part in message.message().walk():
            texts += [f"{k}: {v}" for k, v in part.items() if k.lower() not in _TRANSPORT_HEADERS]
            texts.append(part.get_content_type())
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                texts.append(payload.decode(part.get_content_charset() or "utf-8"))
        yield "\n".join(texts)


def test_no_card_number_or_cvv_in_any_row_log_email_or_response(everything):
    run, logs = everything

    assert PaymentAttempt.objects.filter(status="succeeded").count() >= 10
    assert PaymentAttempt.objects.filter(status="declined").count() >= 5
    assert len(mail.outbox) >= 10
    assert len(logs.records) > 10
    assert len(run.responses) > 40

    rows = 0
    for table, text in every_row():
        rows += 1
        assert_clean(f"table {table}", text)
    assert rows > 100
    for record, line in zip(logs.records, logs.lines, strict=True):
        assert_clean(f"log {record.name}", line)
    for text in email_texts():
        assert_clean("email", text)
    for text in run.responses:
        assert_clean("response", text)
    if connection.vendor == "sqlite":
        dump = "\n".join(connection.connection.iterdump())
        assert "INSERT INTO" in dump
        assert_clean("sqlite dump", dump)


@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump is not on PATH")
def test_a_pg_dump_of_the_database_holds_no_card_number_or_cvv(everything):
    if connection.vendor != "postgresql":
        pytest.skip("the pg_dump scan needs PostgreSQL")
    settings = connection.settings_dict
    command = ["pg_dump", "--data-only", "--no-owner", "--dbname", settings["NAME"]]
    for option, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER")):
        if settings.get(key):
            command += [option, str(settings[key])]
    env = {**os.environ, "PGPASSWORD": settings.get("PASSWORD") or ""}

    dump = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout

    assert "COPY public.payments_paymentattempt" in dump
    assert "COPY public.sandbox_gateway_transaction" in dump
    assert_clean("pg_dump", dump)


@pytest.mark.django_db
def test_a_card_number_in_a_url_reaches_no_log_record(api_for):
    """In a query string it is refused; in a path (ids live there) it is a 404 whose log line
    withholds the path."""
    practice = prepared()
    api = api_for(practice)
    keep = Keep()
    logging.getLogger().addHandler(keep)
    try:
        assert api.get("/api/v1/receipts/4000000000000002").status_code == 404
        assert api.get("/api/v1/reference-batches?date=4000000000000002").status_code == 400
    finally:
        logging.getLogger().removeHandler(keep)

    assert keep.records
    for record, line in zip(keep.records, keep.lines, strict=True):
        assert_clean(f"log {record.name}", line)
