"""Browsing a user's backups: the questions the browse pages ask, as queries (no HTTP).

Everything is as of a restore point (backups.selection): a folder's items are the versions
present at that run whose parent is the folder's item, found through the index
`versions_in_folder` (drive, parent_id, first_run). A folder is named by its path, as the
download and restore forms name it; it is found by walking its path from the drive's root one
level at a time (each step a lookup in the same index), because `path` itself has no index.

Pages hold a constant number of queries whatever the size of the drive or the folder: one count
and one slice per page (Django's Paginator), and one aggregate for "how many versions Kodo keeps"
of the items on the page.

Search is a case-insensitive substring of the name (`icontains`, which PostgreSQL serves from
the trigram index on UPPER(name) of migration backups/0007 when few names match, and SQLite
from the FTS5 trigram table of backups/0012 when few match: see search()), within a user's
backups or across the organization, newest first and without a total.
"""

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import Upper
from django.shortcuts import get_object_or_404

from backups.models import BackupRun, DriveState, FileVersion
from backups.selection import (
    NoRestorePoint,
    deleted_items,
    resolve_restore_point,
    restore_points,
)
from kodo.paging import UncountedPage
from organizations.models import Organization

FOLDER_PAGE_SIZE = 100
VERSIONS_PAGE_SIZE = 100
DELETED_PAGE_SIZE = 100
SEARCH_PAGE_SIZE = 50
SEARCH_MAX_PAGES = 100  # further, a search is better narrowed than read
# SQLite: a name matching at most this many versions of the organization's id range is read
# from the FTS5 table (backups/0012); a commoner one along the organization's versions.
FEW_NAMES = 5000
NAME_MATCHES = (
    "SELECT rowid FROM backups_fileversion_name "
    "WHERE backups_fileversion_name MATCH %s AND rowid BETWEEN %s AND %s"
)
COUNT_NAME_MATCHES = (
    "SELECT COUNT(*) FROM (SELECT 1 FROM backups_fileversion_name "
    "WHERE backups_fileversion_name MATCH %s AND rowid BETWEEN %s AND %s LIMIT %s)"
)
TIMELINE_SIDE = 10  # restore points shown on each side of the chosen one
ROOT = "/"


class FolderNotFound(Exception):
    """The path names no folder of the drive as of the restore point."""


# ----- restore points ------------------------------------------------------------------------


def restore_point_for(directory_user, at: str | None) -> BackupRun:
    """The restore point `at` names (see selection.resolve_restore_point). The code of one of
    the user's runs that is not a restore point (a canceled run that recorded versions: search
    results name the run that first saw a version) means the first restore point after it."""
    try:
        return resolve_restore_point(directory_user, at)
    except NoRestorePoint:
        run = _run_by_code(directory_user, at)
        later = (
            restore_points(directory_user).filter(pk__gt=run.pk).order_by("pk").first()
            if run is not None
            else None
        )
        if later is None:
            raise
        return later


def _run_by_code(directory_user, at) -> BackupRun | None:
    try:
        code = uuid.UUID((at or "").strip())
    except ValueError:
        return None
    return BackupRun.objects.filter(directory_user=directory_user, code=code).first()


def restore_point_on_or_before(directory_user, day: dt.date, zone) -> BackupRun | None:
    """The last restore point finished on or before `day` (a day of the organization's time
    zone), else the oldest one."""
    end_of_day = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
    points = restore_points(directory_user)
    return points.filter(finished_at__lt=end_of_day).first() or points.last()


@dataclass
class Timeline:
    """The restore points around the chosen one, newest first, and whether there are more."""

    points: list[BackupRun]
    more_newer: bool
    more_older: bool


def timeline(directory_user, run: BackupRun, side: int = TIMELINE_SIDE) -> Timeline:
    points = restore_points(directory_user)
    newer = list(points.filter(pk__gt=run.pk).order_by("pk")[: side + 1])
    older = list(points.filter(pk__lt=run.pk)[: side + 1])
    return Timeline(
        points=[*reversed(newer[:side]), run, *older[:side]],
        more_newer=len(newer) > side,
        more_older=len(older) > side,
    )


