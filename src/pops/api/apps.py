from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "pops.api"
    label = "api"
    verbose_name = "JSON API"
