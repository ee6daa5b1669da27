"""The practice ledger. Every row belongs to one Practice; money is integer cents.

Ids that other systems know (`external_id`, an encounter's `number`) are strings unique within
the practice. `LedgerEntry` is the append-only record every balance can be replayed from; the
running figures stored on lines (`patient_paid_cents`) and the applications are kept equal to it
by the services in `pops.ledger.services`.
"""

from django.db import models
from django.db.models import F, Q

from pops.core.models import AppendOnlyModel

ID_LENGTH = 64


class Practice(models.Model):
    external_id = models.CharField(max_length=ID_LENGTH, unique=True)
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="America/New_York")
    statement_terms_days = models.PositiveSmallIntegerField(default=21)
    prepared_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @property
    def is_prepared(self) -> bool:
        """True once `pops prepare` has readied the practice for POPS."""
        return self.prepared_at is not None


class PracticeScoped(models.Model):
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")

    class Meta:
        abstract = True


class NamedEntity(PracticeScoped):
    external_id = models.CharField(max_length=ID_LENGTH)
    name = models.CharField(max_length=200)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name


class Facility(NamedEntity):
    class Meta:
        verbose_name_plural = "facilities"
        constraints = [
            models.UniqueConstraint(fields=["practice", "external_id"], name="facility_id_unique")
        ]


class Provider(NamedEntity):
    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["practice", "external_id"], name="provider_id_unique")
        ]


class CollectionAgency(NamedEntity):
    class Meta:
        verbose_name_plural = "collection agencies"
        constraints = [
            models.UniqueConstraint(fields=["practice", "external_id"], name="agency_id_unique")
        ]


class Guarantor(PracticeScoped):
    """The person responsible for one or more patients; `external_id` is the Account Number."""

    external_id = models.CharField("Guarantor ID", max_length=ID_LENGTH)
    first_name = models.CharField(max_length=100)
    preferred_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100)
    email = models.CharField(max_length=254, blank=True)
    mobile = models.CharField(max_length=32, blank=True)
    text_opt_out = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["practice", "external_id"], name="guarantor_id_unique")
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} ({self.external_id})"


class Patient(PracticeScoped):
    external_id = models.CharField(max_length=ID_LENGTH)
    guarantor = models.ForeignKey(Guarantor, on_delete=models.PROTECT, related_name="patients")
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    birth_date = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["practice", "external_id"], name="patient_id_unique")
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"


