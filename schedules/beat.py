"""Each schedule owns one django-celery-beat entry; saving a schedule keeps it in step."""

import datetime as dt
import json

from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

TASK = "schedules.tasks.fire_schedule"


def _crontab(schedule) -> CrontabSchedule:
    days = (
        "*"
        if schedule.frequency == schedule.Frequency.DAILY
        # Celery counts days of the week from Sunday = 0; Kodo from Monday = 0.
        else ",".join(str((day + 1) % 7) for day in sorted(schedule.weekdays))
    )
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=str(schedule.time.minute),
        hour=str(schedule.time.hour),
        day_of_week=days,
        day_of_month="*",
        month_of_year="*",
        timezone=schedule.time_zone,
    )
    return crontab


def sync_beat_entry(schedule) -> PeriodicTask:
    """Create or update the schedule's beat entry (crontab in its time zone, or an interval)."""
    start = dt.datetime.combine(schedule.start_date, dt.time(), schedule.tz)
    values = {
        "task": TASK,
        "args": json.dumps([schedule.pk]),
        "enabled": schedule.enabled,
        "description": f"Kodo schedule {schedule.code}",
        "start_time": start,
        "crontab": None,
        "interval": None,
    }
    if schedule.frequency == schedule.Frequency.HOURLY:
        values["interval"], _ = IntervalSchedule.objects.get_or_create(
            every=schedule.every_hours, period=IntervalSchedule.HOURS
        )
        values["start_time"] = dt.datetime.combine(schedule.start_date, schedule.time, schedule.tz)
    else:
        values["crontab"] = _crontab(schedule)
    task = schedule.periodic_task
    if task is None:
        task = PeriodicTask.objects.create(name=f"Backup schedule {schedule.code}", **values)
        schedule.periodic_task = task
        schedule.save(update_fields=["periodic_task"])
    else:
        for key, value in values.items():
            setattr(task, key, value)
        task.save()
    return task


def remove_beat_entry(schedule):
    if schedule.periodic_task_id:
        PeriodicTask.objects.filter(pk=schedule.periodic_task_id).delete()
