"""POPS Groups: the branding and options that shape a practice's patient experience.

Every option of the spec (§5) is a field here. A practice that has not been prepared, or has no
Group yet, is served with an unsaved `Group()` carrying these defaults.
"""

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from pops.ledger.models import Practice

colour = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a colour like #1a73e8.")


def colour_field(default: str) -> models.CharField:
    return models.CharField(max_length=7, default=default, validators=[colour])


class Group(models.Model):
    class LandingPage(models.TextChoices):
        HOME = "home", "Home"
        ACCOUNT = "account", "Account"
        PAY = "pay", "Pay"

    class LogoutFunction(models.TextChoices):
        LOGOUT = "logout", "Logout"
        CLOSE = "close", "Close"
        NONE = "none", "None"

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="groups")
    slug = models.SlugField(max_length=50)
    is_default = models.BooleanField(default=False)

    # Branding
    name = models.CharField(max_length=100)
    favicon_url = models.URLField(blank=True)
    logo_url = models.URLField(blank=True, help_text="250 px wide by 64 px high")
    home_asset_url = models.URLField(blank=True)

    # Theme
    background_color = colour_field("#f6f7f9")
    surface_color = colour_field("#ffffff")
    primary_color = colour_field("#1d4ed8")
    secondary_color = colour_field("#475569")
    accent_color = colour_field("#0d9488")
    info_color = colour_field("#0369a1")
    success_color = colour_field("#15803d")
    error_color = colour_field("#b91c1c")
    warning_color = colour_field("#b45309")
    dark = models.BooleanField(default=False, help_text="Tick when the colours above are dark.")

    # Options: Payments
    enable_apple_pay = models.BooleanField(default=False)
    enable_credit_card = models.BooleanField("Enable Credit Card Transactions", default=True)
    enable_google_pay = models.BooleanField(default=False)
    enable_payment_method_storage = models.BooleanField(default=False)
    auto_post = models.BooleanField("Auto-Post Payments", default=True)
    require_cvv = models.BooleanField("Require CVV", default=True)
    email_receipt = models.BooleanField(default=True)
    split_payments = models.BooleanField(
        "Split payments to multiple Facilities or Providers", default=False
    )
    minimum_payment_cents = models.PositiveIntegerField(default=100)
    allow_prepayment = models.BooleanField(
        default=False, help_text="Allow paying more than the Current Balance (kept unapplied)."
    )

    # Look and Feel
    enable_account_dashboard = models.BooleanField(default=True)
    footer_email = models.EmailField(blank=True)
    footer_phone = models.CharField(max_length=32, blank=True)
    footer_text = models.CharField(max_length=300, blank=True)
    include_new_charges = models.BooleanField("Include New Charges in Amount Due", default=False)
    landing_page = models.CharField(
        max_length=10, choices=LandingPage.choices, default=LandingPage.HOME
    )
    logout_function = models.CharField(
        max_length=10, choices=LogoutFunction.choices, default=LogoutFunction.LOGOUT
    )
    show_collections = models.BooleanField(default=False)
    show_current_balance = models.BooleanField(default=True)
    show_escrow = models.BooleanField(default=False)

    # Scheduling
    enable_appointments = models.BooleanField(default=True)
    enable_direct_scheduling = models.BooleanField(default=False)

    # Sessions and links
    session_idle_minutes = models.PositiveSmallIntegerField(default=15)
    allow_session_extension = models.BooleanField(default=False)
    staff_qr_link_minutes = models.PositiveSmallIntegerField(default=15)
    statement_link_days = models.PositiveSmallIntegerField(default=365)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["practice", "slug"], name="group_slug_unique"),
            models.UniqueConstraint(
                fields=["practice"], condition=Q(is_default=True), name="one_default_group"
            ),
        ]

    def __str__(self) -> str:
        return self.name
