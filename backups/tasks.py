"""Celery tasks: thin, ids only; the BackupRun row is the truth."""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from backups.actions import (
    claim_run,
    do_fan_out_backups,
    do_prune_organization,
    do_record_usage_samples,
    do_run_restore,
    do_verify_organization,
    execute_run,
)
from backups.engine import LostClaim, close_run
from backups.models import BackupRun, Verification
from backups.prune import compact_store as compact
from backups.prune import organizations_to_prune
from backups.verification import nightly_sample, organizations_to_verify
from kodo.fairness import OrganizationShareTask
from o365.models import Configuration
from organizations.models import Organization

log = logging.getLogger(__name__)


def organization_job_task(function):
    """A job's task: acknowledged late (a lost worker's message goes back to the queue),
    time-limited, and run in one of its organization's fair-share slots (kodo.fairness)."""
    return shared_task(
        acks_late=True,
        time_limit=settings.CELERY_TASK_TIME_LIMIT,
        soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
        base=OrganizationShareTask,
        share_by="organization_id",
    )(function)


@organization_job_task
def run_backup(run_id: int, organization_id: int):
    """Back up one user's OneDrive for the run `run_id` of organization `organization_id`.

    Safe to deliver twice: a run another worker is working on, or a finished one, is left
    alone."""
    claim = claim_run(run_id, organization_id)
    run = claim.run
    if claim.outcome != "claimed" or run is None:
        # "busy": a live worker holds it; should that worker die, kodo.jobs.recover_jobs sends
        # the run again once its heartbeat is stale.
        return claim.outcome

    try:
        run = execute_run(run)
    except LostClaim:
        return "lost"
    except SoftTimeLimitExceeded:
        close_run(
            run,
            BackupRun.Status.FAILED,
            "The backup took longer than the time limit; the next run continues it.",
        )
        return "timeout"
    return run.status


@shared_task(
    acks_late=True,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
)
def fan_out_backups(configuration_id: int, organization_id: int, trigger: str = "manual"):
    """Start one run (and send one run_backup task) per user of a configuration. Safe to deliver
    twice: users whose run is already active are not given a second one."""
    configuration = Configuration.objects.filter(
        pk=configuration_id, organization_id=organization_id
    ).first()
    if configuration is None:
        return "missing"
    started, active = do_fan_out_backups(configuration, BackupRun.Trigger(trigger))
    return f"{started} started, {active} already active"


@shared_task(
    time_limit=settings.CELERY_TASK_TIME_LIMIT, soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT
)
def prune_organizations():
    """Apply retention to every organization with backups: one task each, so that one large or
    failing organization does not hold up the others. The store's packs are compacted first:
    what the previous night's prunes deleted from them is freed now."""
    compact_store.delay()
    for organization_id in organizations_to_prune().values_list("pk", flat=True):
        prune_organization.delay(organization_id)


@shared_task(
    time_limit=settings.CELERY_TASK_TIME_LIMIT, soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT
)
def compact_store():
    return compact()


@shared_task(
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    base=OrganizationShareTask,
    share_by="organization_id",
)
def prune_organization(organization_id: int):
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return "gone"
    return do_prune_organization(organization).summary()


@shared_task(
    time_limit=settings.CELERY_TASK_TIME_LIMIT, soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT
)
def verify_stores():
    """Nightly (beat): verify every organization's backups, a KODO_VERIFY_SAMPLE of the chunks
    (all of them on Sundays), one task per organization."""
    sample = nightly_sample()
    for organization_id in organizations_to_verify().values_list("pk", flat=True):
        verify_organization.delay(organization_id, sample)


@shared_task(
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    base=OrganizationShareTask,
    share_by="organization_id",
)
def verify_organization(organization_id: int, sample: float):
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return "gone"
    verification = do_verify_organization(
        organization, sample, trigger=Verification.Trigger.SCHEDULE
    )
    return verification.get_status_display()


@organization_job_task
def run_restore(job_id: int, organization_id: int):
    """Run the restore `job_id` of organization `organization_id` (backups/restore/). Safe to
    deliver twice: a restore another worker holds, or a finished one, is left alone; one whose
    worker died is taken over and continues where its items say it was."""
    return do_run_restore(job_id, organization_id)


@shared_task(
    time_limit=settings.CELERY_TASK_TIME_LIMIT, soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT
)
def record_usage():
    """Daily (beat, before midnight UTC): each organization's usage of the day, for the monthly
    usage report."""
    return f"{do_record_usage_samples()} organizations sampled"
