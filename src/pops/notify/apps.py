from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "pops.notify"
    label = "notify"
    verbose_name = "Notifications"
