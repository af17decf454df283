from django.apps import AppConfig


class O365Config(AppConfig):
    name = "o365"
    verbose_name = "Office 365"

    def ready(self):
        # local: AppConfig.ready runs once the app registry is loaded
        from kodo.crypto import register_encrypted_fields

        register_encrypted_fields(
            "o365.Configuration",
            "client_secret_encrypted",
            "certificate_password_encrypted",
            "certificate_pfx_encrypted",
        )

        from kodo import jobs
        from o365.models import DirectoryJob

        jobs.register(DirectoryJob)
