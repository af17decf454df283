from django.apps import AppConfig


class KodoConfig(AppConfig):
    name = "kodo"
    verbose_name = "Kodo"
