from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "organizations"

    def ready(self):
        from organizations import signals  # noqa: F401  (connects the audit log to auth events)
