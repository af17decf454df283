"""Backup workflows: start runs (Backup now, schedules, the command), claim and execute them;
prune, verify and recover an organization's backups (the algorithms stay in prune.py,
verification.py and kodo.jobs)."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from backups.engine import LostClaim, OneDriveBackup, RunCanceled, close_run
from backups.models import BackupRun, FileVersion, OrganizationStoreKey, Verification
from backups.prune import BATCH as PRUNE_BATCH
from backups.prune import PruneReport, sweep_chunks, versions_to_prune
from backups.storage import store_for
from backups.verification import find_damage, record_damage
from o365.graph import GraphError
from o365.models import DirectoryUser
from organizations import audit

log = logging.getLogger(__name__)


def backup_candidates(configuration):
    """The users a configuration-wide backup covers: present in Microsoft 365, not known to lack
    a OneDrive."""
    return DirectoryUser.objects.filter(
        configuration=configuration, removed_at__isnull=True
    ).exclude(onedrive=DirectoryUser.OneDrive.MISSING)


def start_run(directory_user, trigger=BackupRun.Trigger.MANUAL, *, enqueue=True):
    """A queued run for the user, or the user's active run if there is one (never two).

    The task is sent when the surrounding transaction commits."""
    configuration = directory_user.configuration
    try:
        with transaction.atomic():
            run = BackupRun.objects.create(
                organization_id=configuration.organization_id,
                configuration=configuration,
                directory_user=directory_user,
                active_user=directory_user,
                trigger=trigger,
            )
    except IntegrityError:
        run = BackupRun.objects.get(active_user=directory_user)
        if enqueue and run.is_stale:
            # Its task was lost or its worker died: send it again; the claim makes that safe.
            transaction.on_commit(lambda: BackupRun.send_many([(run.pk, run.organization_id)]))
        return run, False
    if enqueue:
        transaction.on_commit(lambda: BackupRun.send_many([(run.pk, run.organization_id)]))
    return run, True


def do_start_backups(
    *, configuration, users=None, trigger=BackupRun.Trigger.MANUAL, request=None, enqueue=True
):
    """Start a run for each of `users` (default: every candidate of the configuration).

    Returns (runs started, runs already active)."""
    organization = configuration.organization
    users = list(backup_candidates(configuration) if users is None else users)
    started, active = [], []
    with transaction.atomic():
        for user in users:
            if user.configuration_id != configuration.pk:
                raise ValueError(f"{user} does not belong to {configuration}.")
            run, created = start_run(user, trigger, enqueue=enqueue)
            (started if created else active).append(run)
        if request is not None:
            if len(users) == 1:
                what = (
                    f"Started a backup of {users[0]} ({users[0].email})"
                    if started
                    else f"Asked for a backup of {users[0]} ({users[0].email}), already running"
                )
            else:
                what = (
                    f"Started a backup of configuration {configuration.name} ({len(started)} users"
                )
                what += f", {len(active)} already running)" if active else ")"
            audit.record("backup_started", what + ".", request=request, organization=organization)
    return started, active


FAN_OUT_BATCH = 500


def do_request_configuration_backup(
    *, configuration, trigger=BackupRun.Trigger.MANUAL, request=None
):
    """Ask for a backup of every candidate of the configuration, without creating the runs here
    (a configuration may have 100,000 users): audit the request and, on commit, send one fan-out
    task that creates the runs in batches and sends one task per run.

    Returns (users to back up, users with a run already active): two counts."""
    candidates = backup_candidates(configuration).count()
    running = (
        BackupRun.objects.active()
        .filter(directory_user__in=backup_candidates(configuration))
        .count()
    )
    if not candidates:
        return 0, 0
    organization = configuration.organization
    with transaction.atomic():
        what = f"Asked for a backup of configuration {configuration.name} ({candidates} users"
        what += f", {running} already running)" if running else ")"
        audit.record("backup_started", what + ".", request=request, organization=organization)
        from backups.tasks import fan_out_backups  # local: backups.tasks imports this module

        transaction.on_commit(
            lambda: fan_out_backups.delay(configuration.pk, organization.pk, str(trigger))
        )
    return candidates, running


def do_fan_out_backups(configuration, trigger=BackupRun.Trigger.MANUAL, *, batch=FAN_OUT_BATCH):
    """Start a run for each candidate of the configuration, `batch` users per transaction, and
    send each new run's task when its batch commits. A user with an active run keeps it (sent
    again only if stale, as start_run does). Safe to run twice: the second finds every run active.

    Returns (runs started, runs already active): two counts."""
    started = active = 0
    last_pk = 0
    candidates = backup_candidates(configuration).order_by("pk")
    while True:
        users = list(candidates.filter(pk__gt=last_pk)[:batch])
        if not users:
            break
        last_pk = users[-1].pk
        with transaction.atomic():
            busy = {
                run.active_user_id: run for run in BackupRun.objects.filter(active_user__in=users)
            }
            new = [
                BackupRun(
                    organization_id=configuration.organization_id,
                    configuration=configuration,
                    directory_user=user,
                    active_user=user,
                    trigger=trigger,
                )
                for user in users
                if user.pk not in busy
            ]
            try:
                with transaction.atomic():
                    created = BackupRun.objects.bulk_create(new)
            except IntegrityError:
                # A user's run was started meanwhile (Backup now, a schedule): one by one.
                created = []
                for user in users:
                    if user.pk not in busy:
                        run, was_created = start_run(user, trigger, enqueue=False)
                        if was_created:
                            created.append(run)
                        else:
                            busy[user.pk] = run
            resend = [run for run in busy.values() if run.is_stale]
            started += len(created)
            active += len(busy)
            jobs = [(run.pk, run.organization_id) for run in created + resend]
            transaction.on_commit(lambda jobs=jobs: BackupRun.send_many(jobs))
    return started, active


# ----- claiming and running ---------------------------------------------------------------


@dataclass
class Claim:
    run: BackupRun | None
    outcome: str  # "claimed", "busy" (another worker is on it), "done", "missing"


def claim_run(run_id, organization_id) -> Claim:
    """Take a queued run, or a running one whose worker stopped beating (it died): one
    conditional UPDATE (kodo.jobs.Job.claim), so only one worker ever holds a run."""
    run = (
        BackupRun.objects.filter(pk=run_id, organization_id=organization_id)
        .select_related("directory_user__configuration", "organization")
        .first()
    )
    if run is None:
        return Claim(None, "missing")
    if run.claim():
        return Claim(run, "claimed")
    return Claim(run, "busy" if run.is_active else "done")


def execute_run(run, *, threads=None, progress=None, client_options=None):
    """Run a claimed BackupRun to its end; a failure is recorded on the run, never raised
    (except LostClaim: then another worker owns the run and this one must stop writing).
    A run canceled while it runs stops at its next claim check and is returned canceled."""
    configuration = run.directory_user.configuration
    # The configuration's shared session: the next run reuses this one's open connections (to
    # Graph and to the download host) instead of a TLS handshake per connection per run.
    client = configuration.graph_client(**{"shared_session": True, **(client_options or {})})
    try:
        engine = OneDriveBackup(
            run, client, store_for(run.organization), threads=threads, progress=progress
        )
        engine.execute()
    except RunCanceled:
        log.info("Run %s was canceled; its worker stops.", run.pk)
    except LostClaim:
        log.warning("Run %s was taken over by another worker; this one stops.", run.pk)
        raise
    except Exception as error:
        log.exception("Backup run %s failed", run.pk)
        close_run(run, BackupRun.Status.FAILED, _describe(error))  # unless no longer ours
    finally:
        client.close()
    run.refresh_from_db()
    return run


def _describe(error) -> str:
    if isinstance(error, GraphError):
        return str(error)
    return f"The backup stopped on an unexpected error ({type(error).__name__}: {error})."


def do_run_inline(run, *, progress=None, threads=None, client_options=None):
    """Claim and execute a run in this process (the backup command's --wait)."""
    claim = claim_run(run.pk, run.organization_id)
    if claim.outcome != "claimed":
        return claim.run
    return execute_run(claim.run, threads=threads, progress=progress, client_options=client_options)


def do_cancel_run(run, *, request=None, actor_email="") -> bool:
    """Cancel a queued or running run: the row is closed here and now (so a new run of the user
    can start at once); its worker, if any, sees the cleared claim at its next check and stops
    without recording anything more, and without moving the drive's cursor.

    False when the run had already finished."""
    who = actor_email or (request.user.email if request is not None else "") or "an administrator"
    with transaction.atomic():
        canceled = run.cancel(f"Canceled by {who}.")
        if canceled and request is not None:
            user = run.directory_user
            audit.record(
                "backup_canceled",
                f"Canceled the backup of {user} ({user.email}).",
                request=request,
                organization=run.organization,
            )
    return canceled


# ----- maintenance: retention, verification, recovery ---------------------------------------


def do_prune_organization(organization, now=None, dry_run=False) -> PruneReport:
    """Apply the retention policy to the organization's versions, then sweep its chunks."""
    now = now or timezone.now()
    report = PruneReport(organization, dry_run=dry_run)
    doomed = versions_to_prune(organization, now)
    report.versions_removed = len(doomed)
    if not dry_run:
        for start in range(0, len(doomed), PRUNE_BATCH):
            FileVersion.objects.filter(
                pk__in=doomed[start : start + PRUNE_BATCH], end_run__isnull=False
            ).delete()
    if OrganizationStoreKey.objects.filter(organization=organization).exists():
        sweep_chunks(
            organization,
            store_for(organization),
            now,
            report,
            ignore_versions=frozenset(doomed) if dry_run else frozenset(),
        )
    log.info("%s", report.summary())
    return report


def do_verify_organization(
    organization,
    sample: float = 1.0,
    *,
    trigger=Verification.Trigger.COMMAND,
    say: Callable[[str], None] | None = None,
) -> Verification:
    """Verify the organization's backups, record the damage and the result (a Verification
    row). `say` receives one line per problem."""
    verification = Verification.objects.create(
        organization=organization, trigger=trigger, sample=sample, started_at=timezone.now()
    )
    try:
        findings = find_damage(organization, store_for(organization), sample, say=say)
        record_damage(organization, findings)
    except Exception as error:
        verification.status = Verification.Status.FAILED
        verification.error = f"The verification stopped: {error}"[:5000]
        verification.finished_at = timezone.now()
        verification.save(update_fields=["status", "error", "finished_at"])
        raise
    verification.versions_checked = findings.versions_checked
    verification.chunks_checked = findings.chunks_checked
    verification.problems = findings.problems
    verification.damaged_chunks = len(findings.damaged)
    verification.versions_affected = len(findings.affected)
    verification.status = (
        Verification.Status.PROBLEMS if findings.problems else Verification.Status.SOUND
    )
    verification.finished_at = timezone.now()
    verification.save(
        update_fields=[
            "versions_checked",
            "chunks_checked",
            "problems",
            "damaged_chunks",
            "versions_affected",
            "status",
            "finished_at",
        ]
    )
    return verification
