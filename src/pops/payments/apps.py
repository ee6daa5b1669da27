from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "pops.payments"
    label = "payments"
    verbose_name = "Payments"
