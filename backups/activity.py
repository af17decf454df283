"""What an organization's backups and directory jobs are doing: the numbers of the Dashboard and
the one list of the Tasks page. Every function here costs a fixed number of queries, whatever the
amount of data."""

import datetime as dt
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field

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
from django.utils import timezone

from backups import overview
from backups.models import BackupRun, DriveState, FileVersion, Verification
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
    """Four queries: the organization's totals (each a subquery answered from an index: no row
    per file version, see DriveState.current_files), the bytes its runs of the last GROWTH_DAYS
    stored per day, the running backups and the running directory jobs; one more when a
    verification ran, one more when versions were lost; and the alerts' two (three when users
    are late: overview.organization_alerts)."""
    now = now or timezone.now()
    zone = org_zone(org)
    today = now.astimezone(zone).date()
    first_day = today - dt.timedelta(days=GROWTH_DAYS - 1)
    period_start = dt.datetime.combine(first_day, dt.time(), zone)
    day_ago = now - dt.timedelta(hours=24)

    # The users of its configurations (with a Kodo account or not): those in Microsoft 365, and
    # the protected ones (overview.protected_users: a completed backup) also after they left it.
    directory_users = DirectoryUser.objects.filter(configuration__organization=OuterRef("pk"))
    protected = overview.protected_users(directory_users)
    users = directory_users.filter(Q(removed_at__isnull=True) | overview.has_completed_backup())
    drives = DriveState.objects.filter(organization=OuterRef("pk"))
    totals = (
        Organization.objects.filter(pk=org.pk)
        .values(
            users_total=_scalar(users, "configuration__organization", Count("pk")),
            users_protected=_scalar(protected, "configuration__organization", Count("pk")),
            # Kept per drive by triggers (DriveState.current_files): one row per drive read.
            current_files=_scalar(drives, "organization", Sum("current_files")),
            current_size=_scalar(drives, "organization", Sum("current_bytes")),
            # Every run's, from index `runs_stored`; only the last GROWTH_DAYS are read by day.
            bytes_stored=_scalar(
                BackupRun.objects.filter(organization=OuterRef("pk"), bytes_stored__gt=0),
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
                Count("pk"),
            ),
            **{
                f"result_{status}": _scalar(
                    BackupRun.objects.filter(
                        organization=OuterRef("pk"), status=status, finished_at__gte=day_ago
                    ),
                    "organization",
                    Count("pk"),
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

    # Bytes stored per day of the chart, read from index `runs_by_day` alone: each day's bounds
    # computed here in the organization's time zone (a date function per row costs more).
    days = [first_day + dt.timedelta(days=offset) for offset in range(GROWTH_DAYS + 1)]
    starts = [dt.datetime.combine(date, dt.time(), zone) for date in days]
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
        .filter(created_at__gte=period_start)
        .order_by()
        .annotate(day=day)
        .values("day")
        .annotate(stored=Sum("bytes_stored"))
    )
    stored_per_day: dict[dt.date, int] = {}
    stored_later = 0  # runs dated after today (a clock ahead): not in the chart
    for group in per_day:
        if group["day"] is None:
            stored_later += group["stored"] or 0
        else:
            stored_per_day[group["day"]] = group["stored"] or 0
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
        current_files=totals["current_files"],
        current_size=totals["current_size"],
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
    CHOICES = [
        ("running", "Running"),
        ("queued", "Queued"),
        ("completed", "Completed"),
        ("failed", "Failed"),
        ("skipped", "Skipped"),
        ("canceled", "Canceled"),
    ]


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


def task_rows(org, *, types=(), statuses=(), since=None, until=None, user=""):
    """The organization's jobs of every kind, newest first, as one query of (type, id,
    created_at) rows: page it, then `load_tasks` the page."""
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
    if not parts:
        return BackupRun.objects.none().values_list("pk")
    rows = [part.order_by().values_list("task_type", "pk", "created_at") for part in parts]
    query = rows[0].union(*rows[1:], all=True) if len(rows) > 1 else rows[0]
    return query.order_by("-created_at", "-pk")


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
