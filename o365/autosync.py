"""The Celery beat entry behind "Automatically synchronize accounts"."""

import json

from django_celery_beat.models import CrontabSchedule, PeriodicTask

TASK = "o365.tasks.auto_synchronize"


def entry_name(configuration) -> str:
    return f"Synchronize users of {configuration.code}"


def sync_beat_entry(configuration):
    """Create, update or remove the configuration's beat entry to match its settings."""
    if not (configuration.auto_sync_enabled and configuration.auto_sync_time):
        PeriodicTask.objects.filter(name=entry_name(configuration)).delete()
        return None
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=str(configuration.auto_sync_time.minute),
        hour=str(configuration.auto_sync_time.hour),
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=configuration.auto_sync_time_zone,
    )
    task, _ = PeriodicTask.objects.update_or_create(
        name=entry_name(configuration),
        defaults={
            "task": TASK,
            "crontab": crontab,
            "interval": None,
            "args": json.dumps([configuration.pk]),
            "enabled": True,
        },
    )
    return task
