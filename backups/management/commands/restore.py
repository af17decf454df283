"""Restore a user's backed-up OneDrive (or part of it) to Microsoft 365 from the command line.

    manage.py restore --organization ORG --user EMAIL [--at RUN_CODE_OR_ISO_TIME]
        [--path PATH ...] [--deleted-only] [--to new-folder|original|PATH] [--to-user EMAIL]
        [--conflict skip|replace|rename] [--wait]

Without --path (and --deleted-only), the whole OneDrive. Without --wait the restore is queued
for the workers and its code printed; with --wait it runs here, printing its progress, then its
result. Exits non-zero when it cannot start, fails or only partly succeeds.
"""

import getpass
import sys

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat

from backups.actions import do_run_restore, do_start_restore
from backups.commands import add_selection_arguments, selection_from_arguments
from backups.models import RestoreItem, RestoreJob
from backups.restore import RestoreRefused
from backups.selection import UnknownUser, find_directory_user

FAILURES_SHOWN = 20


class Command(BaseCommand):
    help = (
        "Restore a user's backed-up OneDrive, or some paths of it, as of a backup, to "
        "OneDrive: a new folder (default), the original place, another folder, or another "
        "user's OneDrive."
    )

    def add_arguments(self, parser):
        add_selection_arguments(parser, "restore")
        parser.add_argument(
            "--to",
            default="new-folder",
            help='Where: "new-folder" (a new "Kodo Restore YYYY-MM-DD HH-MM" folder, the '
            'default), "original" (where each item was), or a folder path such as /Restored.',
        )
        parser.add_argument("--to-user", help="Restore into this user's OneDrive instead.")
        parser.add_argument(
            "--conflict",
            choices=[c.value for c in RestoreJob.Conflict],
            default=RestoreJob.Conflict.SKIP.value,
            help="When an item of the same name exists: skip it (default), replace it, or "
            "rename the restored one (keep both).",
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Run the restore here, showing progress, instead of queueing it.",
        )

    def handle(self, *args, **options):
        organization, source, run = selection_from_arguments(options)
        try:
            target = (
                find_directory_user(organization, options["to_user"])
                if options.get("to_user")
                else source
            )
        except UnknownUser as error:
            raise CommandError(str(error)) from None
        if options["deleted_only"] and options["path"]:
            raise CommandError("Give --path or --deleted-only, not both.")
        what = (
            RestoreJob.What.DELETED
            if options["deleted_only"]
            else RestoreJob.What.SELECTION
            if options["path"]
            else RestoreJob.What.DRIVE
        )
        where, folder = _where(options["to"])
        try:
            job = do_start_restore(
                source_user=source,
                run=run,
                what=what,
                paths=options["path"],
                target_user=target,
                where=where,
                folder=folder,
                conflict=options["conflict"],
                trigger=RestoreJob.Trigger.COMMAND,
                actor_email=f"manage.py restore ({_os_user()})",
                enqueue=not options["wait"],
            )
        except RestoreRefused as refused:
            raise CommandError(str(refused)) from None
        self.stdout.write(
            f"Restore {job.code}: {job.what_text} of {source} ({source.email}) as of "
            f"{run.finished_at:%Y-%m-%d %H:%M} UTC to {job.where_text}."
        )
        if not options["wait"]:
            job.refresh_from_db()
            if job.sent_at is None:
                raise CommandError(
                    "The task queue (CELERY_BROKER_URL) is unreachable: the restore is saved "
                    "and goes to the workers automatically once it is back."
                )
            self.stdout.write("Queued for the workers; follow it on its page or the Tasks page.")
            return
        outcome = do_run_restore(job.pk, job.organization_id, progress=self._progress)
        job.refresh_from_db()
        if self.stdout.isatty():
            sys.stdout.write("\r\033[K")
        if outcome in ("busy", "lost"):
            raise CommandError("Another worker took this restore over; its result is theirs.")
        self.stdout.write(self._summary(job))
        if job.status != RestoreJob.Status.SUCCEEDED:
            raise CommandError(f"The restore {job.get_status_display().lower()}.")

    def _progress(self, job):
        text = (
            f"{job.phase or 'restoring'}: {job.files_done}/{job.files_total} files, "
            f"{filesizeformat(job.bytes_finished + job.bytes_in_flight)} of "
            f"{filesizeformat(job.bytes_total)}"
        )
        if self.stdout.isatty():
            self.stdout.write(f"\r\033[K{text}", ending="")
            self.stdout.flush()

    def _summary(self, job):
        lines = [
            f"{job.get_status_display()}: {job.files_restored} of {job.files_total} files "
            f"restored ({filesizeformat(job.bytes_restored)}), {job.files_skipped} skipped "
            f"(an item of that name existed), {job.files_failed} failed; "
            f"{filesizeformat(job.bytes_uploaded)} uploaded."
        ]
        if job.error:
            lines.append(f"  {job.error}")
        failures = job.items.filter(status=RestoreItem.Status.FAILED).order_by("pk")
        for path, message in failures.values_list("source_path", "message")[:FAILURES_SHOWN]:
            lines.append(f"  failed: {path}: {message}")
        return "\n".join(lines)


def _where(to: str) -> tuple[str, str]:
    to = (to or "").strip()
    if to in ("", "new-folder"):
        return RestoreJob.Where.NEW_FOLDER, ""
    if to == "original":
        return RestoreJob.Where.ORIGINAL, ""
    return RestoreJob.Where.FOLDER, to


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment  # noqa: BLE001
        return "unknown"
