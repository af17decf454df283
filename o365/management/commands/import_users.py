from o365.management.commands._directory_command import DirectoryCommand
from o365.models import DirectoryJob


class Command(DirectoryCommand):
    help = "IMPORT USERS: create Kodo accounts for an organization's Microsoft 365 users."
    kind = DirectoryJob.Kind.IMPORT

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--include-disabled", action="store_true")
        parser.add_argument("--include-unlicensed", action="store_true")
        parser.add_argument("--include-guests", action="store_true")

    def options_for_job(self, options):
        return {
            key: True
            for key in ("include_disabled", "include_unlicensed", "include_guests")
            if options[key]
        }
