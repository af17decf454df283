from celery import shared_task

from kodo import jobs


@shared_task(ignore_result=False)
def ping(value: int) -> int:
    """A health check for the queue: a worker answers with value + 1."""
    return value + 1


@shared_task(time_limit=300, soft_time_limit=240)
def recover_jobs():
    """Every KODO_RECOVERY_SECONDS (beat): resume jobs of every kind whose worker was lost, send
    queued jobs whose message was never sent or may be gone (kodo.jobs.recover_jobs)."""
    return str(jobs.recover_jobs())
