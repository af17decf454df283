"""The Celery beat entry behind "Automatically synchronize accounts"."""

import json

from django_celery_beat.models import CrontabSchedule, PeriodicTask

TASK = "o365.tasks.auto_synchronize"


def entry_name(service) -> str:
    return f"Synchronize users of {service.code}"


def sync_beat_entry(service):
    """Create, update or remove the service's beat entry to match its settings."""
    if not (service.auto_sync_enabled and service.auto_sync_time):
        PeriodicTask.objects.filter(name=entry_name(service)).delete()
        return None
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=str(service.auto_sync_time.minute),
        hour=str(service.auto_sync_time.hour),
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=service.auto_sync_time_zone,
    )
    task, _ = PeriodicTask.objects.update_or_create(
        name=entry_name(service),
        defaults={
            "task": TASK,
            "crontab": crontab,
            "interval": None,
            "args": json.dumps([service.pk]),
            "enabled": True,
        },
    )
    return task
