"""What a user picked from a backup: restore points, and the file versions a selection means.

Browse, download, export and restore all ask here, so "the folder /Documents as of Monday's
backup" means the same files everywhere:

    run = resolve_restore_point(directory_user, "2026-12-01T18:00")   # or a run code, or None
    for picked in select(directory_user, run, paths=["/Documents"]):
        picked.version, picked.relative_path        # FileVersion, "Documents/Reports/q3.xlsx"

A *restore point* is a run of the user's OneDrive that finished with something recorded:
succeeded or partial. The state of the drive as of a restore point is
FileVersionQuerySet.files_as_of(run).
"""

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from backups.models import BackupRun, FileVersion
from kodo.jobs import Status
from o365.models import DirectoryUser

RESTORE_POINT_STATUSES = (Status.SUCCEEDED, Status.PARTIAL)
ITERATION_CHUNK = 2000


class NoRestorePoint(Exception):
    """The user has no backup (at or before the time asked for), or the code names none of
    theirs."""


class UnknownUser(Exception):
    """No directory user of the organization has this email, or several do."""


def find_directory_user(organization, email: str) -> DirectoryUser:
    """The directory user of `organization` whose mail or userPrincipalName is `email` (any
    case), for the export and restore commands. A user in Microsoft 365 now is preferred to a
    removed one with the same address; two configurations with the same person is ambiguous
    (UnknownUser names them)."""
    email = (email or "").strip()
    if not email:
        raise UnknownUser("Give the user's email (mail or userPrincipalName).")
    found = list(
        DirectoryUser.objects.filter(configuration__organization=organization)
        .filter(Q(mail__iexact=email) | Q(user_principal_name__iexact=email))
        .select_related("configuration")
        .order_by("removed_at", "pk")
    )
    if not found:
        raise UnknownUser(f"No user {email} in {organization}. Import users first.")
    present = [user for user in found if user.removed_at is None] or found
    if len(present) > 1:
        names = ", ".join(sorted(user.configuration.name for user in present))
        raise UnknownUser(
            f"{email} is a user of several configurations of {organization} ({names}); "
            "Kodo cannot tell which one is meant."
        )
    return present[0]


def restore_points(directory_user):
    """The user's restore points, newest first."""
    return BackupRun.objects.filter(
        directory_user=directory_user, status__in=RESTORE_POINT_STATUSES
    ).order_by("-pk")


def resolve_restore_point(directory_user, at: str | None = None) -> BackupRun:
    """The restore point `at` names: a run code (UUID), an ISO date or time (the last restore
    point finished at or before it; a bare date means the end of that day, in UTC unless the
    time says otherwise), or None for the latest. NoRestorePoint with a message a person can
    act on otherwise."""
    points = restore_points(directory_user)
    at = (at or "").strip()
    if not at:
        run = points.first()
        if run is None:
            raise NoRestorePoint(f"{directory_user} has no completed backup yet.")
        return run
    try:
        code = uuid.UUID(at)
    except ValueError:
        code = None
    if code is not None:
        run = points.filter(code=code).first()
        if run is None:
            raise NoRestorePoint(f"No completed backup of {directory_user} has the code {at}.")
        return run
    moment = _parse_moment(at)
    if moment is None:
        raise NoRestorePoint(
            f"{at!r} is neither a backup's code nor a date or time (e.g. 2026-12-01 or "
            "2026-12-01T18:00)."
        )
    run = points.filter(finished_at__lte=moment).first()
    if run is None:
        raise NoRestorePoint(f"{directory_user} has no completed backup at or before {at}.")
    return run


def _parse_moment(text: str) -> dt.datetime | None:
    moment: dt.datetime | None
    try:
        # A bare date first: parse_datetime would read "2026-12-01" as its midnight.
        day = parse_date(text)
        if day is not None:
            moment = dt.datetime.combine(day, dt.time.max)
        else:
            moment = parse_datetime(text)
    except ValueError:
        return None
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    return moment


@dataclass(frozen=True)
class Picked:
    """One file or folder version of a selection, and its path below the selection: a picked
    folder keeps its own name (/Documents/Reports picked: "Reports/q3.xlsx")."""

    version: FileVersion
    relative_path: str


def select(
    directory_user,
    run: BackupRun,
    *,
    paths: Iterable[str] = (),
    version_ids: Iterable[int] = (),
    whole_drive: bool = False,
    deleted_only: bool = False,
) -> Iterator[Picked]:
    """The versions a selection means, folders first within each path (sorted by path), each
    once. `paths` are files or folders as of `run` (a folder brings everything below it);
    `version_ids` pick versions of this user's drives whatever the run (e.g. an older version
    of a file); `whole_drive` is every item as of `run`; `deleted_only` is every item deleted
    from the OneDrive and still kept (its last version), whatever the run."""
    seen: set[int] = set()
    organization_id = run.organization_id
    if deleted_only:
        yield from _once(_deleted(directory_user, organization_id), seen, base="")
    if whole_drive:
        yield from _once(FileVersion.objects.files_as_of(run).order_by("path"), seen, base="")
    for path in _normalized(paths):
        state = FileVersion.objects.files_as_of(run)
        base = path.rsplit("/", 1)[0]
        yield from _once(state.filter(path=path), seen, base=base)
        yield from _once(
            state.filter(path__startswith=path + "/").order_by("path"), seen, base=base
        )
    ids = sorted({int(pk) for pk in version_ids})
    if ids:
        versions = FileVersion.objects.filter(
            pk__in=ids,
            organization_id=organization_id,
            drive__directory_user=directory_user,
        ).order_by("path")
        for version in versions:
            if version.pk not in seen:
                seen.add(version.pk)
                yield Picked(version, version.name)


def deleted_items(directory_user):
    """The last kept version of every item deleted from the user's OneDrive (none of its
    versions is current), newest deletion first."""
    return _deleted(directory_user, None).order_by("-end_run_id", "path")


def _deleted(directory_user, organization_id):
    current = FileVersion.objects.filter(
        drive_id=OuterRef("drive_id"), item_id=OuterRef("item_id"), end_run__isnull=True
    )
    versions = FileVersion.objects.filter(drive__directory_user=directory_user, deleted=True)
    if organization_id is not None:
        versions = versions.filter(organization_id=organization_id)
    return versions.filter(~Exists(current)).order_by("path")


def _once(versions, seen: set[int], *, base: str) -> Iterator[Picked]:
    cut = len(base) + 1
    for version in versions.select_related("drive").iterator(chunk_size=ITERATION_CHUNK):
        if version.pk in seen:
            continue
        seen.add(version.pk)
        yield Picked(version, version.path[cut:])


def _normalized(paths: Iterable[str]) -> list[str]:
    """Each path once, with one leading slash and none trailing; a path below another selected
    one is dropped (its folder brings it)."""
    clean = sorted({"/" + p.strip().strip("/") for p in paths if p and p.strip().strip("/")})
    kept: list[str] = []
    for path in clean:
        if not any(path.startswith(parent + "/") for parent in kept):
            kept.append(path)
    return kept
