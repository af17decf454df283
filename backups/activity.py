"""What an organization's backups and directory jobs are doing: the numbers of the Dashboard and
the one list of the Tasks page. Every function here costs a fixed number of queries, whatever the
amount of data."""

import datetime as dt
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateField,
    Exists,
    OuterRef,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from backups import overview
from backups.models import BackupRun, FileVersion, Verification
from kodo import jobs
from o365.models import DirectoryJob, DirectoryUser
from organizations.models import Organization

GROWTH_DAYS = 30
RUNNING_SHOWN = 10
LOST_SHOWN = 20
DONE_STATUSES = (BackupRun.Status.SUCCEEDED, BackupRun.Status.PARTIAL)
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
    """Four queries: the organization's totals, its runs grouped by day, status and whether they
    finished in the last 24 hours (at most 31 x 7 x 2 rows), the running backups and the running
    directory jobs; one more when a verification ran, one more when versions were lost; and the
    alerts' two (three when users are late: overview.organization_alerts)."""
    now = now or timezone.now()
    zone = org_zone(org)
    today = now.astimezone(zone).date()
    first_day = today - dt.timedelta(days=GROWTH_DAYS - 1)
    period_start = dt.datetime.combine(first_day, dt.time(), zone)
    day_ago = now - dt.timedelta(hours=24)

    users = DirectoryUser.objects.filter(
        configuration__organization=OuterRef("pk"), removed_at__isnull=True, account__isnull=False
    )
    protected = users.filter(
        Exists(BackupRun.objects.filter(directory_user=OuterRef("pk"), status__in=DONE_STATUSES))
    )
    versions = FileVersion.objects.filter(
        organization=OuterRef("pk"), end_run__isnull=True, is_folder=False
    )
    totals = (
        Organization.objects.filter(pk=org.pk)
        .values(
            users_total=_scalar(users, "configuration__organization", Count("pk")),
            users_protected=_scalar(protected, "configuration__organization", Count("pk")),
            current_files=_scalar(versions, "organization", Count("pk")),
            current_size=_scalar(versions, "organization", Sum("size")),
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

    day = Case(
        When(created_at__lt=period_start, then=Value(None, output_field=DateField())),
        default=TruncDate("created_at", tzinfo=zone),
        output_field=DateField(),
    )
    recent = Case(
        When(finished_at__gte=day_ago, then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )
    groups = (
        BackupRun.objects.for_organization(org)
        .order_by()
        .annotate(day=day, recent=recent)
        .values("day", "status", "recent")
        .annotate(runs=Count("pk"), stored=Sum("bytes_stored"))
    )
    stored_per_day: dict[dt.date, int] = {}
    active, stored_before = 0, 0
    results = {status: 0 for status, _ in RESULTS}
    for group in groups:
        stored = group["stored"] or 0
        if group["day"] is None:
            stored_before += stored
        else:
            stored_per_day[group["day"]] = stored_per_day.get(group["day"], 0) + stored
        if group["status"] in BackupRun.ACTIVE_STATUSES:
            active += group["runs"]
        elif group["recent"] and group["status"] in results:
            results[group["status"]] += group["runs"]
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
        results=[(status.value, status.label, badge, results[status]) for status, badge in RESULTS],
        active_runs=active,
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
    return FileVersion.objects.filter(organization=OuterRef("pk"), damage=damage)


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