# ----- folders -------------------------------------------------------------------------------


def clean_path(text: str | None) -> str | None:
    """A folder path with one leading slash and none trailing ("/" for the root); None when it
    cannot name anything (control characters, which no OneDrive name holds)."""
    text = (text or "").strip()
    if any(ord(ch) < 32 for ch in text):
        return None
    parts = [part for part in text.split("/") if part]
    return "/" + "/".join(parts)


@dataclass(frozen=True)
class Crumb:
    name: str
    path: str


def breadcrumb(path: str) -> list[Crumb]:
    """The root ("OneDrive") and each folder down to `path`."""
    crumbs = [Crumb("OneDrive", ROOT)]
    walked = ""
    for part in path.strip("/").split("/") if path.strip("/") else []:
        walked += "/" + part
        crumbs.append(Crumb(part, walked))
    return crumbs


def parent_path(path: str) -> str:
    return path.rsplit("/", 1)[0] or ROOT


@dataclass
class FolderPage:
    path: str
    crumbs: list[Crumb]
    page: Page  # of FileVersion, each with `versions_kept`


def folder_page(
    run: BackupRun, path: str, page_number=1, per_page: int = FOLDER_PAGE_SIZE
) -> FolderPage:
    """One page of the folder's items as of `run`: folders first, then files, by name."""
    items = folder_items(run, path)
    page = Paginator(items, per_page).get_page(page_number)
    add_versions_kept(page.object_list)
    return FolderPage(path=path, crumbs=breadcrumb(path), page=page)


def folder_items(run: BackupRun, path: str):
    """The items of the folder `path` as of `run` (FolderNotFound if it was not there)."""
    parents = _folder_keys(run, path)
    in_folder = Q()
    for drive_id, item_id in parents:
        in_folder |= Q(drive_id=drive_id, parent_id=item_id)
    return (
        FileVersion.objects.files_as_of(run)
        .filter(in_folder)
        .order_by("-is_folder", Upper("name"), "name", "pk")
    )


def _folder_keys(run: BackupRun, path: str) -> list[tuple[int, str]]:
    """(drive pk, item id) of the folder `path` as of `run`: the drives' roots, then one lookup
    per level below them."""
    keys = [(drive.pk, _root_item_id(drive)) for drive in _drives(run)]
    keys = [(drive_id, item_id) for drive_id, item_id in keys if item_id]
    for name in [part for part in path.split("/") if part]:
        if not keys:
            break
        in_parents = Q()
        for drive_id, item_id in keys:
            in_parents |= Q(drive_id=drive_id, parent_id=item_id)
        keys = list(
            FileVersion.objects.files_as_of(run)
            .filter(in_parents, name=name, is_folder=True)
            .values_list("drive_id", "item_id")
        )
    if not keys:
        raise FolderNotFound(path)
    return keys


def _drives(run: BackupRun):
    return DriveState.objects.filter(
        directory_user_id=run.directory_user_id, organization_id=run.organization_id
    ).order_by("pk")


def _root_item_id(drive: DriveState) -> str:
    """The drive's root item, which its first completed run records. Before that (or for rows
    made by hand), the parent of any item at the top level."""
    if drive.root_item_id:
        return drive.root_item_id
    top = (
        FileVersion.objects.filter(drive=drive, path__regex=r"^/[^/]+$")
        .values_list("parent_id", flat=True)
        .first()
    )
    return top or ""


def add_versions_kept(versions) -> None:
    """Set `versions_kept` on each version: how many versions Kodo keeps of its item (one
    query for the whole page)."""
    versions = list(versions)
    if not versions:
        return
    counts = (
        FileVersion.objects.filter(
            drive_id__in={v.drive_id for v in versions},
            item_id__in={v.item_id for v in versions},
        )
        .order_by()
        .values_list("drive_id", "item_id")
        .annotate(kept=Count("pk"))
    )
    kept = {(drive_id, item_id): n for drive_id, item_id, n in counts}
    for version in versions:
        version.versions_kept = kept.get((version.drive_id, version.item_id), 1)


