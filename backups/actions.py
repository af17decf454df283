"""Backup workflows: start runs (Backup now, schedules, the command), claim and execute them;
prune, verify and recover an organization's backups (the algorithms stay in prune.py,
verification.py and kodo.jobs); start, run and cancel restores (the engine is backups/restore/)."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded
from django.db import IntegrityError, transaction
from django.utils import timezone

from backups import overview
from backups.engine import LostClaim, OneDriveBackup, RunCanceled, close_run
from backups.models import (
    BackupRun,
    FileVersion,
    OrganizationStoreKey,
    RestoreJob,
    Verification,
)
from backups.prune import BATCH as PRUNE_BATCH
from backups.prune import PruneReport, sweep_chunks, versions_to_prune
from backups.restore import RestoreRefused, notify
from backups.restore.checks import check_target
from backups.restore.paths import clean_folder_path, new_folder_name
from backups.restore.plan import closed_after
from backups.restore.run import execute_restore
from backups.selection import (
    RESTORE_POINT_STATUSES,
    NoRestorePoint,
    resolve_restore_point,
    select,
)
from backups.storage import store_for
from backups.verification import find_damage, record_damage
from o365.models import DirectoryUser
from o365.problems import describe
from organizations import audit

log = logging.getLogger(__name__)


def backup_candidates(configuration, now=None):
    """The users a configuration-wide backup covers: present in Microsoft 365, not known to lack
    a OneDrive (one found without a OneDrive is tried again after KODO_ONEDRIVE_RECHECK_HOURS:
    its run finds the OneDrive provisioned since, or records it missing again)."""
    return DirectoryUser.objects.filter(
        configuration=configuration, removed_at__isnull=True
    ).may_have_onedrive(now)


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
    """The run's error in words (what, likely cause, what to do; the raw text as detail)."""
    return describe(error)


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


def do_record_usage_samples(now=None) -> int:
    """Today's usage of every organization (protected users, data stored), kept for the monthly
    usage report (billing). Returns the number of organizations sampled."""
    return overview.record_usage_samples(now)


# ----- restores ---------------------------------------------------------------------------


def do_start_restore(
    *,
    source_user,
    run,
    what,
    paths=(),
    version_ids=(),
    target_user=None,
    where=RestoreJob.Where.NEW_FOLDER,
    folder="",
    conflict=RestoreJob.Conflict.SKIP,
    trigger=RestoreJob.Trigger.MANUAL,
    request=None,
    actor_email="",
    enqueue=True,
) -> RestoreJob:
    """Start restoring `what` of `source_user` as of the restore point `run` (None: the latest)
    to `target_user`'s OneDrive (default: the same user; any user of a configuration of the same
    organization), `where` and with the `conflict` policy given. The job is sent to a worker when
    the transaction commits (unless not `enqueue`: the restore command's --wait runs it here);
    an audit entry says who asked what.

    RestoreRefused, with a message naming what is missing, when it cannot start: nothing
    selected, a target outside the organization, a bad folder path, no write permission, no
    OneDrive."""
    organization = source_user.configuration.organization
    target_user = target_user or source_user
    if target_user.configuration.organization_id != organization.pk:
        raise RestoreRefused(f"{target_user.email} is not a user of {organization}.")
    try:
        what = RestoreJob.What(what)
        where = RestoreJob.Where(where)
        conflict = RestoreJob.Conflict(conflict)
    except ValueError as error:
        raise RestoreRefused(f"Not a restore option: {error}.") from None
    if run is None:
        try:
            run = resolve_restore_point(source_user)
        except NoRestorePoint as error:
            raise RestoreRefused(str(error)) from None
    if run.directory_user_id != source_user.pk or run.status not in RESTORE_POINT_STATUSES:
        raise RestoreRefused(f"That backup is not a restore point of {source_user}.")
    if what != what.SELECTION:
        paths = []
    paths = sorted({"/" + str(p).strip().strip("/") for p in paths if str(p).strip().strip("/")})
    version_ids = sorted({int(v) for v in version_ids}) if what == what.SELECTION else []
    if what == what.SELECTION and not paths and not version_ids:
        raise RestoreRefused("Nothing is selected: choose files or folders to restore.")
    with closed_after(
        select(
            source_user,
            run,
            paths=paths,
            version_ids=version_ids,
            whole_drive=what == what.DRIVE,
            deleted_only=what == what.DELETED,
        )
    ) as picked:
        if next(picked, None) is None:
            raise RestoreRefused("The selection holds nothing to restore at this restore point.")
    if where == where.FOLDER:
        try:
            folder = clean_folder_path(folder)
        except ValueError as error:
            raise RestoreRefused(str(error)) from None
    elif where == where.NEW_FOLDER:
        folder = _unused_folder_name(target_user, new_folder_name(organization))
    else:
        folder = ""
    target_drive_id = check_target(target_user)
    requester = request.user if request is not None and request.user.is_authenticated else None
    with transaction.atomic():
        job = RestoreJob.objects.create(
            organization=organization,
            source_user=source_user,
            as_of_run=run,
            as_of=run.finished_at,
            what=what,
            paths=paths,
            version_ids=version_ids,
            target_user=target_user,
            where=where,
            folder=folder,
            conflict=conflict,
            trigger=trigger,
            requested_by=requester,
            requested_by_email=actor_email or getattr(requester, "email", ""),
            target_drive_id=target_drive_id,
        )
        audit.record(
            "restore_started",
            f"Started a restore of {job.what_text} of {source_user} ({source_user.email}) as of "
            f"{notify.as_of_text(job)} to {job.where_text}; if a name exists: "
            f"{job.get_conflict_display().lower()}.",
            request=request,
            actor_email=actor_email,
            organization=organization,
        )
        if enqueue:
            transaction.on_commit(lambda: RestoreJob.send_many([(job.pk, job.organization_id)]))
    return job


