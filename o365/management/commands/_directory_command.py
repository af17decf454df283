"""Shared body of `manage.py import_users` and `manage.py sync_users`."""

import sys
import threading

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from o365 import actions
from o365.models import Configuration, DirectoryJob
from organizations.commands import organization_from_argument


class DirectoryCommand(BaseCommand):
    kind = ""

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="Name or code.")
        parser.add_argument("--configuration", help="Name; default: every configuration.")
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="Hand the job to the Celery workers instead of running it here.",
        )

    def options_for_job(self, options) -> dict:
        return {}

    def handle(self, *args, **options):
        organization = organization_from_argument(options["organization"])
        configurations = Configuration.objects.for_organization(organization)
        if options["configuration"]:
            configurations = configurations.filter(name__iexact=options["configuration"])
        if not configurations:
            raise CommandError(f"{organization.name} has no such Office 365 configuration.")
        failed = False
        for configuration in configurations:
            job, created = actions.do_start_directory_job(
                configuration=configuration,
                kind=self.kind,
                trigger="command",
                options=self.options_for_job(options),
                enqueue=options["enqueue"],
            )
            if not created:
                self.stderr.write(f"{configuration.name}: a job is already {job.status}; skipped.")
                failed = True
                continue
            if options["enqueue"]:
                self.stdout.write(f"{configuration.name}: queued job {job.code}.")
                continue
            job = self.run_with_progress(job)
            failed |= job.status != DirectoryJob.Status.SUCCEEDED
        if failed:
            raise CommandError("Some jobs did not succeed; see above.")

    def run_with_progress(self, job):
        # The job runs in a thread; this one draws its progress from the job row, as the page does.
        # On a terminal the counts are redrawn in place; in a log, only the final counts are
        # written, once.
        live = self.stdout.isatty()
        worker = threading.Thread(target=self._run, args=(job.pk,), daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.5)
            if live:
                self._draw(DirectoryJob.objects.get(pk=job.pk), live)
        job.refresh_from_db()
        self._draw(job, live, final=True)
        outcome = (
            self.style.SUCCESS("succeeded")
            if job.status == "succeeded"
            else self.style.ERROR(f"{job.get_status_display().lower()}: {job.error}")
        )
        self.stdout.write(f"{job.configuration.name}: {outcome}")
        for conflict in job.conflict_details:
            self.stdout.write(f"  conflict: {conflict['email']}: {conflict['reason']}")
        return job

    @staticmethod
    def _run(job_id):
        try:
            actions.do_run_directory_job(job_id)
        finally:
            connection.close()  # this thread's own connection

    def _draw(self, job, live, final=False):
        line = (
            f"{job.configuration.name}: {job.get_status_display():9} pages {job.pages_read:5} "
            f"users {job.users_seen:7} created {job.created:7} updated {job.updated:6} "
            f"linked {job.linked:5} removed {job.removed:5} conflicts {job.conflicts:4}"
        )
        if live:
            self.stdout.write("\r" + line, ending="\n" if final else "")
            sys.stdout.flush()
        else:
            self.stdout.write(line)
