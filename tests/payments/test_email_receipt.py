"""The emailed receipt (spec §8 step 5, §9, rules 30-31; issue 3 item 8) and the notify app's
email sender. Sent after the payment commits, only when the Group's Email Receipt option is on
and the payer gave an email; it holds exactly Receipt #, Guarantor, Account, Date Paid,
Transaction #, Card Type and Amount Paid, and no card number, CVV or token."""

import datetime as dt
import json
import logging
import re
import smtplib
import uuid
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import override_settings
from django_tasks.backends.immediate import ImmediateBackend

from pops.core.audit import Actor
from pops.groups.models import Group
from pops.groups.services import prepare_practice
from pops.ledger.models import Guarantor, Practice, Receipt
from pops.notify.email import EmailNotSent, send_email
from pops.payments.gateways.base import WalletKind
from pops.payments.gateways.sandbox import cards
from pops.payments.gateways.sandbox.models import Transaction
from pops.payments.models import PaymentAttempt, StoredCard
from pops.payments.services import notifications
from pops.payments.services.attempts import PaymentRequest, pay
from pops.payments.services.reconcile import reconcile
from tests.conftest import run_import
from tests.payments.conftest import APPROVED, DECLINED, TIMES_OUT, card_token, wallet_payload
from tests.payments.test_split_payments import Split
from tests.test_import_documents import small_document

pytestmark = pytest.mark.django_db

ACTOR = Actor.command("tests")
EMAIL = "pat@example.com"
LABELS = [
    "Receipt #",
    "Guarantor",
    "Account",
    "Date Paid",
    "Transaction #",
    "Card Type",
    "Amount Paid",
]


def prepared(**group_options: Any) -> Practice:
    practice = run_import(small_document()).practice  # guarantor 2010 owes $50.00
    prepare_practice(practice, actor=ACTOR)
    if group_options:
        Group.objects.filter(practice=practice).update(**group_options)
    return practice


@pytest.fixture
def practice() -> Practice:
    return prepared(name="Lakeside Clinic")


def guarantor() -> Guarantor:
    return Guarantor.objects.get(external_id="2010")


@pytest.fixture
def paid(django_capture_on_commit_callbacks):
    """`paid(amount, **fields)` takes a payment and runs what follows its commit."""

    def make(amount_cents: int = 2000, **fields: Any) -> PaymentAttempt:
        if "stored_card" not in fields:
            fields.setdefault("payment_token", card_token(APPROVED))
        fields.setdefault("email", EMAIL)
        with django_capture_on_commit_callbacks(execute=True):
            return pay(
                PaymentRequest(guarantor(), amount_cents, uuid.uuid4().hex, "f", ACTOR, **fields)
            )

    return make


def fields_of(text: str) -> dict[str, str]:
    """The "Label: value" lines of the plain-text body."""
    return dict(
        line.split(": ", 1) for line in text.splitlines() if re.match(r"^[A-Z][\w #]*: ", line)
    )


