import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kodo.settings")

app = Celery("kodo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    # A job's row is its truth; a task is acknowledged only once it has finished, and a worker
    # that dies mid-task gives it back to the queue. Tasks are written to be safe to run again.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    timezone="UTC",
    enable_utc=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks()
