"""What an organization's backups and directory jobs are doing: the numbers of the Dashboard and
the one list of the Tasks page. Every function here costs a fixed number of queries, whatever the
amount of data."""

import bisect
import datetime as dt
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import (
    Case,
    Count,
    DateField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.db.models.query import EmptyQuerySet
from django.utils import timezone

from backups import overview
from backups.models import BackupRun, DriveState, FileVersion, StoredBytes, Verification
from kodo import jobs
from o365.models import DirectoryJob, DirectoryUser
from organizations.models import Organization

GROWTH_DAYS = 30
RUNNING_SHOWN = 10
LOST_SHOWN = 20
# The results a finished run can have, in the order the Dashboard shows them.
RESULTS = [
    (status, jobs.BADGES[status])
    for status in (
        BackupRun.Status.SUCCEEDED,
        BackupRun.Status.PARTIAL,
        BackupRun.Status.FAILED,
        BackupRun.Status.SKIPPED,
        BackupRun.Status.CANCELED,
    )
]


def org_zone(org):
    try:
        return zoneinfo.ZoneInfo(org.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


# ----- the Dashboard -------------------------------------------------------------------------


@dataclass
class Chart:
    """A line chart drawn by the template as inline SVG (no script, no style attributes)."""

    width: int = 640
    height: int = 200
    left: int = 8
    right: int = 8
    top: int = 12
    bottom: int = 28
    line: str = ""  # polyline points
    area: str = ""  # polygon points (the line closed down to the axis)
    dots: list = field(default_factory=list)  # (x, y, date, value) for hover titles
    baseline_y: float = 0
    first_label: str = ""
    last_label: str = ""
    max_value: int = 0


def growth_chart(points, *, width=640, height=200) -> Chart:
    """Chart of [(date, cumulative bytes)], oldest first; the y axis starts at zero."""
    chart = Chart(width=width, height=height)
    if not points:
        return chart
    inner_w = width - chart.left - chart.right
    inner_h = height - chart.top - chart.bottom
    top = max(value for _, value in points) or 1
    step = inner_w / max(len(points) - 1, 1)
    coords = []
    for i, (day, value) in enumerate(points):
        x = round(chart.left + i * step, 1)
        y = round(chart.top + inner_h * (1 - value / top), 1)
        coords.append((x, y))
        chart.dots.append((x, y, day, value))
    chart.baseline_y = chart.top + inner_h
    chart.line = " ".join(f"{x},{y}" for x, y in coords)
    chart.area = (
        f"{coords[0][0]},{chart.baseline_y} " + chart.line + f" {coords[-1][0]},{chart.baseline_y}"
    )
    chart.first_label = points[0][0].strftime("%b %d")
    chart.last_label = points[-1][0].strftime("%b %d")
    chart.max_value = max(value for _, value in points)
    return chart


@dataclass
class Dashboard:
    users_total: int
    users_protected: int
    results: list  # (status value, label, badge, count) of runs finished in the last 24 hours
    active_runs: int
    bytes_stored: int
    current_files: int
    current_size: int
    growth: list  # (date, cumulative bytes stored), one per day, oldest first
    chart: Chart
    running_runs: list
    running_jobs: list
    active_jobs: int
    # The store's health: the last verification, versions waiting to be healed by their next
    # backup, and versions reported lost (the newest LOST_SHOWN of them, with the count).
    last_verification: Verification | None = None
    damaged_versions: int = 0
    lost_count: int = 0
    lost_versions: list = field(default_factory=list)
    # Failing connections, expiring certificates, users not backed up for 48 hours.
    alerts: overview.Alerts = field(default_factory=overview.Alerts)

    @property
    def running(self) -> list:
        """The running jobs of every kind shown, in the order they were started."""
        return sorted(
            [*self.running_runs, *self.running_jobs], key=lambda job: (job.created_at, job.pk)
        )

    @property
    def runs_last_day(self) -> int:
        return sum(count for *_, count in self.results)

    @property
    def growth_last_period(self) -> int:
        return self.growth[-1][1] - self.growth[0][1] if self.growth else 0


def dashboard(org, *, now=None) -> Dashboard:
    """Five queries: the organization's totals (each a subquery answered from an index or kept
    tallies: no row per run or user, see StoredBytes and DirectoryUser.backed_up), its current
    files and bytes (no row per file version: DriveState.current_files), the bytes its runs of
    the last GROWTH_DAYS stored per day, the running backups and the running directory jobs;
    one more when a verification ran, one more when versions were lost; and the alerts' two
    (three when users are late: overview.organization_alerts)."""
    now = now or timezone.now()
    zone = org_zone(org)
    today = now.astimezone(zone).date()
    first_day = today - dt.timedelta(days=GROWTH_DAYS - 1)
    day_ago = now - dt.timedelta(hours=24)

    # The users of its configurations (with a Kodo account or not): those in Microsoft 365, and
    # the protected ones (overview.protected_users: a completed backup) also after they left it.
    directory_users = DirectoryUser.objects.filter(configuration__organization=OuterRef("pk"))
    protected = overview.protected_users(directory_users)
    users = directory_users.filter(Q(removed_at__isnull=True) | overview.has_completed_backup())
    totals = (
        Organization.objects.filter(pk=org.pk)
        .values(
            # Counted from index `users_protected` alone (DirectoryUser.backed_up).
            users_total=_scalar(users, "configuration__organization", Count("*")),
            users_protected=_scalar(protected, "configuration__organization", Count("*")),
            # Every run's, kept per quarter hour by triggers (StoredBytes): a few rows a day.
            bytes_stored=_scalar(
                StoredBytes.objects.filter(organization=OuterRef("pk")),
                "organization",
                Sum("bytes_stored"),
            ),
            # Backups running, and those finished in the last 24 hours by result (indexes
            # `runs_by_status`, `runs_by_result`).
            active_runs=_scalar(
                BackupRun.objects.filter(
                    organization=OuterRef("pk"), status__in=BackupRun.ACTIVE_STATUSES
                ),
                "organization",
                Count("*"),
            ),
            **{
                f"result_{status}": _scalar(
                    BackupRun.objects.filter(
                        organization=OuterRef("pk"), status=status, finished_at__gte=day_ago
                    ),
                    "organization",
                    Count("*"),
                )
                for status, _ in RESULTS
            },
            damaged_versions=_scalar(
                _damaged(FileVersion.Damage.DAMAGED), "organization", Count("pk")
            ),
            lost_count=_scalar(_damaged(FileVersion.Damage.LOST), "organization", Count("pk")),
            last_verification=Subquery(
                Verification.objects.filter(organization=OuterRef("pk"))
                .order_by("-created_at", "-id")
                .values("pk")[:1]
            ),
        )
        .get()
    )

    # Kept per drive by triggers (DriveState.current_files): one row per drive read, once (as
    # two subqueries above, twice).
    current = DriveState.objects.filter(organization=org).aggregate(
        files=Sum("current_files", default=0), size=Sum("current_bytes", default=0)
    )

    # Bytes stored per day of the chart, each day's bounds computed here in the organization's
    # time zone. `stored_later`: runs dated after today (a clock ahead), not in the chart.
    days = [first_day + dt.timedelta(days=offset) for offset in range(GROWTH_DAYS + 1)]
    starts = [dt.datetime.combine(date, dt.time(), zone) for date in days]
    stored_per_day, stored_later = _stored_per_day(org, days, starts)
    # What was stored before the chart's first day (never below zero should a run have stored
    # more between the two queries).
    stored_before = max(totals["bytes_stored"] - sum(stored_per_day.values()) - stored_later, 0)
    growth, running_total = [], stored_before
    for offset in range(GROWTH_DAYS):
        date = first_day + dt.timedelta(days=offset)
        running_total += stored_per_day.get(date, 0)
        growth.append((date, running_total))

    running_runs = list(
        BackupRun.objects.for_organization(org)
        .active()
        .select_related("directory_user", "configuration", "organization")
        .order_by("created_at", "id")[:RUNNING_SHOWN]
    )
    running_jobs = list(
        DirectoryJob.objects.active()
        .filter(configuration__organization=org)
        .select_related("configuration__organization")
        .order_by("created_at", "id")
    )
    return Dashboard(
        users_total=totals["users_total"],
        users_protected=totals["users_protected"],
        results=[
            (status.value, status.label, badge, totals[f"result_{status}"])
            for status, badge in RESULTS
        ],
        active_runs=totals["active_runs"],
        bytes_stored=running_total,
        current_files=current["files"],
        current_size=current["size"],
        growth=growth,
        chart=growth_chart(growth),
        running_runs=running_runs,
        running_jobs=running_jobs,
        active_jobs=len(running_jobs),  # at most one per configuration
        last_verification=(
            Verification.objects.get(pk=totals["last_verification"])
            if totals["last_verification"]
            else None
        ),
        damaged_versions=totals["damaged_versions"],
        lost_count=totals["lost_count"],
        lost_versions=list(
            FileVersion.objects.for_organization(org)
            .filter(damage=FileVersion.Damage.LOST)
            .select_related("drive__directory_user")
            .order_by("-end_run_id", "path")[:LOST_SHOWN]
        )
        if totals["lost_count"]
        else [],
        alerts=overview.organization_alerts(org, now=now),
    )


def _stored_per_day(org, days, starts) -> tuple[dict[dt.date, int], int]:
    """({day: bytes stored by the runs started that day}, bytes of runs started on days[-1] or
    later), for days[:-1] starting at `starts` (days[-1]: the day after the chart). Read from
    StoredBytes (kept per quarter hour by triggers: a few rows a day) when every day starts a
    quarter hour, as midnight does in every time zone in use; else from the runs themselves
    (index `runs_by_day`)."""
    if any(start.timestamp() % StoredBytes.SECONDS for start in starts):
        return _stored_per_day_from_runs(org, days, starts)
    quarters = [StoredBytes.quarter_of(start) for start in starts]
    stored_per_day: dict[dt.date, int] = {}
    stored_later = 0
    rows = StoredBytes.objects.filter(organization=org, quarter__gte=quarters[0]).values_list(
        "quarter", "bytes_stored"
    )
    for quarter, stored in rows:
        index = bisect.bisect_right(quarters, quarter) - 1
        if index >= len(days) - 1:
            stored_later += stored
        else:
            stored_per_day[days[index]] = stored_per_day.get(days[index], 0) + stored
    return stored_per_day, stored_later


def _stored_per_day_from_runs(org, days, starts) -> tuple[dict[dt.date, int], int]:
    """`_stored_per_day` from the runs, read from index `runs_by_day` alone (a date function
    per row costs more than these bounds)."""
    day = Case(
        *(
            When(created_at__lt=next_start, then=Value(date))
            for date, next_start in zip(days[:-1], starts[1:], strict=True)
        ),
        default=Value(None),
        output_field=DateField(),
    )
    per_day = (
        BackupRun.objects.for_organization(org)
        .filter(created_at__gte=starts[0])
        .order_by()
        .annotate(day=day)
        .values("day")
        .annotate(stored=Sum("bytes_stored"))
    )
    stored_per_day: dict[dt.date, int] = {}
    stored_later = 0
    for group in per_day:
        if group["day"] is None:
            stored_later += group["stored"] or 0
        else:
            stored_per_day[group["day"]] = group["stored"] or 0
    return stored_per_day, stored_later


def _damaged(damage):
    """The outer organization's versions with `damage` (index `damaged_in_organization`: the
    query names its condition, or SQLite reads every version of the organization)."""
    return FileVersion.objects.filter(
        ~Q(damage=FileVersion.Damage.SOUND), organization=OuterRef("pk"), damage=damage
    )


def _scalar(queryset, group_by, aggregate):
    """`aggregate` over a subquery correlated to the outer organization (0 when empty)."""
    subquery = queryset.order_by().values(group_by).annotate(value=aggregate).values("value")
    return Coalesce(Subquery(subquery), 0)


# ----- the Tasks page ------------------------------------------------------------------------


class TaskTypes:
    """The Tasks page's types: those of every registered job kind (kodo.jobs.register), each
    (key, label, model, {field: value})."""

    def __iter__(self):
        for model in jobs.KINDS:
            for key, label, lookup in model.task_types():
                yield key, label, model, lookup

    @property
    def choices(self):
        return [(key, label) for key, label, _, _ in self]


TASK_TYPES = TaskTypes()


class TaskStatus:
    # The jobs' statuses worded as their badges are: one word per status on every page.
    CHOICES = list(jobs.Status.choices)


@dataclass
class Task:
    """One row of the Tasks page: any job (kodo.jobs.JobRecord), shown through its own
    presentation members; the template has no case per kind."""

    type: str
    created_at: dt.datetime
    obj: jobs.JobRecord

    @property
    def is_active(self) -> bool:
        return self.obj.is_active


def task_rows(org, *, types=(), statuses=(), since=None, until=None, user="") -> "TaskRows":
    """The organization's jobs of every kind, newest first, as (type, id, created_at) rows:
    page them, then `load_tasks` the page."""
    parts = []
    for key, _, model, lookup in TASK_TYPES:
        if types and key not in types:
            continue
        rows = model.tasks_of(org, user=user)
        if rows is None:  # the kind has no user to match the user filter
            continue
        if statuses:
            wanted = model.statuses_for([s for st in statuses for s in jobs.STATUS_FILTERS[st]])
            if not wanted:
                continue
            rows = rows.filter(status__in=wanted)
        parts.append(_window(rows.filter(**lookup), since, until).annotate(task_type=Value(key)))
    return TaskRows(
        [part.order_by().values_list("task_type", "pk", "created_at") for part in parts]
    )


class TaskRows:
    """`task_rows`' rows, a sequence for Paginator: `count()` is one query, a page one query.
    Where the database takes LIMIT in the parts of a UNION (PostgreSQL), each kind reads only its
    newest rows down to the page's end, along its index by (organization, created_at): the
    page sorts a page's worth of rows per kind, not every job of the organization."""

    ORDER = ("-created_at", "-pk")

    def __init__(self, parts):
        # none() parts left out: a union would return a lone sliced part as it is.
        self.parts = [part for part in parts if not isinstance(part, EmptyQuerySet)]

    def count(self) -> int:
        return self._union(self.parts).count() if self.parts else 0

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, window: slice) -> list:
        if not self.parts or window.stop <= (window.start or 0):  # [:0] empties a queryset
            return []
        parts = self.parts
        if len(parts) > 1 and connection.features.supports_slicing_ordering_in_compound:
            parts = [part.order_by(*self.ORDER)[: window.stop] for part in parts]
        return list(self._union(parts).order_by(*self.ORDER)[window])

    @staticmethod
    def _union(parts):
        return parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]


def _window(queryset, since, until):
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    return queryset


def load_tasks(rows) -> list[Task]:
    """Tasks for a page of `task_rows`, in its order (one query per kind on the page)."""
    rows = list(rows)
    model_of = {key: model for key, _, model, _ in TASK_TYPES}
    wanted = defaultdict(list)
    for key, pk, _ in rows:
        wanted[model_of[key]].append(pk)
    loaded = {model: model.load_for_tasks(pks) for model, pks in wanted.items()}
    return [
        Task(key, created_at, loaded[model_of[key]][pk])
        for key, pk, created_at in rows
        if pk in loaded[model_of[key]]
    ]  # else deleted since the page was counted