def html_of(message: mail.EmailMultiAlternatives) -> str:
    ((html, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    return html


# --- When it is sent ------------------------------------------------------------------------------


def test_a_paid_payment_with_an_email_sends_exactly_the_receipt_fields(practice, paid):
    attempt = paid(2000)

    (message,) = mail.outbox
    receipt = attempt.receipt
    txn = Transaction.objects.get()
    assert message.to == [EMAIL]
    assert message.subject == f"Payment receipt {receipt.number} from Lakeside Clinic"
    assert fields_of(message.body) == {
        "Receipt #": receipt.number,
        "Guarantor": "Pat Lee",
        "Account": "2010",
        "Date Paid": receipt.date.strftime("%m/%d/%Y"),
        "Transaction #": txn.transaction_id,
        "Card Type": "Visa",
        "Amount Paid": "$20.00",
    }
    assert "Lakeside Clinic" in message.body
    html = html_of(message)
    cells = re.findall(r'<th scope="row"[^>]*>([^<]+)</th>', html)
    assert cells == LABELS
    for value in (receipt.number, "Pat Lee", "2010", txn.transaction_id, "Visa", "$20.00"):
        assert value in html


def test_the_group_logo_heads_the_html_when_the_group_has_one(paid):
    prepared(name="Lakeside Clinic", logo_url="https://cdn.example.com/logo.png?a=1&b=2")

    paid()

    html = html_of(mail.outbox[0])
    assert '<img src="https://cdn.example.com/logo.png?a=1&amp;b=2" alt="Lakeside Clinic"' in html


def test_without_a_logo_the_group_name_heads_the_html(practice, paid):
    paid()

    html = html_of(mail.outbox[0])
    assert "<img" not in html
    assert "Lakeside Clinic</p>" in html


def test_no_email_when_the_group_has_email_receipt_off(paid):
    prepared(email_receipt=False)

    attempt = paid()

    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert mail.outbox == []


def test_no_email_when_the_payer_gave_none(practice, paid):
    paid(email="")

    assert mail.outbox == []


def test_no_email_for_a_declined_payment(practice, paid):
    attempt = paid(payment_token=card_token(DECLINED))

    assert attempt.receipt.status == Receipt.Status.UNSUCCESSFUL
    assert mail.outbox == []


def test_an_unknown_outcome_sends_nothing_until_the_reconciler_settles_it(
    practice, paid, django_capture_on_commit_callbacks
):
    attempt = paid(payment_token=card_token(TIMES_OUT))
    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        reconcile(older_than=dt.timedelta(0))

    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    (message,) = mail.outbox
    assert fields_of(message.body)["Receipt #"] == attempt.receipt.number


def test_a_replayed_payment_sends_no_second_email(
    practice, paid, django_capture_on_commit_callbacks
):
    attempt = paid()
    with django_capture_on_commit_callbacks(execute=True):
        again = pay(
            PaymentRequest(
                guarantor(), 2000, attempt.idempotency_key, "f", ACTOR, payment_token="x"
            )
        )

    assert again.pk == attempt.pk
    assert len(mail.outbox) == 1


def test_a_receipt_voided_before_the_email_goes_gets_none(practice, paid):
    attempt = paid(email="")
    Receipt.objects.filter(pk=attempt.receipt_id).update(status=Receipt.Status.VOIDED)
    PaymentAttempt.objects.filter(pk=attempt.pk).update(email=EMAIL)

    assert notifications.deliver_receipt_email.call(attempt.pk) is False
    assert mail.outbox == []


# --- What it says ---------------------------------------------------------------------------------


def test_a_wallet_payment_names_the_wallet_and_the_card_brand(paid):
    prepared(enable_google_pay=True)

    paid(payment_token=wallet_payload(WalletKind.GOOGLE_PAY), wallet=WalletKind.GOOGLE_PAY)

    assert fields_of(mail.outbox[0].body)["Card Type"] == "Google Pay (Visa)"


def test_a_split_payment_lists_each_transaction_number(django_capture_on_commit_callbacks):
    split = Split()

    with django_capture_on_commit_callbacks(execute=True):
        attempt = split.pay(10000, email=EMAIL)

    numbers = list(attempt.parts.order_by("pk").values_list("transaction_id", flat=True))
    assert len(numbers) == 3
    (message,) = mail.outbox
    assert fields_of(message.body)["Transaction #"] == ", ".join(numbers)
    assert "<br>".join(numbers) in html_of(message)
    assert fields_of(message.body)["Amount Paid"] == "$100.00"


def test_names_are_escaped_in_html_and_kept_as_typed_in_text(paid):
    prepared(name='Smith & Sons <b>"Clinic"</b>')
    Guarantor.objects.filter(external_id="2010").update(first_name="Zoë", last_name="O'Hara")

    paid()

    message = mail.outbox[0]
    assert 'Smith & Sons <b>"Clinic"</b>' in message.body
    assert "Guarantor: Zoë O'Hara" in message.body
    html = html_of(message)
    assert "<b>" not in html
    assert "Smith &amp; Sons &lt;b&gt;&quot;Clinic&quot;&lt;/b&gt;" in html
    assert "O&#x27;Hara" in html


def test_a_group_name_with_line_breaks_cannot_inject_headers(paid):
    prepared(name="Clinic\r\nBcc: victim@example.com")

    paid()

    (message,) = mail.outbox
    assert "\n" not in message.subject
    assert "\r" not in message.subject
    assert message.bcc == []
    assert "Bcc" not in str(message.message()["Bcc"] or "")


def test_no_card_number_cvv_or_token_is_in_any_email(paid):
    prepared(enable_payment_method_storage=True, enable_google_pay=True)
    token = card_token(APPROVED, cvv="737")
    paid(payment_token=token, store_card=True)
    card = StoredCard.objects.get()
    paid(1000, stored_card=card)
    payload = wallet_payload(WalletKind.GOOGLE_PAY)
    paid(1000, payment_token=payload, wallet=WalletKind.GOOGLE_PAY)

    assert len(mail.outbox) == 3
    for message in mail.outbox:
        # Every header but the random transport ones (Message-ID, the MIME boundary), and
        # every part decoded from its transfer encoding.
        whole = "\n".join(
            [message.body, html_of(message)]
            + [
                f"{name}: {value}"
                for part in message.message().walk()
                for name, value in part.items()
                if name.lower() not in ("message-id", "content-type")
            ]
            + [
                part.get_payload(decode=True).decode()
                for part in message.message().walk()
                if not part.is_multipart()
            ]
        )
        assert not [run for run in re.findall(r"\d{13,19}", whole) if cards.luhn_valid(run)]
        for secret in (token, card.vault_token, payload, "tok_", "vlt_", "1111"):
            assert secret not in whole
        assert not re.search(r"(?i)cvv|cvc|security code", whole)


# --- Failures never touch the payment -------------------------------------------------------------


class FailingBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


def test_a_failing_mail_server_is_logged_and_the_payment_stands(practice, paid, caplog):
    caplog.set_level(logging.DEBUG)
    with override_settings(EMAIL_BACKEND=f"{__name__}.FailingBackend"):
        attempt = paid()

    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert attempt.receipt.status == Receipt.Status.PAID
    (record,) = [r for r in caplog.records if "receipt email" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"receipt email for attempt {attempt.pk} not sent: SMTPServerDisconnected"
    )
    assert EMAIL not in caplog.text


def test_a_bug_while_building_the_email_is_logged_and_the_payment_stands(
    practice, paid, caplog, monkeypatch
):
    def broken(email):
        raise RuntimeError("template trouble")

    monkeypatch.setattr(notifications, "render_receipt_email", broken)
    attempt = paid()

    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert mail.outbox == []
    assert f"receipt email for attempt {attempt.pk} failed" in caplog.text


def test_a_task_backend_that_cannot_queue_is_logged_and_the_payment_stands(
    practice, paid, caplog, monkeypatch
):
    def refuse(*args, **kwargs):
        raise ConnectionError("queue down")

    monkeypatch.setattr(ImmediateBackend, "enqueue", refuse)
    attempt = paid()

    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert f"could not queue the receipt email for attempt {attempt.pk}" in caplog.text


def test_the_api_sends_the_email_given_in_the_body(
    practice, api_for, django_capture_on_commit_callbacks
):
    api = api_for(practice)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.client.post(
            "/api/v1/payments",
            data=json.dumps(
                {
                    "guarantor": "2010",
                    "amount": "15.00",
                    "payment_token": card_token(),
                    "email": EMAIL,
                }
            ),
            content_type="application/json",
            headers={**api.headers, "Idempotency-Key": "email-1"},
        )

    assert response.status_code == 201
    (message,) = mail.outbox
    assert fields_of(message.body)["Receipt #"] == response.json()["receipt_number"]
    assert fields_of(message.body)["Amount Paid"] == "$15.00"


# --- notify.email.send_email ----------------------------------------------------------------------


def test_send_email_sends_text_with_an_html_alternative():
    send_email("a@example.com", "Hello", "plain", html="<p>rich</p>")

    (message,) = mail.outbox
    assert (message.to, message.subject, message.body) == (["a@example.com"], "Hello", "plain")
    assert message.alternatives == [("<p>rich</p>", "text/html")]
    assert message.from_email == "POPS <no-reply@localhost>"


def test_send_email_without_html_is_plain_text_only():
    send_email(["a@example.com", "b@example.com"], "Hi", "plain")

    assert mail.outbox[0].to == ["a@example.com", "b@example.com"]
    assert mail.outbox[0].alternatives == []


def test_send_email_keeps_the_subject_on_one_line():
    send_email("a@example.com", "Line one\r\nBcc: x@example.com\tand more", "body")

    assert mail.outbox[0].subject == "Line one Bcc: x@example.com and more"


def test_send_email_refuses_no_recipient_and_wraps_backend_errors():
    with pytest.raises(EmailNotSent):
        send_email(" ", "s", "t")
    with (
        override_settings(EMAIL_BACKEND=f"{__name__}.FailingBackend"),
        pytest.raises(EmailNotSent, match="SMTPServerDisconnected"),
    ):
        send_email("a@example.com", "s", "t")


def test_the_file_backend_writes_each_message_under_the_mail_directory(tmp_path):
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=tmp_path / "mail",
    ):
        send_email("a@example.com", "Filed", "kept on disk")

    (written,) = (tmp_path / "mail").iterdir()
    assert "Subject: Filed" in written.read_text()
