"""Messages that follow a payment. Sent after the transaction commits, never inside it.

The emailed receipt (spec §8 step 5, §9, rule 31) is sent only when the Group's Email Receipt
option is on and the payer gave an email address, and holds exactly: Receipt #, Guarantor,
Account, Date Paid, Transaction #, Card Type and Amount Paid, under the Group's name (and logo,
when the Group has one). It is built from the receipt and its gateway transactions only, so it
cannot hold a card number, a CVV, a last 4 or a token.

The payment queues it (`queue_receipt_email`, inside the transaction that settles the payment)
as a background task, `deliver_receipt_email`, which `pops db_worker` runs (settings
"Background tasks"). Nothing here ever raises into the payment: a failure is logged (by attempt
id, never with the address or the message) and the payment stands as it is.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.template.loader import render_to_string
from django_tasks import task

from pops.core import rows
from pops.core.money import display_amount
from pops.core.tasks import enqueue_on_commit
from pops.groups.services import resolve_group
from pops.ledger.models import Practice, Receipt
from pops.notify.email import EmailNotSent, send_email
from pops.payments.models import PaymentAttempt
from pops.payments.services.receipts import WALLETS, transaction_numbers

logger = logging.getLogger("pops.payments")

TEXT_TEMPLATE = "payments/email/receipt.txt"
HTML_TEMPLATE = "payments/email/receipt.html"


@dataclass(frozen=True)
class ReceiptEmail:
    """What the emailed receipt says, and to whom."""

    to: str
    group_name: str
    logo_url: str
    receipt_number: str
    guarantor: str
    account: str  # the Guarantor ID
    date_paid: dt.date
    transaction_numbers: tuple[str, ...]
    card_type: str  # "Visa", or "Google Pay (Visa)" for a wallet
    amount_paid_cents: int

    @property
    def amount_paid(self) -> str:
        return display_amount(self.amount_paid_cents)

    @property
    def subject(self) -> str:
        return f"Payment receipt {self.receipt_number} from {self.group_name}"


def queue_receipt_email(attempt_id: int) -> None:
    """Queue the emailed receipt of a payment attempt being settled as succeeded: it is due
    when the settling transaction commits (pops.core.tasks)."""
    enqueue_on_commit(
        deliver_receipt_email, attempt_id, what=f"the receipt email for attempt {attempt_id}"
    )


@task()
def deliver_receipt_email(attempt_id: int) -> bool:
    """Send the emailed receipt if it is due; True when one was sent. Never raises."""
    try:
        email = receipt_email(attempt_id)
        if email is None:
            return False
        text, html = render_receipt_email(email)
        send_email(email.to, email.subject, text, html)
    except EmailNotSent as error:
        logger.warning("receipt email for attempt %s not sent: %s", attempt_id, error)
        return False
    except Exception:
        logger.exception("receipt email for attempt %s failed", attempt_id)
        return False
    logger.info("receipt email for attempt %s sent", attempt_id)
    return True


# What the emailed receipt says, in one statement (it follows every payment made with an email).
_RECEIPT_EMAIL = """
    SELECT attempt.status, attempt.email, receipt.id, receipt.status, receipt.number,
           receipt.date, receipt.amount_cents, receipt.method, receipt.card_brand,
           guarantor.first_name, guarantor.last_name, guarantor.external_id,
           guarantor.practice_id, grp.id, grp.name, grp.logo_url, grp.email_receipt
    FROM payments_paymentattempt attempt
    JOIN ledger_receipt receipt ON receipt.id = attempt.receipt_id
    JOIN ledger_guarantor guarantor ON guarantor.id = attempt.guarantor_id
    LEFT JOIN groups_group grp ON grp.id = attempt.group_id
    WHERE attempt.id = %s
"""


def receipt_email(attempt_id: int) -> ReceiptEmail | None:
    """The emailed receipt of an attempt, or None when none is due: the payment did not
    succeed (or was voided since), the payer gave no email, or the Group's Email Receipt
    option is off."""
    row = rows.fetch_one(_RECEIPT_EMAIL, [attempt_id])
    if row is None:  # no such attempt, or no receipt yet
        return None
    (status, to, receipt_id, receipt_status, number, date_paid, amount, method, brand) = row[:9]
    (first_name, last_name, account, practice_id, group_id, name, logo_url, email_on) = row[9:]
    to = to.strip()
    if status != PaymentAttempt.Status.SUCCEEDED or receipt_status != Receipt.Status.PAID:
        return None
    if not to:
        return None
    practice_name = ""
    if group_id is None or not name:
        practice = Practice.objects.get(pk=practice_id)
        practice_name = practice.name
        if group_id is None:  # no Group chosen: the practice's default (or the defaults)
            group = resolve_group(practice)
            name, logo_url, email_on = group.name, group.logo_url, group.email_receipt
    if not email_on:
        return None
    if isinstance(date_paid, str):  # SQLite answers a joined date as ISO text
        date_paid = dt.date.fromisoformat(date_paid)
    return ReceiptEmail(
        to=to,
        group_name=name or practice_name,
        logo_url=logo_url,
        receipt_number=number,
        guarantor=f"{first_name} {last_name}".strip(),
        account=account,
        date_paid=date_paid,
        # a Paid receipt: every part approved
        transaction_numbers=transaction_numbers(
            Receipt(pk=receipt_id, type=Receipt.Type.PAYMENT, status=receipt_status)
        ),
        card_type=card_type(method, brand),
        amount_paid_cents=amount,
    )


def card_type(method: str, brand: str) -> str:
    if method in WALLETS:
        return f"{method} ({brand})" if brand else method
    return brand or method or "Card"


def render_receipt_email(email: ReceiptEmail) -> tuple[str, str]:
    """The plain-text and HTML bodies."""
    context = {"email": email}
    return render_to_string(TEXT_TEMPLATE, context), render_to_string(HTML_TEMPLATE, context)
