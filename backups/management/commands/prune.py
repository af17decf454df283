"""Apply the retention policy: remove old file versions, expired deleted items, and chunks
nothing refers to any more (after a grace period)."""

import uuid

from django.core.management.base import BaseCommand, CommandError

from backups.prune import do_prune_organization, organizations_to_prune
from organizations.models import Organization


class Command(BaseCommand):
    help = "Prune backups by their schedules' retention (all organizations, or one)."

    def add_arguments(self, parser):
        parser.add_argument("--organization", help="Organization name or code (default: all).")
        parser.add_argument("--dry-run", action="store_true",
                            help="Show what would be removed; change nothing.")

    def handle(self, *args, organization=None, dry_run=False, **options):
        orgs = [self._organization(organization)] if organization else organizations_to_prune()
        for org in orgs:
            report = do_prune_organization(org, dry_run=dry_run)
            self.stdout.write(report.summary())
            if report.chunks_missing:
                self.stderr.write(f"[{org}] {report.chunks_missing} chunks that file versions "
                                  "refer to are missing from the store. Run "
                                  "`manage.py verify_store` to see which files are affected.")

    def _organization(self, ref):
        try:
            return Organization.objects.get(code=uuid.UUID(ref))
        except (ValueError, Organization.DoesNotExist):
            pass
        try:
            return Organization.objects.get(name=ref)
        except Organization.DoesNotExist:
            raise CommandError(f"No organization named or coded {ref!r}.") from None
