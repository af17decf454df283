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
from o365.problems import describe
from organizations import audit

log = logging.getLogger(__name__)


def _apply(configuration: Configuration, data: dict):
    configuration.name = data["name"]
    configuration.tenant_id = data["tenant_id"]
    configuration.client_id = data["client_id"]
    configuration.cloud = data["cloud"]
    if data.get("drop_stored_credentials"):
        # another cloud, tenant or app: the stored secret and certificate never follow
        configuration.set_client_secret("")
        configuration.set_certificate(None, "")
    if data.get("client_secret"):
        configuration.set_client_secret(data["client_secret"])
    if data.get("certificate") is not None:
        configuration.set_certificate(data["certificate"], data.get("certificate_password", ""))
    # New credentials make the last test result stale.
    configuration.last_test_ok = None


@transaction.atomic
def do_create_configuration(*, request, organization, data, actor_email="") -> Configuration:
    configuration = Configuration(organization=organization)
    _apply(configuration, data)
    configuration.save()
    audit.record(
        "configuration_created",
        f"Added Office 365 configuration {configuration.name} (tenant {configuration.tenant_id}).",
        request=request,
        organization=organization,
        actor_email=actor_email,
    )
    return configuration


@transaction.atomic
def do_update_configuration(*, request, configuration, data) -> Configuration:
    changed_secret = bool(data.get("client_secret"))
    changed_certificate = data.get("certificate") is not None
    _apply(configuration, data)
    configuration.save()
    what = [
        w
        for w, changed in (("client secret", changed_secret), ("certificate", changed_certificate))
        if changed
    ]
    audit.record(
        "configuration_updated",
        f"Edited Office 365 configuration {configuration.name}"
        + (f" (new {' and '.join(what)})." if what else "."),
        request=request,
        organization=configuration.organization,
    )
    return configuration


@transaction.atomic
def do_delete_configuration(*, request, configuration):
    name, organization = configuration.name, configuration.organization
    configuration.auto_sync_enabled = False
    sync_beat_entry(configuration)
    configuration.delete()
    audit.record(
        "configuration_deleted",
        f"Deleted Office 365 configuration {name}.",
        request=request,
        organization=organization,
    )


def do_start_directory_job(
    *,
    configuration,
    kind,
    requested_by=None,
    options=None,
    trigger="manual",
    request=None,
    enqueue=True,
):
    """Record an IMPORT USERS / SYNCHRONIZE USERS job and send it once committed (the outbox:
    kodo.jobs recovery sends it later if the broker cannot take it now).

    One job per configuration runs at a time: if one is queued or running, it is returned
    instead (created=False), sent again if its worker went silent."""
    running = DirectoryJob.objects.active().filter(configuration=configuration).first()
    if running is not None:
        if enqueue and running.is_stale:
            transaction.on_commit(running.send)
        return running, False
    try:
        with transaction.atomic():
            job = DirectoryJob.objects.create(
                configuration=configuration,
                kind=kind,
                trigger=trigger,
                requested_by=requested_by,
                options=options or {},
            )
    except IntegrityError:  # another request won the race
        return DirectoryJob.objects.active().get(configuration=configuration), False
    if enqueue:
        transaction.on_commit(job.send)
    what = "Import" if kind == DirectoryJob.Kind.IMPORT else "Synchronization"
    audit.record(
        f"users_{kind}",
        f"{what} of users started for {configuration.name}.",
        request=request,
        actor=requested_by,
        organization=configuration.organization,
    )
    return job, True


def do_run_directory_job(job_id: int):
    """Claim and run one directory job (the Celery task's body; also used by the commands).
    None when the job is not this caller's to run (another worker holds it, or it ended)."""
    job = claim_directory_job(job_id)
    if job is None:
        return None
    configuration = job.configuration
    client = configuration.graph_client()
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
        _finish(job, DirectoryJob.Status.FAILED, describe(error, endpoints=client.endpoints))
        return job
    except Exception as error:
        log.exception("directory job %s failed", job.pk)
        _finish(job, DirectoryJob.Status.FAILED, describe(error, endpoints=client.endpoints))
        raise
    finally:
        client.close()
    with transaction.atomic():
        if _finish(job, DirectoryJob.Status.SUCCEEDED):
            configuration.users_delta_link = delta_link
            configuration.users_synced_at = timezone.now()
            configuration.save(update_fields=["users_delta_link", "users_synced_at"])
    return job


def claim_directory_job(job_id: int):
    """Take a queued job, or a running one whose worker went silent (kodo.jobs.Job.claim)."""
    job = (
        DirectoryJob.objects.select_related("configuration__organization").filter(pk=job_id).first()
    )
    if job is None or not job.claim():
        return None
    return job


def _finish(job, status, message="") -> bool:
    return job.finish(status, message, **{name: getattr(job, name) for name in PROGRESS_FIELDS})


def do_set_auto_sync(*, request, configuration, enabled: bool, time, time_zone: str):
    """Save the daily automatic synchronization and keep its Celery beat entry in step."""
    configuration.auto_sync_enabled = enabled
    configuration.auto_sync_time = time
    configuration.auto_sync_time_zone = time_zone
    with transaction.atomic():
        configuration.save(
            update_fields=["auto_sync_enabled", "auto_sync_time", "auto_sync_time_zone"]
        )
        sync_beat_entry(configuration)
    state = f"on, daily at {time:%H:%M} {time_zone}" if enabled else "off"
    audit.record(
        "auto_sync_changed",
        f"Automatic synchronization of {configuration.name} turned {state}.",
        request=request,
        organization=configuration.organization,
    )


def do_test_connection(*, request, configuration) -> ConnectionResult:
    result = check_connection(configuration)
    configuration.record_test(
        ok=result.ok, message=result.message, missing=result.missing, roles=result.roles
    )
    audit.record(
        "configuration_tested",
        f"Tested Office 365 configuration {configuration.name}: "
        + ("success." if result.ok else "failed."),
        request=request,
        organization=configuration.organization,
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
    if cloud.builtin or cloud.configurations.exists():
        return False
    name = cloud.name
    cloud.delete()
    audit.record("cloud_deleted", f"Deleted the cloud {name}.", request=request)
    return True
