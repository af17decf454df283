"""Workflows on Office 365 configurations, their directory jobs, and the server's clouds."""

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from kodo.jobs import LostClaim
from o365.autosync import sync_beat_entry
from o365.connection import ConnectionResult, check_connection
from o365.directory import PROGRESS_FIELDS, DirectorySync
from o365.graph import GraphError
from o365.models import Cloud, CloudAccess, Configuration, DirectoryJob
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
    job = DirectoryJob.objects.select_related("service__organization").filter(pk=job_id).first()
    if job is None or not job.claim():
        return None
    return job


def _finish(job, status, message="") -> bool:
    return job.finish(status, message, **{name: getattr(job, name) for name in PROGRESS_FIELDS})


def do_set_auto_sync(*, request, service, enabled: bool, time, time_zone: str):
    """Save the daily automatic synchronization and keep its Celery beat entry in step."""
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


def do_test_connection(*, request, service) -> ConnectionResult:
    result = check_connection(service)
    service.record_test(
        ok=result.ok, message=result.summary, missing=result.missing, roles=result.roles
    )
    audit.record(
        "configuration_tested",
        f"Tested Office 365 configuration {service.name}: "
        + ("success." if result.ok else "failed."),
        request=request,
        organization=service.organization,
    )
    return result


# ----- clouds: the server administrator's list of Microsoft clouds -----------------------


def _unique_key(name: str) -> str:
    base = (slugify(name) or "cloud")[:50]
    key, n = base, 1
    while Cloud.objects.filter(key=key).exists():
        n += 1
        key = f"{base}-{n}"
    return key


@transaction.atomic
def do_save_cloud(*, request, cloud: Cloud | None, data: dict) -> Cloud:
    """Create or change a cloud and the organizations it is enabled for (and the default of)."""
    created = cloud is None
    if cloud is None:
        cloud = Cloud(key=_unique_key(data["name"]))
    if not cloud.builtin:
        cloud.name = data["name"]
        cloud.authority_host = data["authority_host"]
        cloud.graph_base_url = data["graph_base_url"]
        cloud.download_hosts = data["download_hosts"]
        cloud.ca_certificate_pem = data["ca_certificate"]
        cloud.private_network_allowed = data["private_network_allowed"]
    cloud.all_organizations = data["all_organizations"]
    cloud.save()
    enabled = {org.pk for org in data["organizations"]}
    defaults = {org.pk for org in data["default_for"]}
    cloud.accesses.exclude(organization_id__in=enabled | defaults).delete()
    # an organization has one default cloud: this one takes over
    CloudAccess.objects.filter(organization_id__in=defaults, is_default=True).exclude(
        cloud=cloud
    ).update(is_default=False)
    for org_id in enabled | defaults:
        CloudAccess.objects.update_or_create(
            cloud=cloud, organization_id=org_id, defaults={"is_default": org_id in defaults}
        )
    audit.record(
        "cloud_created" if created else "cloud_updated",
        f"{'Added' if created else 'Edited'} the cloud {cloud.name}"
        f"{' (private network allowed)' if cloud.private_network_allowed else ''}.",
        request=request,
    )
    return cloud


@transaction.atomic
def do_delete_cloud(*, request, cloud: Cloud) -> bool:
    """Delete a custom cloud no configuration uses; False if it cannot be deleted."""
    if cloud.builtin or cloud.services.exists():
        return False
    name = cloud.name
    cloud.delete()
    audit.record("cloud_deleted", f"Deleted the cloud {name}.", request=request)
    return True
