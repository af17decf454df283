"""Workflows on Office 365 configurations."""

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from kodo.jobs import LostClaim
from o365.models import Configuration
from organizations import audit

log = logging.getLogger(__name__)


def _apply(service: Configuration, data: dict):
    service.name = data["name"]
    service.tenant_id = data["tenant_id"]
    service.client_id = data["client_id"]
    service.cloud = data["cloud"]
    if data.get("drop_stored_credentials"):
        # another cloud, tenant or app: the stored secret and certificate never follow
        service.set_client_secret("")
        service.set_certificate(None, "")
    if data.get("client_secret"):
        service.set_client_secret(data["client_secret"])
    if data.get("certificate") is not None:
        service.set_certificate(data["certificate"], data.get("certificate_password", ""))
    # New credentials make the last test result stale.
    service.last_test_ok = None


@transaction.atomic
def do_create_service(*, request, organization, data) -> Configuration:
    service = Configuration(organization=organization)
    _apply(service, data)
    service.save()
    audit.record(
        "configuration_created",
        f"Added Office 365 configuration {service.name} (tenant {service.tenant_id}).",
        request=request,
        organization=organization,
    )
    return service


@transaction.atomic
def do_update_service(*, request, service, data) -> Configuration:
    changed_secret = bool(data.get("client_secret"))
    changed_certificate = data.get("certificate") is not None
    _apply(service, data)
    service.save()
    what = [
        w
        for w, changed in (("client secret", changed_secret), ("certificate", changed_certificate))
        if changed
    ]
    audit.record(
        "configuration_updated",
        f"Edited Office 365 configuration {service.name}"
        + (f" (new {' and '.join(what)})." if what else "."),
        request=request,
        organization=service.organization,
    )
    return service


@transaction.atomic
def do_delete_service(*, request, service):
    from o365.autosync import sync_beat_entry

    name, organization = service.name, service.organization
    service.auto_sync_enabled = False
    sync_beat_entry(service)
    service.delete()
    audit.record(
        "configuration_deleted",
        f"Deleted Office 365 configuration {name}.",
        request=request,
        organization=organization,
    )


def do_start_directory_job(
    *, service, kind, requested_by=None, options=None, trigger="manual", request=None, enqueue=True
):
    """Record an IMPORT USERS / SYNCHRONIZE USERS job and send it once committed (the outbox:
    kodo.jobs recovery sends it later if the broker cannot take it now).

    One job per configuration runs at a time: if one is queued or running, it is returned
    instead (created=False), sent again if its worker went silent."""
    from o365.models import DirectoryJob

    running = DirectoryJob.objects.active().filter(service=service).first()
    if running is not None:
        if enqueue and running.is_stale:
            transaction.on_commit(running.send)
        return running, False
    try:
        with transaction.atomic():
            job = DirectoryJob.objects.create(
                service=service,
                kind=kind,
                trigger=trigger,
                requested_by=requested_by,
                options=options or {},
            )
    except IntegrityError:  # another request won the race
        return DirectoryJob.objects.active().get(service=service), False
    if enqueue:
        transaction.on_commit(job.send)
    what = "Import" if kind == DirectoryJob.Kind.IMPORT else "Synchronization"
    audit.record(
        f"users_{kind}",
        f"{what} of users started for {service.name}.",
        request=request,
        actor=requested_by,
        organization=service.organization,
    )
    return job, True


def do_run_directory_job(job_id: int):
    """Claim and run one directory job (the Celery task's body; also used by the commands).
    None when the job is not this caller's to run (another worker holds it, or it ended)."""
    from o365.directory import DirectorySync
    from o365.graph import GraphError
    from o365.models import DirectoryJob

    job = claim_directory_job(job_id)
    if job is None:
        return None
    service = job.service
    client = service.graph_client()
    sync = DirectorySync(job, client)
    try:
        delta_link = sync.refresh_mirror()
        if job.kind == DirectoryJob.Kind.IMPORT:
            sync.import_accounts()
        else:
            sync.synchronize_accounts()
        sync.check_onedrives()
    except LostClaim:
        log.warning("Directory job %s was taken over or canceled; this worker stops.", job.pk)
        return job
    except GraphError as error:
        _finish(job, DirectoryJob.Status.FAILED, f"Microsoft 365 answered with an error: {error}")
        return job
    except Exception:
        log.exception("directory job %s failed", job.pk)
        _finish(
            job,
            DirectoryJob.Status.FAILED,
            "Kodo failed while processing users; the error is in the worker's log.",
        )
        raise
    finally:
        client.close()
    with transaction.atomic():
        if _finish(job, DirectoryJob.Status.SUCCEEDED):
            service.users_delta_link = delta_link
            service.users_synced_at = timezone.now()
            service.save(update_fields=["users_delta_link", "users_synced_at"])
    return job


def claim_directory_job(job_id: int):
    """Take a queued job, or a running one whose worker went silent (kodo.jobs.Job.claim)."""
    from o365.models import DirectoryJob

    job = DirectoryJob.objects.select_related("service__organization").filter(pk=job_id).first()
    if job is None or not job.claim():
        return None
    return job


def _finish(job, status, message="") -> bool:
    from o365.directory import PROGRESS_FIELDS

    return job.finish(status, message, **{name: getattr(job, name) for name in PROGRESS_FIELDS})


def do_set_auto_sync(*, request, service, enabled: bool, time, time_zone: str):
    """Save the daily automatic synchronization and keep its Celery beat entry in step."""
    from o365.autosync import sync_beat_entry

    service.auto_sync_enabled = enabled
    service.auto_sync_time = time
    service.auto_sync_time_zone = time_zone
    with transaction.atomic():
        service.save(update_fields=["auto_sync_enabled", "auto_sync_time", "auto_sync_time_zone"])
        sync_beat_entry(service)
    state = f"on, daily at {time:%H:%M} {time_zone}" if enabled else "off"
    audit.record(
        "auto_sync_changed",
        f"Automatic synchronization of {service.name} turned {state}.",
        request=request,
        organization=service.organization,
    )