# ----- one item's versions -------------------------------------------------------------------


def version_of_user(org, directory_user, version_id) -> FileVersion:
    """One version of the user's backups, 404 for anything else."""
    return get_object_or_404(
        FileVersion.objects.select_related("first_run", "end_run", "drive"),
        organization=org,
        drive__directory_user=directory_user,
        pk=version_id,
    )


def item_versions(version: FileVersion):
    """Every kept version of the item `version` is one of, newest first."""
    return (
        FileVersion.objects.filter(drive_id=version.drive_id, item_id=version.item_id)
        .select_related("first_run", "end_run")
        .order_by("-first_run_id", "-pk")
    )


def versions_page(version: FileVersion, page_number=1) -> Page:
    """A page of the item's versions, each with `folder`: its folder's path then (a rename or
    a move changes it)."""
    page = Paginator(item_versions(version), VERSIONS_PAGE_SIZE).get_page(page_number)
    for each in page.object_list:
        each.folder = parent_path(each.path)
    return page


# ----- deleted items -------------------------------------------------------------------------


def deleted_page(directory_user, page_number=1) -> Page:
    """The last kept version of each item deleted from the OneDrive, newest deletion first."""
    versions = deleted_items(directory_user).select_related("end_run")
    page = Paginator(versions, DELETED_PAGE_SIZE).get_page(page_number)
    add_versions_kept(page.object_list)
    return page


# ----- search --------------------------------------------------------------------------------


@dataclass
class SearchFilters:
    """What a search asks; empty fields ask nothing."""

    text: str = ""
    modified_since: dt.datetime | None = None
    modified_until: dt.datetime | None = None  # exclusive
    deleted_only: bool = False
    extension: str = ""
    size_min: int | None = None  # bytes, inclusive
    size_max: int | None = None

    def asks_something(self) -> bool:
        return bool(
            self.text
            or self.modified_since
            or self.modified_until
            or self.deleted_only
            or self.extension
            or self.size_min is not None
            or self.size_max is not None
        )


def search(org, filters: SearchFilters, *, directory_user=None):
    """Kept versions whose name matches, within the organization or one user's backups, files
    and folders alike, the most recently recorded first.

    Newest first rather than by name: the database can then walk the versions backwards and
    stop at the page's last row when many versions match (a common word: 35,000 of a million),
    and read the few matches from a name index when they are few; sorting by name would read
    every match, whatever the page.

    The walk is bounded by the organization's first and last version ids (one query on an
    index): PostgreSQL walks the primary key, guessing the organization's versions spread
    evenly over it, and would otherwise pass every newer version of other organizations first.
    On SQLite a name of 3 or more characters is first looked up in the FTS5 trigram table
    (`_few_name_matches`); icontains stays the condition on both paths, so the results are
    the same (the table only narrows: its case folding covers more than SQLite's LIKE)."""
    low, high = _id_bounds(org)
    if low is None or high is None:
        return FileVersion.objects.none()
    versions = FileVersion.objects.filter(organization=org, pk__gte=low, pk__lte=high)
    if directory_user is not None:
        # The drives' ids, not a join: PostgreSQL then knows how much of the table they are,
        # and reads the name index rather than every version of the user.
        versions = versions.filter(drive_id__in=list(_user_drive_ids(org, directory_user)))
    if filters.text:
        versions = versions.filter(name__icontains=filters.text)
        matches = _few_name_matches(filters.text, low, high)
        if matches is not None:
            versions = versions.filter(pk__in=matches)
    if filters.extension:
        versions = versions.filter(name__iendswith="." + filters.extension, is_folder=False)
    if filters.modified_since:
        versions = versions.filter(modified_datetime__gte=filters.modified_since)
    if filters.modified_until:
        versions = versions.filter(modified_datetime__lt=filters.modified_until)
    if filters.size_min is not None:
        versions = versions.filter(size__gte=filters.size_min, is_folder=False)
    if filters.size_max is not None:
        versions = versions.filter(size__lte=filters.size_max, is_folder=False)
    if filters.deleted_only:
        current = FileVersion.objects.filter(
            drive_id=OuterRef("drive_id"), item_id=OuterRef("item_id"), end_run__isnull=True
        )
        versions = versions.filter(deleted=True).filter(~Exists(current))
    return versions.select_related(
        "first_run", "end_run", "drive__directory_user__configuration"
    ).order_by("-pk")


