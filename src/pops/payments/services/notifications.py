"""Messages that follow a payment. Sent after the transaction commits, never inside it."""

import logging

logger = logging.getLogger("pops.payments")


def send_receipt_email(attempt_id: int) -> None:
    """The emailed receipt (spec §9), when the Group's Email Receipt is on and the payer gave
    an email. Filled in with the notify app."""
    logger.debug("receipt email for attempt %s", attempt_id)
