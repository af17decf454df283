from celery import shared_task


@shared_task(ignore_result=False)
def ping(value: int) -> int:
    """A health check for the queue: a worker answers with value + 1."""
    return value + 1