def _unused_folder_name(target_user, name: str) -> str:
    """Two restores started in the same minute to one OneDrive get folders of their own."""
    taken = set(
        RestoreJob.objects.filter(
            target_user=target_user, where=RestoreJob.Where.NEW_FOLDER, folder__startswith=name
        ).values_list("folder", flat=True)
    )
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name} ({n})"
    return candidate


@dataclass
class RestoreClaim:
    job: RestoreJob | None
    outcome: str  # "claimed", "busy" (another worker is on it), "done", "missing"


def claim_restore(job_id, organization_id) -> RestoreClaim:
    """Take a queued restore, or a running one whose worker went silent (kodo.jobs.Job.claim)."""
    job = (
        RestoreJob.objects.filter(pk=job_id, organization_id=organization_id)
        .select_related("organization", "source_user", "target_user__configuration")
        .first()
    )
    if job is None:
        return RestoreClaim(None, "missing")
    if job.claim():
        return RestoreClaim(job, "claimed")
    return RestoreClaim(job, "busy" if job.is_active else "done")


def do_run_restore(job_id, organization_id, **options) -> str:
    """Claim and run a restore (the task run_restore; the command's --wait with options). Safe
    to deliver twice. At the task's soft time limit the job is handed to the next worker, which
    resumes its upload sessions."""
    claim = claim_restore(job_id, organization_id)
    if claim.outcome != "claimed" or claim.job is None:
        return claim.outcome
    job = claim.job
    try:
        job = execute_restore(job, **options)
    except LostClaim:
        return "lost"
    except SoftTimeLimitExceeded:
        handed = RestoreJob.objects.filter(
            pk=job.pk, claim_token=job.claim_token, status=RestoreJob.Status.RUNNING
        ).update(heartbeat_at=None)
        if handed:
            job.send()
        return "continued"
    return job.status


def do_cancel_restore(job, *, request=None, actor_email="") -> bool:
    """Cancel a queued or running restore now: its worker stops at its next beat and deletes
    its upload sessions; what was restored stays. False when it had already finished."""
    who = actor_email or (request.user.email if request is not None else "") or "an administrator"
    with transaction.atomic():
        canceled = job.cancel(f"Canceled by {who}.")
        if canceled:
            source = job.source_user
            audit.record(
                "restore_canceled",
                f"Canceled the restore of {job.what_text} of {source} ({source.email}).",
                request=request,
                actor_email=actor_email,
                organization=job.organization,
            )
            transaction.on_commit(lambda: notify.restore_ended(job))
    return canceled
