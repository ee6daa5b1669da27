"""The emailed receipt (spec §8 step 5, §9, rules 30-31; issue 3 item 8) and the notify app's
email sender. Queued in the transaction that settles the payment and sent by the task worker
(here `run_queued_tasks`), only when the Group's Email Receipt option is on and the payer gave
an email; it holds exactly Receipt #, Guarantor, Account, Date Paid, Transaction #, Card Type
and Amount Paid, and no card number, CVV or token."""

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
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from pops.core import clock
from pops.core.audit import Actor
from pops.groups.models import Group
from pops.groups.services import prepare_practice
from pops.ledger.models import Guarantor, Practice, Receipt
from pops.notify.email import EmailNotSent, send_email
from pops.payments.gateways.base import WalletKind
from pops.payments.gateways.sandbox import cards
from pops.payments.gateways.sandbox.models import Transaction
from pops.payments.models import PaymentAttempt, StoredCard
from pops.payments.services import attempts, notifications
from pops.payments.services.attempts import PaymentRequest, pay
from pops.payments.services.reconcile import reconcile
from tests.conftest import run_import, run_queued_tasks
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


def payment(amount_cents: int = 2000, **fields: Any) -> PaymentAttempt:
    if "stored_card" not in fields:
        fields.setdefault("payment_token", card_token(APPROVED))
    fields.setdefault("email", EMAIL)
    return pay(PaymentRequest(guarantor(), amount_cents, uuid.uuid4().hex, "f", ACTOR, **fields))


@pytest.fixture
def paid():
    """`paid(amount, **fields)` takes a payment, then the worker runs what it queued."""

    def make(amount_cents: int = 2000, **fields: Any) -> PaymentAttempt:
        attempt = payment(amount_cents, **fields)
        run_queued_tasks()
        return attempt

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


def test_the_email_is_queued_with_the_payment_and_sent_by_the_worker(practice):
    attempt = payment(2000)

    assert mail.outbox == []
    (task,) = DBTaskResult.objects.all()
    assert task.status == "READY"
    assert task.task_path == "pops.payments.services.notifications.deliver_receipt_email"
    assert task.args_kwargs == {"args": [attempt.pk], "kwargs": {}}

    run_queued_tasks()

    (message,) = mail.outbox
    assert message.to == [EMAIL]
    task.refresh_from_db()
    assert task.status == "SUCCESSFUL"
    assert task.return_value is True


def test_a_settlement_that_rolls_back_queues_no_email(practice, monkeypatch):
    """The email is queued in the settling transaction: rolled back, nothing is queued; the
    reconciler's settlement queues it once."""
    queue = attempts.queue_receipt_email

    def queue_then_fail(attempt_id: int) -> None:
        queue(attempt_id)
        raise RuntimeError("the settlement fails after queueing")

    monkeypatch.setattr(attempts, "queue_receipt_email", queue_then_fail)
    with pytest.raises(RuntimeError):
        payment(2000)
    assert not DBTaskResult.objects.exists()
    (attempt,) = PaymentAttempt.objects.all()
    assert attempt.status == PaymentAttempt.Status.PROCESSING

    monkeypatch.setattr(attempts, "queue_receipt_email", queue)
    reconcile(now=clock.now() + dt.timedelta(minutes=11))  # a processing attempt's wait
    run_queued_tasks()

    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert DBTaskResult.objects.count() == 1
    (message,) = mail.outbox
    assert fields_of(message.body)["Receipt #"] == attempt.receipt.number


IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


def test_with_the_immediate_backend_it_is_sent_once_the_payment_commits(
    practice, django_capture_on_commit_callbacks
):
    with override_settings(TASKS=IMMEDIATE):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            attempt = payment(2000)
        assert mail.outbox == []
        (send,) = callbacks
        send()  # the commit

    assert not DBTaskResult.objects.exists()
    (message,) = mail.outbox
    assert fields_of(message.body)["Receipt #"] == attempt.receipt.number


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
    assert not DBTaskResult.objects.exists()  # nothing queued either


def test_no_email_when_the_payer_gave_none(practice, paid):
    paid(email="")

    assert mail.outbox == []


def test_no_email_for_a_declined_payment(practice, paid):
    attempt = paid(payment_token=card_token(DECLINED))

    assert attempt.receipt.status == Receipt.Status.UNSUCCESSFUL
    assert mail.outbox == []


def test_an_unknown_outcome_sends_nothing_until_the_reconciler_settles_it(practice, paid):
    attempt = paid(payment_token=card_token(TIMES_OUT))
    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    assert mail.outbox == []

    reconcile(older_than=dt.timedelta(0))
    run_queued_tasks()

    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    (message,) = mail.outbox
    assert fields_of(message.body)["Receipt #"] == attempt.receipt.number


def test_a_replayed_payment_sends_no_second_email(practice, paid):
    attempt = paid()
    again = pay(
        PaymentRequest(guarantor(), 2000, attempt.idempotency_key, "f", ACTOR, payment_token="x")
    )
    run_queued_tasks()

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


def test_a_split_payment_lists_each_transaction_number():
    split = Split()

    attempt = split.pay(10000, email=EMAIL)
    run_queued_tasks()

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

    monkeypatch.setattr(DatabaseBackend, "enqueue", refuse)
    attempt = paid()

    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert attempt.receipt.status == Receipt.Status.PAID
    assert f"could not queue the receipt email for attempt {attempt.pk}" in caplog.text
    assert EMAIL not in caplog.text
    assert mail.outbox == []


def test_the_api_sends_the_email_given_in_the_body(practice, api_for):
    api = api_for(practice)
    response = api.client.post(
        "/api/v1/payments",
        data=json.dumps(
            {"guarantor": "2010", "amount": "15.00", "payment_token": card_token(), "email": EMAIL}
        ),
        content_type="application/json",
        headers={**api.headers, "Idempotency-Key": "email-1"},
    )
    run_queued_tasks()

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
