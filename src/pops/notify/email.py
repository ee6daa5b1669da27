"""Email through Django's email backends: SMTP in production, a file or console backend in the
demo, locmem in tests (settings: EMAIL_BACKEND, EMAIL_HOST, ...; see settings.py "Email").

One function, `send_email`. It raises `EmailNotSent` when the backend could not deliver, and
logs nothing itself (a message body holds patient data; the caller logs what it may).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

_LINE_BREAKS = re.compile(r"[\r\n\t\x00-\x1f\x7f]+")
SUBJECT_MAX_LENGTH = 200


class EmailNotSent(Exception):
    """The backend failed (or refused the message). Its message names the error's type only."""


def send_email(
    to: str | Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    *,
    from_email: str | None = None,
) -> None:
    """Send one message: `text` always, `html` as an alternative when given.

    `to` is one address or several. The subject is kept to one line (a line break in it would
    be a header injection, which Django refuses). Raises `EmailNotSent` on any failure.
    """
    recipients = [to] if isinstance(to, str) else list(to)
    recipients = [address.strip() for address in recipients if address and address.strip()]
    if not recipients:
        raise EmailNotSent("no recipient")
    message = EmailMultiAlternatives(
        subject=one_line(subject),
        body=text,
        from_email=from_email or settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        connection=get_connection(fail_silently=False),
    )
    if html is not None:
        message.attach_alternative(html, "text/html")
    try:
        sent = message.send()
    except Exception as error:  # SMTP, socket, file system, bad header: all one failure here
        raise EmailNotSent(type(error).__name__) from error
    if not sent:
        raise EmailNotSent("the backend sent nothing")


def one_line(subject: str) -> str:
    """`subject` as one line of at most SUBJECT_MAX_LENGTH characters."""
    return " ".join(_LINE_BREAKS.sub(" ", subject).split())[:SUBJECT_MAX_LENGTH]
