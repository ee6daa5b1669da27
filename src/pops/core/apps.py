from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "pops.core"
    label = "core"
    verbose_name = "POPS core"
