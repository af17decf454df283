"""Back up OneDrives from the command line: enqueue runs, or run them here with --wait."""

import sys

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.template.defaultfilters import filesizeformat

from backups.actions import backup_candidates, do_run_inline, start_run
from backups.models import BackupRun
from o365.models import DirectoryUser, Service
from organizations.commands import organization_from_argument


class Command(BaseCommand):
    help = "Back up the OneDrives of an organization, one configuration, or one user."

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="Organization name or code.")
        parser.add_argument("--configuration", help="Office 365 configuration name (default: all).")
        parser.add_argument("--user", help="Back up only the user with this email.")
        parser.add_argument("--wait", action="store_true",
                            help="Run the backups here, one after the other, showing progress, "
                                 "instead of queueing them for the workers.")
        parser.add_argument("--threads", type=int, default=None,
                            help="Parallel downloads per run "
                                 "(default KODO_BACKUP_DOWNLOAD_THREADS).")

    def handle(self, *args, organization, configuration=None, user=None, wait=False,
               threads=None, **options):
        org = organization_from_argument(organization)
        services = Service.objects.for_organization(org)
        if configuration:
            services = services.filter(name=configuration)
            if not services:
                raise CommandError(
                    f"{org} has no Office 365 configuration named {configuration!r}.")
        if user:
            email = user.lower()
            users = list(DirectoryUser.objects.filter(service__in=services).filter(
                Q(mail__iexact=email) | Q(user_principal_name__iexact=email)))
            if not users:
                raise CommandError(f"No user {user} in {org}. Import users first.")
        else:
            users = [u for service in services for u in backup_candidates(service)]
        if not users:
            raise CommandError(f"{org} has no users to back up. Import users first.")
        if not wait:
            started = [start_run(u, BackupRun.Trigger.COMMAND)[0] for u in users]
            self.stdout.write(f"Queued {len(started)} backups for the workers.")
            return
        failed = 0
        for directory_user in users:
            run, _ = start_run(directory_user, BackupRun.Trigger.COMMAND, enqueue=False)
            run = do_run_inline(run, threads=threads, progress=self._progress)
            sys.stdout.write("\r\033[K") if self.stdout.isatty() else None
            self.stdout.write(self._summary(run))
            failed += run.status in (BackupRun.Status.FAILED, BackupRun.Status.PARTIAL,
                                     BackupRun.Status.RUNNING)
        if failed:
            raise CommandError(f"{failed} of {len(users)} backups did not fully succeed.")

    def _progress(self, run):
        if self.stdout.isatty():
            self.stdout.write(
                f"\r\033[K{run.directory_user}: {run.phase or 'downloading'} "
                f"{run.files_downloaded}/{run.files_to_download} files, "
                f"{filesizeformat(run.bytes_downloaded)} of "
                f"{filesizeformat(run.bytes_to_download)}",
                ending="")
            self.stdout.flush()

    def _summary(self, run):
        text = (f"{run.directory_user} ({run.directory_user.email}): {run.get_status_display()}; "
                f"{run.files_seen} files seen, {run.files_downloaded} downloaded "
                f"({filesizeformat(run.bytes_downloaded)}), {filesizeformat(run.bytes_stored)} "
                f"stored, {run.files_moved} moved, {run.files_deleted} deleted, "
                f"{run.files_skipped} skipped, {run.files_failed} failed")
        if run.error:
            text += f"\n  {run.error}"
        return text