class Encounter(PracticeScoped):
    """A visit. `guarantor` repeats the patient's guarantor so balances need one index lookup."""

    number = models.CharField(max_length=ID_LENGTH)
    # The number as an integer where it is one, so oldest-first posting orders 9 before 10.
    number_numeric = models.BigIntegerField(null=True)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="encounters")
    guarantor = models.ForeignKey(Guarantor, on_delete=models.PROTECT, related_name="encounters")
    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="+")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    service_date = models.DateField()
    collection_agency = models.ForeignKey(
        CollectionAgency, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    collections_sent_on = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["practice", "number"], name="encounter_number_unique"),
            models.CheckConstraint(
                condition=Q(collection_agency__isnull=True, collections_sent_on__isnull=True)
                | Q(collection_agency__isnull=False, collections_sent_on__isnull=False),
                name="encounter_collections_complete",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def in_collections(self) -> bool:
        return self.collection_agency_id is not None


class ServiceLine(PracticeScoped):
    """One charge of an encounter; its Service ID reads `<encounter number>-<line>`."""

    encounter = models.ForeignKey(Encounter, on_delete=models.PROTECT, related_name="lines")
    line = models.PositiveIntegerField()
    code = models.CharField(max_length=32, blank=True)
    description = models.CharField(max_length=200, blank=True)
    billed_cents = models.BigIntegerField(default=0)
    adjusted_cents = models.BigIntegerField(default=0)
    insurance_paid_cents = models.BigIntegerField(default=0)
    pending_insurance_cents = models.BigIntegerField(default=0)
    # Patient money applied to the line: the sum of its applications (replayable from entries).
    patient_paid_cents = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["encounter", "line"], name="service_line_unique"),
            models.CheckConstraint(
                condition=Q(billed_cents__gte=0)
                & Q(adjusted_cents__gte=0)
                & Q(insurance_paid_cents__gte=0)
                & Q(pending_insurance_cents__gte=0)
                & Q(patient_paid_cents__gte=0),
                name="service_line_amounts_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.encounter.number}-{self.line}"

    @property
    def responsibility_cents(self) -> int:
        """What the patient owes on the line before any patient payment."""
        return (
            self.billed_cents
            - self.adjusted_cents
            - self.insurance_paid_cents
            - self.pending_insurance_cents
        )

    @property
    def remaining_cents(self) -> int:
        """Remaining Balance: responsibility less patient payments applied, never below 0."""
        return max(0, self.responsibility_cents - self.patient_paid_cents)


class ReferenceBatch(PracticeScoped):
    """A day's batch of receipts. POPS opens one per practice-local date on its first payment."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        ARCHIVED = "archived", "Archived"

    POPS_DESCRIPTION = "API Payments"

    date = models.DateField()
    description = models.CharField(max_length=100)
    user = models.ForeignKey(
        "core.User", null=True, on_delete=models.PROTECT, related_name="reference_batches"
    )
    is_pops = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "reference batches"
        constraints = [
            # A constraint, not luck: one open POPS batch per practice and date.
            models.UniqueConstraint(
                fields=["practice", "date"],
                condition=Q(is_pops=True, status="open"),
                name="one_open_pops_batch_per_day",
            )
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.description} ({self.get_status_display()})"


class Receipt(PracticeScoped):
    """Patient money received (a payment) or returned (a refund). Amounts are positive."""

    class Type(models.TextChoices):
        PAYMENT = "payment", "Patient Payment"
        REFUND = "refund", "Patient Refund"

    class Status(models.TextChoices):
        PAID = "paid", "Paid"
        UNSUCCESSFUL = "unsuccessful", "Unsuccessful"
        VOIDED = "voided", "Voided"

    # No index of its own: the (guarantor, date) index serves lookups by guarantor.
    guarantor = models.ForeignKey(
        Guarantor, on_delete=models.PROTECT, related_name="receipts", db_index=False
    )
    number = models.CharField("Receipt Number", max_length=ID_LENGTH)
    type = models.CharField(max_length=10, choices=Type.choices, default=Type.PAYMENT)
    date = models.DateField(help_text="Receipt date, in the practice's time zone")
    amount_cents = models.BigIntegerField()
    method = models.CharField(max_length=40, blank=True)
    source = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.PAID)
    # Made through POPS itself (not imported): an import can never overwrite it.
    made_in_pops = models.BooleanField(default=False)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    reference_batch = models.ForeignKey(
        ReferenceBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="receipts"
    )
    # A Patient Refund receipt names the payment it gives money back from.
    refund_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["practice", "number"], name="receipt_number_unique"),
            models.CheckConstraint(condition=Q(amount_cents__gte=0), name="receipt_amount_gte_0"),
        ]
        indexes = [models.Index(fields=["guarantor", "date"])]

    def __str__(self) -> str:
        return f"Receipt {self.number}"


class ReceiptNumber(models.Model):
    """The sequence POPS's own Receipt Numbers come from: one inserted row per number, so
    numbers are unique under any concurrency and no counter row is ever hot."""

    PREFIX = "P"

    def __str__(self) -> str:
        return f"{self.PREFIX}{self.pk:07d}"

    @classmethod
    def next(cls, key: int | None = None) -> str:
        """A new Receipt Number: its row written now, or, given a `key` drawn ahead by
        `rows.next_key` (PostgreSQL), with the writes of a `rows.together` block."""
        from pops.core import rows

        number = cls()
        rows.insert_keyed(number, key)
        return str(number)


class Application(PracticeScoped):
    """Part of a payment receipt applied to one service line (current state; history is in
    the ledger entries)."""

    # No index of its own: the unique (receipt, line) index serves lookups by receipt.
    receipt = models.ForeignKey(
        Receipt, on_delete=models.PROTECT, related_name="applications", db_index=False
    )
    line = models.ForeignKey(ServiceLine, on_delete=models.PROTECT, related_name="applications")
    guarantor = models.ForeignKey(Guarantor, on_delete=models.PROTECT, related_name="+")
    amount_cents = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["receipt", "line"], name="application_unique"),
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="application_amount_gt_0"),
        ]

    def __str__(self) -> str:
        return f"{self.amount_cents} cents of receipt {self.receipt_id} on line {self.line_id}"


class Statement(PracticeScoped):
    guarantor = models.ForeignKey(Guarantor, on_delete=models.PROTECT, related_name="statements")
    external_id = models.CharField(max_length=ID_LENGTH)
    statement_date = models.DateField()
    due_date = models.DateField()
    statement_balance_cents = models.BigIntegerField()
    amount_due_cents = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["practice", "external_id"], name="statement_id_unique")
        ]
        indexes = [models.Index(fields=["guarantor", "statement_date"])]

    def __str__(self) -> str:
        return f"Statement {self.external_id} of {self.statement_date}"


class Appointment(PracticeScoped):
    external_id = models.CharField(max_length=ID_LENGTH)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="appointments")
    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="+")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    starts_at = models.DateTimeField()
    status = models.CharField(max_length=30, default="scheduled")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "external_id"], name="appointment_id_unique"
            )
        ]
        indexes = [models.Index(fields=["patient", "starts_at"])]

    def __str__(self) -> str:
        return f"Appointment {self.external_id} at {self.starts_at:%Y-%m-%d %H:%M}"


class Account(models.TextChoices):
    """Ledger accounts. Each entry moves `amount_cents` from its credit to its debit account."""

    PATIENT_AR = "ar", "Patient receivable (per line)"
    UNAPPLIED = "unapplied", "Unapplied funds (per guarantor)"
    CASH = "cash", "Cash (practice)"
    CHARGES = "charges", "Patient charges (practice)"


class LedgerEntry(AppendOnlyModel):
    """An append-only double-entry transfer: debit and credit in one row, so every entry
    balances by construction. Corrections are reversing entries (accounts swapped, `reverses`
    set); nothing here is ever updated or deleted.

    - charge:      debit ar(line)         credit charges   (patient responsibility on a line)
    - payment:     debit cash             credit unapplied (money received from the guarantor)
    - application: debit unapplied        credit ar(line)  (money put on a line)
    - refund:      debit unapplied        credit cash      (money returned)
    """

    class Kind(models.TextChoices):
        CHARGE = "charge"
        PAYMENT = "payment"
        APPLICATION = "application"
        REFUND = "refund"

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    guarantor = models.ForeignKey(Guarantor, on_delete=models.PROTECT, related_name="+")
    line = models.ForeignKey(ServiceLine, null=True, on_delete=models.PROTECT, related_name="+")
    receipt = models.ForeignKey(Receipt, null=True, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    debit = models.CharField(max_length=10, choices=Account.choices)
    credit = models.CharField(max_length=10, choices=Account.choices)
    amount_cents = models.BigIntegerField()
    reverses = models.ForeignKey("self", null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="entry_amount_gt_0"),
            models.CheckConstraint(condition=~Q(debit=F("credit")), name="entry_two_accounts"),
        ]
