from celery import shared_task

from schedules import actions
from schedules.models import Schedule


@shared_task
def fire_schedule(schedule_id: int):
    """Fired by Celery beat with the schedule's id; a disabled or deleted schedule does nothing."""
    schedule = Schedule.objects.filter(pk=schedule_id, enabled=True).first()
    if schedule is not None:
        actions.do_fire_schedule(schedule)


@shared_task
def notify_finished_firings():
    actions.do_notify_finished_firings()


@shared_task
def send_summary_reports():
    actions.do_send_summary_reports()
