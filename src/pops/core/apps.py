from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "pops.core"
    label = "core"
    verbose_name = "POPS core"

    def ready(self) -> None:
        from pops.core import rows

        rows.let_psycopg_cache_the_hot_statements()
