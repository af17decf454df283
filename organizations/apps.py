from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "organizations"

    def ready(self):
        # local: AppConfig.ready runs once the app registry is loaded
        # signals connects the audit log to auth events; two_factor marks log ins that skipped
        # the code step
        from organizations import signals, two_factor  # noqa: F401
