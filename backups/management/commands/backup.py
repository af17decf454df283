"""Back up OneDrives from the command line: enqueue runs, or run them here with --wait."""

import sys

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.template.defaultfilters import filesizeformat

from backups.actions import backup_candidates, claim_run, execute_run, start_run
from backups.engine import LostClaim
from backups.models import BackupRun
from o365.models import Configuration, DirectoryUser
from organizations.commands import organization_from_argument


class Command(BaseCommand):
    help = "Back up the OneDrives of an organization, one configuration, or one user."

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="Organization name or code.")
        parser.add_argument("--configuration", help="Office 365 configuration name (default: all).")
        parser.add_argument("--user", help="Back up only the user with this email.")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Run the backups here, one after the other, showing progress, "
            "instead of queueing them for the workers.",
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=None,
            help="Parallel downloads per run (default KODO_BACKUP_DOWNLOAD_THREADS).",
        )

    def handle(
        self,
        *args,
        organization,
        configuration=None,
        user=None,
        wait=False,
        threads=None,
        **options,
    ):
        org = organization_from_argument(organization)
        configurations = Configuration.objects.for_organization(org)
        if configuration:
            configurations = configurations.filter(name=configuration)
            if not configurations:
                raise CommandError(
                    f"{org} has no Office 365 configuration named {configuration!r}."
                )
        if user:
            email = user.lower()
            users = list(
                DirectoryUser.objects.filter(configuration__in=configurations).filter(
                    Q(mail__iexact=email) | Q(user_principal_name__iexact=email)
                )
            )
            if not users:
                raise CommandError(f"No user {user} in {org}. Import users first.")
        else:
            users = [u for c in configurations for u in backup_candidates(c)]
        if not users:
            raise CommandError(f"{org} has no users to back up. Import users first.")
        if not wait:
            self._enqueue(users)
            return
        # Only the runs this command claimed (and so ran) are judged: a run another command or a
        # worker is on is named, and its outcome is theirs to report.
        failed = ran = 0
        for directory_user in users:
            run, _ = start_run(directory_user, BackupRun.Trigger.COMMAND, enqueue=False)
            claim = claim_run(run.pk, run.organization_id)
            if claim.outcome != "claimed":
                self.stdout.write(self._not_ours(directory_user, claim))
                continue
            try:
                run = execute_run(claim.run, threads=threads, progress=self._progress)
            except LostClaim:
                self.stdout.write(
                    f"{directory_user} ({directory_user.email}): taken over by "
                    "another worker; its result is reported there."
                )
                continue
            sys.stdout.write("\r\033[K") if self.stdout.isatty() else None
            self.stdout.write(self._summary(run))
            ran += 1
            failed += run.status in (
                BackupRun.Status.FAILED,
                BackupRun.Status.PARTIAL,
                BackupRun.Status.RUNNING,
            )
        if failed:
            raise CommandError(f"{failed} of the {ran} backups run here did not fully succeed.")

    def _enqueue(self, users):
        """Queue a run per user and say what really happened: queued, already active (since
        when), or saved but not sent because the task queue is unreachable."""
        new = []
        for directory_user in users:
            run, created = start_run(directory_user, BackupRun.Trigger.COMMAND, enqueue=False)
            if created:
                new.append(run)
                continue
            state = "running" if run.status == BackupRun.Status.RUNNING else "queued"
            since = run.started_at or run.created_at
            lost = "; its worker went silent, recovery resumes it" if run.is_stale else ""
            self.stdout.write(
                f"{directory_user} ({directory_user.email}): already {state} "
                f"since {since:%Y-%m-%d %H:%M:%S} UTC (run {run.pk}{lost})."
            )
        sent = BackupRun.send_many([(run.pk, run.organization_id) for run in new])
        self.stdout.write(f"Queued {len(new)} backups for the workers.")
        if sent < len(new):
            raise CommandError(
                f"The task queue (CELERY_BROKER_URL) is unreachable: {len(new) - sent} of these "
                "backups are saved and go to the workers automatically once it is back."
            )

    def _not_ours(self, directory_user, claim):
        run = claim.run
        who = f"{directory_user} ({directory_user.email})"
        if run is None:
            return f"{who}: its run was deleted meanwhile; not run here."
        if run.is_active:
            since = run.started_at or run.created_at
            return (
                f"{who}: already being backed up by another command or worker (run "
                f"{run.pk}, since {since:%Y-%m-%d %H:%M:%S} UTC); not run here."
            )
        return (
            f"{who}: run {run.pk} was finished elsewhere meanwhile "
            f"({run.get_status_display()}); not run here."
        )

    def _progress(self, run):
        if self.stdout.isatty():
            self.stdout.write(
                f"\r\033[K{run.directory_user}: {run.phase or 'downloading'} "
                f"{run.files_downloaded}/{run.files_to_download} files, "
                f"{filesizeformat(run.bytes_downloaded)} of "
                f"{filesizeformat(run.bytes_to_download)}",
                ending="",
            )
            self.stdout.flush()

    def _summary(self, run):
        text = (
            f"{run.directory_user} ({run.directory_user.email}): {run.get_status_display()}; "
            f"{run.files_seen} files seen, {run.files_downloaded} downloaded "
            f"({filesizeformat(run.bytes_downloaded)}), {filesizeformat(run.bytes_stored)} "
            f"stored, {run.files_moved} moved, {run.files_deleted} deleted, "
            f"{run.files_skipped} skipped, {run.files_failed} failed"
        )
        if run.error:
            text += f"\n  {run.error}"
        return text