def _id_bounds(org) -> tuple[int | None, int | None]:
    """The organization's first and last version ids, in one query of two index probes (an
    aggregate of both would read all the organization's versions on SQLite)."""
    ids = FileVersion.objects.filter(organization=org).values("pk")
    return (
        Organization.objects.filter(pk=org.pk)
        .values_list(
            Subquery(ids.order_by("pk")[:1]),
            Subquery(ids.order_by("-pk")[:1]),
        )
        .get()
    )


def _few_name_matches(text: str, low: int, high: int) -> RawSQL | None:
    """On SQLite, the ids of the versions between `low` and `high` whose name holds `text`,
    as a subquery of the FTS5 trigram table, if they are at most FEW_NAMES (one query that
    stops counting there); None when the table cannot tell (under 3 characters, another
    database) or when the name is common, which the walk along the organization's versions
    finds sooner. The table's case folding is Unicode's, SQLite's LIKE only ASCII's: the ids
    may hold more than icontains matches, never fewer."""
    if connection.vendor != "sqlite" or len(text) < 3:
        return None
    phrase = '"' + text.replace('"', '""') + '"'  # the text as one string, whatever it holds
    with connection.cursor() as cursor:
        cursor.execute(COUNT_NAME_MATCHES, [phrase, low, high, FEW_NAMES + 1])
        (count,) = cursor.fetchone()
    if count > FEW_NAMES:
        return None
    return RawSQL(NAME_MATCHES, [phrase, low, high])  # noqa: S611 - parameters only


def _user_drive_ids(org, directory_user):
    return DriveState.objects.filter(organization=org, directory_user=directory_user).values_list(
        "pk", flat=True
    )


@dataclass
class ResultPage(UncountedPage):
    """One page of search results, without a total: counting every match is what a search of
    a common word over a million versions cannot afford (PostgreSQL's estimate of how many
    names match decides how it reads them, and a count read the wrong way scans the table).
    The page reads one row more than it shows to know whether there is a next one."""

    object_list: list
    number: int
    has_next: bool
    per_page: int = SEARCH_PAGE_SIZE

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self):
        return len(self.object_list)

    @property
    def start_index(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.object_list else 0

    @property
    def end_index(self) -> int:
        return (self.number - 1) * self.per_page + len(self.object_list)


def search_page(org, filters: SearchFilters, *, directory_user=None, page_number=1) -> ResultPage:
    """A page of results, each with `folder`: the folder to open for it (a folder opens
    itself, a file the folder it was in). Pages past SEARCH_MAX_PAGES show the last one."""
    number = _page_number(page_number)
    start = (number - 1) * SEARCH_PAGE_SIZE
    rows = list(
        search(org, filters, directory_user=directory_user)[start : start + SEARCH_PAGE_SIZE + 1]
    )
    for version in rows:
        version.folder = version.path if version.is_folder else parent_path(version.path)
    return ResultPage(
        object_list=rows[:SEARCH_PAGE_SIZE],
        number=number,
        has_next=len(rows) > SEARCH_PAGE_SIZE and number < SEARCH_MAX_PAGES,
    )


def _page_number(text) -> int:
    try:
        number = int(text)
    except (TypeError, ValueError):
        return 1
    return min(max(number, 1), SEARCH_MAX_PAGES)


def megabytes(value: Decimal | None) -> int | None:
    return None if value is None else int(value * 1_000_000)
