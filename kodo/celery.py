import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kodo.settings")

# Work is routed to queues by kind, each consumed by its own worker processes (Procfile, README
# "Running it for real"), so that long backups never hold up interactive work. Every task is
# named here; a task not named goes to maintenance (tests/kodo/test_queues.py checks none is).
QUEUES = ("interactive", "backup", "restore", "maintenance")
# The worker processes of `make run` (Procfile) and of the tests: the queues each consumes.
WORKERS = {
    "interactive": ("interactive",),
    "backup": ("backup", "restore"),
    "maintenance": ("maintenance",),
}
ROUTES = {
    # interactive: an administrator is waiting
    "o365.tasks.run_directory_job": "interactive",
    "o365.tasks.auto_synchronize": "interactive",
    # backup: runs, schedule firings and the fan-out that starts runs
    "backups.tasks.run_backup": "backup",
    "backups.tasks.fan_out_backups": "backup",
    "schedules.tasks.fire_schedule": "backup",
    # restore: restores to Microsoft 365
    "backups.tasks.run_restore": "restore",
    # maintenance: retention, verification, recovery, emails, health
    "backups.tasks.prune_organizations": "maintenance",
    "backups.tasks.prune_organization": "maintenance",
    "backups.tasks.compact_store": "maintenance",
    "kodo.tasks.recover_jobs": "maintenance",
    "backups.tasks.verify_stores": "maintenance",
    "backups.tasks.verify_organization": "maintenance",
    "backups.tasks.record_usage": "maintenance",
    "schedules.tasks.notify_finished_firings": "maintenance",
    "schedules.tasks.send_summary_reports": "maintenance",
    "kodo.tasks.ping": "maintenance",
}
DEFAULT_QUEUE = "maintenance"


def queue_of(task_name: str) -> str:
    return ROUTES.get(task_name, DEFAULT_QUEUE)


app = Celery("kodo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    # A job's row is its truth; a task is acknowledged only once it has finished, and a worker
    # that dies mid-task gives it back to the queue. Tasks are written to be safe to run again.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # one message at a time per worker slot: a busy worker leaves the rest to idle ones
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_default_queue=DEFAULT_QUEUE,
    task_routes={name: {"queue": queue} for name, queue in ROUTES.items()},
    timezone="UTC",
    enable_utc=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks()
