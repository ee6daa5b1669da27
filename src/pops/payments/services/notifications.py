"""Messages that follow a payment. Sent after the transaction commits, never inside it.

The emailed receipt (spec §8 step 5, §9, rule 31) is sent only when the Group's Email Receipt
option is on and the payer gave an email address, and holds exactly: Receipt #, Guarantor,
Account, Date Paid, Transaction #, Card Type and Amount Paid, under the Group's name (and logo,
when the Group has one). It is built from the receipt and its gateway transactions only, so it
cannot hold a card number, a CVV, a last 4 or a token.

`send_receipt_email` hands the work to a background task (django-tasks; the immediate backend
runs it at once for now, see settings "Email"). Nothing here ever raises into the payment:
a failure is logged (by attempt id, never with the address or the message) and the payment
stands as it is.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.template.loader import render_to_string
from django_tasks import task

from pops.core import rows
from pops.core.money import display_amount
from pops.ledger.models import Guarantor, Receipt
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


def send_receipt_email(attempt_id: int) -> None:
    """Queue the emailed receipt of a succeeded payment attempt. Never raises."""
    try:
        deliver_receipt_email.enqueue(attempt_id)
    except Exception:
        logger.exception("could not queue the receipt email for attempt %s", attempt_id)


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


def receipt_email(attempt_id: int) -> ReceiptEmail | None:
    """The emailed receipt of an attempt, or None when none is due: the payment did not
    succeed (or was voided since), the payer gave no email, or the Group's Email Receipt
    option is off."""
    from pops.payments.services.attempts import group_of, practice_of

    attempt = rows.get(PaymentAttempt, "id = %s", [attempt_id])
    if attempt is None or attempt.status != PaymentAttempt.Status.SUCCEEDED:
        return None
    to = attempt.email.strip()
    if not to or attempt.receipt_id is None:
        return None
    receipt = rows.get(Receipt, "id = %s", [attempt.receipt_id])
    if receipt is None or receipt.status != Receipt.Status.PAID:
        return None
    guarantor = rows.get(Guarantor, "id = %s", [attempt.guarantor_id])
    assert guarantor is not None  # a foreign key
    attempt.guarantor = guarantor
    group = group_of(attempt)
    if not group.email_receipt:
        return None
    numbers = transaction_numbers(receipt)  # a Paid receipt: every part approved
    return ReceiptEmail(
        to=to,
        group_name=group.name or practice_of(guarantor).name,
        logo_url=group.logo_url,
        receipt_number=receipt.number,
        guarantor=f"{guarantor.first_name} {guarantor.last_name}".strip(),
        account=guarantor.external_id,
        date_paid=receipt.date,
        transaction_numbers=numbers,
        card_type=card_type(receipt),
        amount_paid_cents=receipt.amount_cents,
    )


def card_type(receipt: Receipt) -> str:
    brand = receipt.card_brand
    if receipt.method in WALLETS:
        return f"{receipt.method} ({brand})" if brand else receipt.method
    return brand or receipt.method or "Card"


def render_receipt_email(email: ReceiptEmail) -> tuple[str, str]:
    """The plain-text and HTML bodies."""
    context = {"email": email}
    return render_to_string(TEXT_TEMPLATE, context), render_to_string(HTML_TEMPLATE, context)
