"""What the commands that take a user's backup as of a restore point share (`restore`,
`export`): their selection arguments and what they resolve to."""

from django.core.management.base import CommandError

from backups.selection import (
    NoRestorePoint,
    UnknownUser,
    find_directory_user,
    resolve_restore_point,
)
from organizations.commands import organization_from_argument


def add_selection_arguments(parser, verb: str) -> None:
    """--organization, --user, --at, --path and --deleted-only; `verb` is "restore" or
    "export"."""
    parser.add_argument("--organization", required=True, help="Organization name or code.")
    parser.add_argument("--user", required=True, help="The user's email or userPrincipalName.")
    parser.add_argument(
        "--at",
        help="The backup: a run code, or a date or time (the last backup finished at or "
        "before it, e.g. 2026-12-01 or 2026-12-01T18:00). Default: the latest.",
    )
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        help=f"A file or folder to {verb}, from the OneDrive's root (/Documents); repeat for "
        "more. Default: the whole OneDrive.",
    )
    parser.add_argument(
        "--deleted-only",
        action="store_true",
        help=f"{verb.capitalize()} only what was deleted from the OneDrive and is still kept.",
    )


def selection_from_arguments(options):
    """(organization, directory user, restore point) the arguments name, or a CommandError
    saying which is unknown."""
    organization = organization_from_argument(options["organization"])
    try:
        directory_user = find_directory_user(organization, options["user"])
        run = resolve_restore_point(directory_user, options.get("at"))
    except (UnknownUser, NoRestorePoint) as error:
        raise CommandError(str(error)) from None
    return organization, directory_user, run
