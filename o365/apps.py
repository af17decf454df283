from django.apps import AppConfig


class O365Config(AppConfig):
    name = "o365"
    verbose_name = "Office 365"
