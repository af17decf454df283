"""Re-read the backup store: check every file version's chunks exist, authenticate chunks, and
that contents still have their quickXorHash. Damage is recorded (backups.verification): the next
backups heal what OneDrive still holds. Exits non-zero when anything is wrong."""

from django.core.management.base import BaseCommand, CommandError

from backups.actions import do_verify_organization
from backups.models import Verification
from backups.verification import organizations_to_verify
from organizations.commands import organization_from_argument


class Command(BaseCommand):
    help = "Verify the backup store: all chunks, or a random sample (--sample 0.1)."

    def add_arguments(self, parser):
        parser.add_argument("--organization", help="Organization name or code (default: all).")
        parser.add_argument(
            "--sample",
            type=float,
            default=1.0,
            help="Fraction of the chunks and contents to re-read (default 1); "
            "the existence of every chunk is always checked.",
        )

    def handle(self, *args, organization=None, sample=1.0, **options):
        if not 0 < sample <= 1:
            raise CommandError("--sample must be a fraction above 0 and at most 1, e.g. 0.1.")
        orgs = (
            [organization_from_argument(organization)]
            if organization
            else organizations_to_verify()
        )
        problems = 0
        for org in orgs:
            verification = do_verify_organization(
                org,
                sample,
                trigger=Verification.Trigger.COMMAND,
                say=lambda text, org=org: self.stdout.write(f"PROBLEM [{org}] {text}"),
            )
            self.stdout.write(
                f"[{org}] {verification.versions_checked} file versions; re-read "
                f"{verification.chunks_checked} chunks; {verification.damaged_chunks} damaged "
                f"chunks used by {verification.versions_affected} file versions; "
                f"{verification.problems} problems."
            )
            problems += verification.problems
        if problems:
            raise CommandError(
                f"{problems} problems found in the backup store. The next backup "
                "of each affected user downloads its damaged files again."
            )
        self.stdout.write("The backup store is sound.")
