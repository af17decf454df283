from celery import shared_task

from kodo.fairness import OrganizationShareTask
from o365 import actions
from o365.models import Configuration, DirectoryJob


def _organization_of_job(job_id: int):
    return (
        DirectoryJob.objects.filter(pk=job_id)
        .values_list("configuration__organization_id", flat=True)
        .first()
    )


@shared_task(
    acks_late=True,
    time_limit=3 * 3600,
    soft_time_limit=3 * 3600 - 120,
    base=OrganizationShareTask,
    share_by=_organization_of_job,
)
def run_directory_job(job_id: int):
    actions.do_run_directory_job(job_id)


@shared_task
def auto_synchronize(configuration_id: int):
    """Fired daily by Celery beat for a configuration with automatic synchronization on."""
    configuration = Configuration.objects.filter(
        pk=configuration_id, auto_sync_enabled=True
    ).first()
    if configuration is not None:
        actions.do_start_directory_job(
            configuration=configuration, kind=DirectoryJob.Kind.SYNC, trigger="schedule"
        )
