"""Apply the retention policy: remove old file versions, expired deleted items, and chunks
nothing refers to any more (after a grace period)."""

from django.core.management.base import BaseCommand

from backups.actions import do_prune_organization
from backups.prune import compact_store, organizations_to_prune
from organizations.commands import organization_from_argument


class Command(BaseCommand):
    help = "Prune backups by their schedules' retention (all organizations, or one)."

    def add_arguments(self, parser):
        parser.add_argument("--organization", help="Organization name or code (default: all).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would be removed; change nothing."
        )

    def handle(self, *args, organization=None, dry_run=False, **options):
        orgs = (
            [organization_from_argument(organization)] if organization else organizations_to_prune()
        )
        for org in orgs:
            report = do_prune_organization(org, dry_run=dry_run)
            self.stdout.write(report.summary())
            if report.chunks_missing:
                self.stderr.write(
                    f"[{org}] {report.chunks_missing} chunks that file versions "
                    "refer to are missing from the store. Run "
                    "`manage.py verify_store` to see which files are affected."
                )
        if not dry_run:
            self.stdout.write(compact_store())
