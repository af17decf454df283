from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "organizations"

    def ready(self):
        # local: AppConfig.ready runs once the app registry is loaded
        from organizations import signals  # noqa: F401  (connects the audit log to auth events)
