from django.apps import AppConfig


class SchedulesConfig(AppConfig):
    name = "schedules"

    def ready(self):
        # local: models are loaded only now; backups sits below schedules and must not import it.
        from backups.prune import register_policy_source
        from schedules.retention import schedule_policies

        register_policy_source(schedule_policies)
