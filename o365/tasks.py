from celery import shared_task

from o365 import actions


@shared_task(acks_late=True, time_limit=3 * 3600, soft_time_limit=3 * 3600 - 120)
def run_directory_job(job_id: int):
    actions.do_run_directory_job(job_id)


@shared_task
def auto_synchronize(service_id: int):
    """Fired daily by Celery beat for a configuration with automatic synchronization on."""
    from o365.models import DirectoryJob, Service

    service = Service.objects.filter(pk=service_id, auto_sync_enabled=True).first()
    if service is not None:
        actions.do_start_directory_job(service=service, kind=DirectoryJob.Kind.SYNC,
                                       trigger="schedule")
