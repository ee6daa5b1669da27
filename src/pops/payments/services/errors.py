"""What the payment services refuse, in words a patient or a client may read."""


class PaymentRefused(Exception):
    """Bad input (an amount outside the rules, an unusable token, ...): nothing was written,
    nothing was charged, and the idempotency key is not used up. `path` names the field."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path
        self.message = message


class KeyReused(Exception):
    """The idempotency key was used before with another request (HTTP 422)."""


class InProgress(Exception):
    """A request with this idempotency key is still being processed (HTTP 409)."""


class PaymentsUnavailable(Exception):
    """Payments cannot be taken now (no merchant account, gateway misconfigured): nothing was
    charged. For operators; the patient is asked to try later (HTTP 503)."""
