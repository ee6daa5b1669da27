from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "pops.groups"
    label = "groups"
    verbose_name = "POPS Groups"
