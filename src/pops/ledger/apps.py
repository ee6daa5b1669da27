from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "pops.ledger"
    label = "ledger"
    verbose_name = "Practice ledger"
