from o365.management.commands._directory_command import DirectoryCommand
from o365.models import DirectoryJob


class Command(DirectoryCommand):
    help = "SYNCHRONIZE USERS: update an organization's accounts from Microsoft 365."
    kind = DirectoryJob.Kind.SYNC
